//! How this darkmagic process was started, and the command that starts another one.
//!
//! Built from source, `darkmagic` finds libtorch through the rpath that `build.rs` writes. The
//! pip wheel's binary (`darkmagic-core`) cannot: torch lives wherever the user's Python keeps
//! it. The wheel's `darkmagic` command is a Python launcher (`python/darkmagic/_launcher.py`)
//! that finds that torch without importing it, checks its version, puts its `lib` folder on
//! `LD_LIBRARY_PATH` and replaces itself with the binary. It tells the binary so through two
//! variables:
//! - [`LAUNCHER`]: the launcher's own path. Trials (local, Slurm, Ray) are started through it, so
//!   each finds and checks torch again on whichever machine it runs.
//! - [`SAVED_LIBRARY_PATH`]: the user's `LD_LIBRARY_PATH` before the launcher changed it (absent
//!   when there was none). The binary restores it first thing, so that the programs it starts
//!   (an external trainer with its own torch, `sbatch`) see the user's environment, not ours.
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::path::PathBuf;

/// Set by the wheel's launcher to its own path.
pub const LAUNCHER: &str = "DARKMAGIC_LAUNCHER";
/// Set by the wheel's launcher to the `LD_LIBRARY_PATH` it found (absent: there was none).
pub const SAVED_LIBRARY_PATH: &str = "DARKMAGIC_SAVED_LD_LIBRARY_PATH";

/// Undoes the launcher's change to `LD_LIBRARY_PATH` (libtorch is loaded by now). Does nothing
/// in a process the launcher did not start.
///
/// # Safety
/// Changes the process environment: call it first thing in `main`, before any thread starts.
pub unsafe fn restore_environment() {
    if std::env::var_os(LAUNCHER).is_none() {
        return;
    }
    let saved = std::env::var_os(SAVED_LIBRARY_PATH);
    // SAFETY: the caller guarantees that no other thread exists yet.
    unsafe {
        match saved {
            Some(path) => std::env::set_var("LD_LIBRARY_PATH", path),
            None => std::env::remove_var("LD_LIBRARY_PATH"),
        }
        std::env::remove_var(SAVED_LIBRARY_PATH);
    }
}

/// The program that starts another darkmagic process: the wheel's launcher when it started
/// this one, else this executable.
pub fn self_command() -> Result<PathBuf> {
    self_command_from(std::env::var_os(LAUNCHER))
}

fn self_command_from(launcher: Option<OsString>) -> Result<PathBuf> {
    match launcher {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => std::env::current_exe().map_err(|e| Error::io("darkmagic executable", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_start_through_the_launcher_when_it_started_this_process() {
        assert_eq!(
            self_command_from(Some("/venv/bin/darkmagic".into())).unwrap(),
            PathBuf::from("/venv/bin/darkmagic")
        );
        let exe = std::env::current_exe().unwrap();
        assert_eq!(self_command_from(None).unwrap(), exe);
        assert_eq!(self_command_from(Some("".into())).unwrap(), exe);
    }
}
