//! Links darkmagic against the libtorch of the project's PyTorch wheel.
//!
//! `LIBTORCH` (set by `.cargo/config.toml`) points at `.venv/torch`. We add an rpath to
//! `torch/lib` and to every `nvidia/*/lib` of the wheel's CUDA dependencies, so binaries and tests
//! run with no `LD_LIBRARY_PATH`, and force-link `libtorch_cuda` so that a linker using
//! `--as-needed` cannot drop it and make CUDA look absent (tch-rs issue #980). It also compiles
//! `csrc/autocast.cpp`, the few libtorch calls tch does not bind, against the same headers.
use std::path::{Path, PathBuf};

#[path = "src/runtime/torch_release.rs"]
mod torch_release;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; run scripts/setup.sh first");
        return;
    };
    let torch = std::fs::canonicalize(&libtorch)
        .unwrap_or_else(|_| panic!("LIBTORCH={libtorch} does not exist: run `bash scripts/setup.sh` first"));
    let torch_lib = torch.join("lib");
    compile_shim(&torch);
    println!(
        "cargo:rustc-env=DARKMAGIC_LIBTORCH_VERSION={}",
        libtorch_version(&torch)
    );
    // The pip wheel's binary finds libtorch through its launcher (crates/base/src/launcher.rs): no paths of
    // this machine go into it.
    if std::env::var_os("CARGO_FEATURE_WHEEL").is_none() {
        for dir in rpath_dirs(&torch) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
    }
    if torch_lib.join("libtorch_cuda.so").exists() {
        println!(
            "cargo:rustc-link-arg=-Wl,--no-as-needed,-L{},-ltorch_cuda,--as-needed",
            torch_lib.display()
        );
    }
}

/// The release of the libtorch at `torch` (`darkmagic --version` prints it beside the loaded one).
fn libtorch_version(torch: &Path) -> String {
    let python = torch.join("version.py");
    if python.exists() {
        println!("cargo:rerun-if-changed={}", python.display());
    }
    torch_release::release(torch).unwrap_or_else(|| "unknown".into())
}

/// Builds csrc/autocast.cpp with the flags torch-sys uses for its own bindings.
fn compile_shim(torch: &Path) {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    cc::Build::new()
        .cpp(true)
        .file("csrc/autocast.cpp")
        .include(torch.join("include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("darkmagic_shim");
}

/// `torch/lib` plus each `site-packages/nvidia/**/lib` folder of the CUDA wheels.
fn rpath_dirs(torch: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![torch.join("lib")];
    let nvidia = torch.parent().map(|site| site.join("nvidia"));
    if let Some(Ok(entries)) = nvidia.map(std::fs::read_dir) {
        let mut libs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("lib"))
            .filter(|p| p.is_dir())
            .collect();
        libs.sort();
        dirs.extend(libs);
    }
    dirs
}
