//! A fingerprint of a data set's files: how many, how many bytes, and a hash of their names and
//! sizes. The checklist records it with each trial (`trial.json`), so that a rerun on data changed
//! in place (images added, removed, or rewritten to another size) is refused instead of mixing
//! two data sets in one comparison.
//!
//! Timestamps are left out on purpose: a copy of the data, or the same files on a fresh machine
//! (as a checklist committed to a repository is resumed), is the same data. A file rewritten in
//! place to the very same size is not detected.
use crate::error::{Error, Result};
use crate::recipe::DataConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub files: u64,
    pub bytes: u64,
    /// FNV-1a (64-bit) of the sorted `name \0 size` entries, in hex: a hash fixed by its
    /// definition, so records written by one build compare with those of another.
    pub listing: String,
}

/// Folders deeper than this below the data path are not followed (a link loop ends here).
const MAX_DEPTH: usize = 32;

/// The fingerprint of the files under `cfg.path`; None for the embedded digits (fixed in the
/// binary).
pub fn of(cfg: &DataConfig) -> Result<Option<Fingerprint>> {
    let Some(root) = &cfg.path else {
        return Ok(None);
    };
    let mut entries = Vec::new();
    list(root, root, 0, &mut entries)?;
    entries.sort();
    let mut hash = FNV_OFFSET;
    for (name, size) in &entries {
        for &b in name.as_bytes().iter().chain(&[0]).chain(&size.to_le_bytes()) {
            hash = (hash ^ b as u64).wrapping_mul(FNV_PRIME);
        }
    }
    Ok(Some(Fingerprint {
        files: entries.len() as u64,
        bytes: entries.iter().map(|e| e.1).sum(),
        listing: format!("{hash:016x}"),
    }))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Appends (name relative to `root`, size) of every file at or under `path`.
fn list(root: &Path, path: &Path, depth: usize, out: &mut Vec<(String, u64)>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        let name = path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned();
        out.push((name, meta.len()));
        return Ok(());
    }
    if depth == MAX_DEPTH {
        return Err(Error::data(
            path,
            format!("folders nested deeper than {MAX_DEPTH} (a link loop?)"),
        ));
    }
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        list(root, &entry.path(), depth + 1, out)?;
    }
    Ok(())
}

impl Fingerprint {
    /// What differs from `now`, for a message.
    pub fn change(&self, now: &Fingerprint) -> String {
        if (self.files, self.bytes) == (now.files, now.bytes) {
            format!(
                "the same {} files and {} bytes, other names or sizes",
                now.files, now.bytes
            )
        } else {
            format!(
                "{} files of {} bytes then, {} files of {} bytes now",
                self.files, self.bytes, now.files, now.bytes
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_added_removed_or_resized_change_it_and_timestamps_do_not() {
        let root = std::env::temp_dir().join(format!("dm-fingerprint-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/1.png"), b"12345").unwrap();
        std::fs::write(root.join("a/2.png"), b"123").unwrap();
        let cfg = DataConfig {
            path: Some(root.clone()),
            ..Default::default()
        };
        let first = of(&cfg).unwrap().unwrap();
        assert_eq!((first.files, first.bytes), (2, 8));
        // FNV-1a of "a/1.png\0" + 5u64 LE, then "a/2.png\0" + 3u64 LE, computed by its definition.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in [
            &b"a/1.png\0"[..],
            &5u64.to_le_bytes(),
            b"a/2.png\0",
            &3u64.to_le_bytes(),
        ]
        .concat()
        {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        assert_eq!(first.listing, format!("{h:016x}"));
        // Rewritten with the same size, a new timestamp: the same data.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("a/2.png"), b"abc").unwrap();
        assert_eq!(of(&cfg).unwrap().unwrap(), first);
        std::fs::write(root.join("a/2.png"), b"abcd").unwrap();
        let resized = of(&cfg).unwrap().unwrap();
        assert_eq!(
            first.change(&resized),
            "2 files of 8 bytes then, 2 files of 9 bytes now"
        );
        std::fs::remove_file(root.join("a/2.png")).unwrap();
        std::fs::write(root.join("a/3.png"), b"abcd").unwrap();
        let renamed = of(&cfg).unwrap().unwrap();
        assert_ne!(renamed, resized);
        assert_eq!(
            resized.change(&renamed),
            "the same 2 files and 9 bytes, other names or sizes"
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert!(of(&DataConfig::default()).unwrap().is_none());
    }
}
