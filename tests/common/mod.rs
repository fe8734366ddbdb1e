//! Helpers shared by the integration tests.
use std::path::PathBuf;
use std::process::Command;

/// The `darkmagic` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_darkmagic"))
}

/// A fresh, empty folder under the system temp dir, unique to this test process and `name`.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("darkmagic-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
