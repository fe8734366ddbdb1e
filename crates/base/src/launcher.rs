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
//!   when there was none). The binary restores it first thing and removes both variables, so
//!   that the programs it starts (an external trainer with its own torch, `sbatch`) see the
//!   user's environment, not ours.
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Set by the wheel's launcher to its own path.
pub const LAUNCHER: &str = "DARKMAGIC_LAUNCHER";
/// Set by the wheel's launcher to the `LD_LIBRARY_PATH` it found (absent: there was none).
pub const SAVED_LIBRARY_PATH: &str = "DARKMAGIC_SAVED_LD_LIBRARY_PATH";

/// The launcher that started this process, as `restore_environment` found it.
static LAUNCHED_BY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Undoes the launcher's changes to the environment (libtorch is loaded by now): the user's
/// `LD_LIBRARY_PATH` is back and both variables are gone, so that a program this process starts
/// sees the environment the user had; the launcher's path is kept for [`self_command`]. Does
/// nothing in a process the launcher did not start. Only the wheel's binary calls it: a
/// `darkmagic` built from source ignores the variables, whoever set them.
///
/// # Safety
/// Changes the process environment: call it first thing in `main`, before any thread starts.
pub unsafe fn restore_environment() {
    let Some(launcher) = std::env::var_os(LAUNCHER).filter(|l| !l.is_empty()) else {
        return;
    };
    let launcher = PathBuf::from(launcher);
    let exe = std::env::current_exe().ok();
    if !exe.as_deref().is_some_and(|exe| is_own_launcher(&launcher, exe)) {
        // Not the launcher installed beside this binary (a variable from somewhere else):
        // trials are not started through it, and the environment is the user's as it is.
        // SAFETY: the caller guarantees that no other thread exists yet.
        unsafe { std::env::remove_var(LAUNCHER) };
        return;
    }
    let _ = LAUNCHED_BY.set(launcher);
    let saved = std::env::var_os(SAVED_LIBRARY_PATH);
    // SAFETY: the caller guarantees that no other thread exists yet.
    unsafe {
        match saved {
            Some(path) => std::env::set_var("LD_LIBRARY_PATH", path),
            None => std::env::remove_var("LD_LIBRARY_PATH"),
        }
        std::env::remove_var(SAVED_LIBRARY_PATH);
        std::env::remove_var(LAUNCHER);
    }
}

/// Whether `launcher` is the wheel's `darkmagic` script installed beside the binary `exe` (pip
/// puts both in the environment's `bin/`): only that launcher is trusted to start trials.
fn is_own_launcher(launcher: &std::path::Path, exe: &std::path::Path) -> bool {
    let dir = |p: &std::path::Path| p.parent().and_then(|d| d.canonicalize().ok());
    launcher.file_name().is_some_and(|n| n == "darkmagic")
        && launcher.is_file()
        && dir(launcher).is_some()
        && dir(launcher) == dir(exe)
}

/// The program that starts another darkmagic process: the wheel's launcher when it started
/// this one, else this executable.
pub fn self_command() -> Result<PathBuf> {
    self_command_from(LAUNCHED_BY.get())
}

fn self_command_from(launcher: Option<&PathBuf>) -> Result<PathBuf> {
    match launcher {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe().map_err(|e| Error::io("darkmagic executable", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_launcher_beside_the_binary_is_trusted() {
        let bin = crate::testutil::tempdir("launcher-bin");
        let elsewhere = crate::testutil::tempdir("launcher-elsewhere");
        for dir in [&bin, &elsewhere] {
            std::fs::write(dir.join("darkmagic"), "#!/bin/sh\n").unwrap();
        }
        let exe = bin.join("darkmagic-core");
        assert!(is_own_launcher(&bin.join("darkmagic"), &exe));
        assert!(!is_own_launcher(&elsewhere.join("darkmagic"), &exe), "another folder");
        assert!(!is_own_launcher(&bin.join("other"), &exe), "another name");
        assert!(!is_own_launcher(&bin.join("missing/darkmagic"), &exe), "no such file");
    }

    #[test]
    fn trials_start_through_the_launcher_when_it_started_this_process() {
        let launcher = PathBuf::from("/venv/bin/darkmagic");
        assert_eq!(self_command_from(Some(&launcher)).unwrap(), launcher);
        let exe = std::env::current_exe().unwrap();
        assert_eq!(self_command_from(None).unwrap(), exe);
    }
}
