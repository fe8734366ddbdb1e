//! The release of a libtorch: the `__version__` of a torch package's `version.py`, or the
//! `build-version` file of a C++ distribution. Only `std`: `build.rs` compiles this file too
//! (`#[path]`), so the release darkmagic was built against and the one it loaded at run time
//! (`darkmagic --version`) are read the same way.
use std::path::Path;

/// The release of the libtorch whose root is `root` (the torch package's folder, or the
/// distribution's, both holding `lib/`).
pub fn release(root: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return version_in_python(&text);
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string()).filter(|v| !v.is_empty())
}

/// The value of `__version__ = '...'` in a torch `version.py`.
fn version_in_python(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with("__version__"))?;
    let value = line.split_once('=')?.1.trim();
    let unquoted = value.trim_matches(|c| c == '\'' || c == '"');
    (!unquoted.is_empty() && unquoted.len() + 2 == value.len()).then(|| unquoted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_of_a_torch_package_is_read_from_its_version_py() {
        let text = "from typing import Optional\n__version__ = '2.13.0+cu130'\ndebug = False\n";
        assert_eq!(version_in_python(text).as_deref(), Some("2.13.0+cu130"));
        assert_eq!(
            version_in_python("__version__ = \"2.12.1\"\n").as_deref(),
            Some("2.12.1")
        );
        assert_eq!(version_in_python("__version__ = get()\n"), None);
        assert_eq!(version_in_python("debug = False\n"), None);
    }
}
