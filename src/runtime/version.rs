//! What `darkmagic --version` prints: darkmagic's version, the libtorch this process loaded
//! (version and folder: the pip wheel runs on whichever torch the environment holds) beside the
//! one it was built against, and the CUDA devices libtorch sees.
use std::path::{Path, PathBuf};

/// The libtorch release `build.rs` linked against (its `version.py`, or `build-version` of a
/// C++ distribution).
pub const BUILT_AGAINST: &str = env!("DARKMAGIC_LIBTORCH_VERSION");

/// The lines of `darkmagic --version`.
pub fn report() -> String {
    let libtorch = match loaded_libtorch() {
        Some(dir) => format!(
            "libtorch {} at {} (built against {BUILT_AGAINST})",
            version_of(&dir).unwrap_or_else(|| "of unknown version".into()),
            dir.display()
        ),
        None => format!("libtorch: not found among the loaded libraries (built against {BUILT_AGAINST})"),
    };
    let cuda = cuda_devices(tch::Cuda::device_count().max(0) as usize);
    format!("darkmagic {}\n{libtorch}\n{cuda}", env!("CARGO_PKG_VERSION"))
}

/// "CUDA: ..." for `n` visible devices.
fn cuda_devices(n: usize) -> String {
    match n {
        0 => "CUDA: no device visible (training runs on the CPU)".into(),
        _ => {
            let names: Vec<String> = (0..n).map(|i| format!("cuda:{i}")).collect();
            let s = if n == 1 { "" } else { "s" };
            format!("CUDA: {n} device{s} visible: {}", names.join(", "))
        }
    }
}

/// The folder of the `libtorch_cpu.so` mapped into this process (Linux: `/proc/self/maps`).
fn loaded_libtorch() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    libtorch_in_maps(&maps)
}

/// A line of the map is `address perms offset dev inode   path`; the path, which may hold
/// spaces, starts at the line's first `/`.
fn libtorch_in_maps(maps: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|line| line.find('/').map(|i| &line[i..]))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
}

/// The release of the libtorch in folder `lib` (its root is the folder above).
fn version_of(lib: &Path) -> Option<String> {
    super::torch_release::release(lib.parent()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaded_libtorch_is_found_in_the_memory_map() {
        let maps = "7f00-7f10 r-xp 00000000 08:01 42 /usr/lib/libc.so.6\n\
                    7f20-7f30 r--p 00000000 08:01 43     /my envs/site-packages/torch/lib/libtorch_cpu.so\n\
                    7f40-7f50 rw-p 00000000 00:00 0 \n";
        assert_eq!(
            libtorch_in_maps(maps),
            Some(PathBuf::from("/my envs/site-packages/torch/lib"))
        );
        assert_eq!(libtorch_in_maps("7f00-7f10 r-xp 0 08:01 42 /lib/libc.so.6\n"), None);
        // This test process links libtorch, so the real map has it, with a readable version.
        let dir = loaded_libtorch().expect("libtorch_cpu.so is mapped");
        assert_eq!(version_of(&dir).as_deref(), Some(BUILT_AGAINST));
    }

    #[test]
    fn cuda_devices_are_counted_and_named() {
        assert_eq!(cuda_devices(0), "CUDA: no device visible (training runs on the CPU)");
        assert_eq!(cuda_devices(1), "CUDA: 1 device visible: cuda:0");
        assert_eq!(cuda_devices(2), "CUDA: 2 devices visible: cuda:0, cuda:1");
    }
}
