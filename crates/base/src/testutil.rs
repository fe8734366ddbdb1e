//! Helpers for the unit tests.
use std::path::PathBuf;

/// A fresh, empty folder under the system temp dir, unique to this process and `name`.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("darkmagic-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
