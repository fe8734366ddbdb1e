//! A fingerprint of a data set's files: how many, how many bytes, a hash of their names and
//! sizes, and a hash of their contents. The checklist records it with each trial
//! (`trial.json`), so that a rerun on data changed in place (images added, removed, resized, or
//! rewritten with other bytes) is refused instead of mixing two data sets in one comparison.
//!
//! Timestamps are left out on purpose: a copy of the data, or the same files on a fresh machine
//! (as a checklist committed to a repository is resumed), is the same data. Reading every byte
//! of a large data set on each rerun would be slow, so the files' content hashes are cached by
//! path and [`Stamp`] (size, modification and status-change times, inode) in a file the caller
//! names (the checklist's own folder). The status-change time moves on every write and cannot
//! be set back, so bytes rewritten in place with the modification time restored are read again.
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::{DataConfig, DatasetKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    pub files: u64,
    pub bytes: u64,
    /// FNV-1a (64-bit) of the sorted `name \0 size` entries, in hex: a hash fixed by its
    /// definition, so records written by one build compare with those of another.
    pub listing: String,
    /// FNV-1a (64-bit) of the sorted `name \0 size crc` entries, `crc` the CRC-32C of the
    /// file's bytes (little-endian); absent in records written before contents were hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// What one `stat` says of a file that a rewrite would change: its size, its modification and
/// status-change times (ns since the epoch) and its inode (a file replaced by a rename).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    modified_ns: u128,
    /// 0 in caches written before it was kept: such an entry is hashed again.
    #[serde(default)]
    changed_ns: u128,
    #[serde(default)]
    inode: u64,
}

impl Stamp {
    /// The stamp of the file at `path`; a FIFO, device or socket is refused (reading it to hash
    /// would block or never end).
    fn of(path: &Path, meta: &std::fs::Metadata) -> Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        if !meta.is_file() {
            return Err(Error::data(
                path,
                "not a regular file (a FIFO, device or socket): the data fingerprint reads every file of the data set; \
                 remove it or put a file in its place",
            ));
        }
        let modified = meta.modified().map_err(|e| Error::io(path, e))?;
        let changed = meta.ctime().max(0) as u128 * 1_000_000_000 + meta.ctime_nsec().max(0) as u128;
        Ok(Stamp {
            size: meta.len(),
            modified_ns: modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            changed_ns: changed,
            inode: meta.ino(),
        })
    }
}

/// One file's cached content hash: valid while its [`Stamp`] stays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Cached {
    stamp: Stamp,
    crc: u32,
}

/// The fingerprint of the files under `cfg.path`; None for the embedded digits (fixed in the
/// binary). `cache`: a file of the content hashes already computed (read when it is there and
/// sound, rewritten atomically when anything was hashed); None hashes every file.
pub fn of(cfg: &DataConfig, cache: Option<&Path>) -> Result<Option<Fingerprint>> {
    let Some(root) = &cfg.path else {
        return Ok(None);
    };
    let entries = match cfg.dataset {
        // A manifest's images may lie anywhere: its files and theirs, named as they are listed.
        DatasetKind::Manifest => entries_of(&crate::manifest::files(root)?)?,
        // A brace pattern names no one folder: its shards, named as expanded.
        DatasetKind::Webdataset => entries_of(&crate::webdataset::files(root)?)?,
        DatasetKind::Parquet => entries_of(&crate::parquet::fingerprint_files(root)?)?,
        _ => list(root)?,
    };
    let known = cache.map(read_cache).unwrap_or_default();
    let (fingerprint, fresh) = hash(&entries, &known)?;
    if let Some(c) = cache.filter(|_| fresh != known) {
        darkmagic_base::files::write_atomic(c, &sealed(fresh))?;
    }
    Ok(Some(fingerprint))
}

/// The cache file: each file's entry, sealed by a CRC-32C of them all (as `design.json` is), so
/// that a hand-edited cache (a changed file's stamps written over its old entry) is not trusted.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    files: BTreeMap<String, Cached>,
    digest: String,
}

/// The digest that seals `files`.
fn cache_digest(files: &BTreeMap<String, Cached>) -> String {
    darkmagic_base::rundir::json_digest(files)
}

/// The cache file's bytes for `files`, sealed.
fn sealed(files: BTreeMap<String, Cached>) -> Vec<u8> {
    let digest = cache_digest(&files);
    serde_json::to_vec(&CacheFile { files, digest }).expect("the cache serializes")
}

/// The cached entries at `path`; none when it is missing, damaged, of an older format or its
/// seal does not match (every file is then read again and the cache rewritten).
fn read_cache(path: &Path) -> BTreeMap<String, Cached> {
    darkmagic_base::files::read_regular(path, MAX_CACHE_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
        .filter(|c| c.digest == cache_digest(&c.files))
        .map(|c| c.files)
        .unwrap_or_default()
}

/// The fingerprint of the listed files (each named by its path as given), every byte read:
/// e.g. an external trainer's scripts, which the checklist records with each trial.
pub fn of_files(files: &[std::path::PathBuf]) -> Result<Fingerprint> {
    Ok(hash(&entries_of(files)?, &BTreeMap::new())?.0)
}

/// The entries of the listed files, each named by its path as given, sorted by name.
fn entries_of(files: &[std::path::PathBuf]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for path in files {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        entries.push(Entry {
            name: path.as_os_str().as_bytes().to_vec(),
            path: path.clone(),
            stamp: Stamp::of(path, &meta)?,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The fingerprint of `entries` (sorted by name), each file's hash taken from `known` where its
/// stamp is the same and read otherwise; and the cache entries of these files.
fn hash(entries: &[Entry], known: &BTreeMap<String, Cached>) -> Result<(Fingerprint, BTreeMap<String, Cached>)> {
    let mut fresh = BTreeMap::new();
    let (mut listing, mut content) = (FNV_OFFSET, FNV_OFFSET);
    for e in entries {
        let key = cache_key(&e.path);
        let crc = match known.get(&key) {
            Some(c) if c.stamp == e.stamp => c.crc,
            _ => crc_of(&e.path)?,
        };
        fresh.insert(key, Cached { stamp: e.stamp, crc });
        let entry = [&e.name[..], &[0], &e.stamp.size.to_le_bytes()].concat();
        listing = fnv(listing, &entry);
        content = fnv(content, &[&entry[..], &crc.to_le_bytes()].concat());
    }
    let fingerprint = Fingerprint {
        files: entries.len() as u64,
        bytes: entries.iter().map(|e| e.stamp.size).sum(),
        listing: format!("{listing:016x}"),
        content: Some(format!("{content:016x}")),
    };
    Ok((fingerprint, fresh))
}

/// The cache's key for `path`: the path itself when it is UTF-8; otherwise a NUL (which no path
/// holds) and its exact escaped form, so that names differing only in bytes outside UTF-8 never
/// share an entry (a lossy key would hand one file the other's hash).
fn cache_key(path: &Path) -> String {
    match path.to_str() {
        Some(s) => s.to_string(),
        None => format!("\0{}", darkmagic_base::error::exact(path)),
    }
}

/// The largest cache file read (a million files' entries fit).
const MAX_CACHE_BYTES: u64 = 256 << 20;

/// CRC-32C of a file's bytes, read in blocks.
fn crc_of(path: &Path) -> Result<u32> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let (mut crc, mut buf) = (0u32, vec![0u8; 1 << 20]);
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// A data file as the walk found it: its name relative to the data path, its path, and the
/// stamp of that one `stat`.
struct Entry {
    /// The relative path's bytes, exactly (a name need not be UTF-8).
    name: Vec<u8>,
    path: std::path::PathBuf,
    stamp: Stamp,
}

/// Every file at or under `root`, each once whatever links its folders hold
/// (`files::walk_files`), sorted by name.
fn list(root: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    darkmagic_base::files::walk_files(root, |path, meta| {
        out.push(Entry {
            name: path.strip_prefix(root).unwrap_or(path).as_os_str().as_bytes().to_vec(),
            path: path.to_path_buf(),
            stamp: Stamp::of(path, meta)?,
        });
        Ok(())
    })?;
    out.sort_by(|a, b| (&a.name, a.stamp.size).cmp(&(&b.name, b.stamp.size)));
    Ok(out)
}

impl Fingerprint {
    /// Whether `now` is the same data: the same listing, and the same contents where both
    /// records hashed them.
    pub fn same_data(&self, now: &Fingerprint) -> bool {
        (self.files, self.bytes, &self.listing) == (now.files, now.bytes, &now.listing)
            && match (&self.content, &now.content) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// What differs from `now`, for a message.
    pub fn change(&self, now: &Fingerprint) -> String {
        if (self.files, self.bytes, &self.listing) == (now.files, now.bytes, &now.listing) {
            format!("the same {} files, names and sizes, other bytes", now.files)
        } else if (self.files, self.bytes) == (now.files, now.bytes) {
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
        let first = of(&cfg, None).unwrap().unwrap();
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
        // Rewritten with the same bytes, a new timestamp: the same data.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("a/2.png"), b"123").unwrap();
        assert_eq!(of(&cfg, None).unwrap().unwrap(), first);
        std::fs::write(root.join("a/2.png"), b"abcd").unwrap();
        let resized = of(&cfg, None).unwrap().unwrap();
        assert_eq!(
            first.change(&resized),
            "2 files of 8 bytes then, 2 files of 9 bytes now"
        );
        std::fs::remove_file(root.join("a/2.png")).unwrap();
        std::fs::write(root.join("a/3.png"), b"abcd").unwrap();
        let renamed = of(&cfg, None).unwrap().unwrap();
        assert_ne!(renamed, resized);
        assert_eq!(
            resized.change(&renamed),
            "the same 2 files and 9 bytes, other names or sizes"
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert!(of(&DataConfig::default(), None).unwrap().is_none());
    }

    /// The content hash by its definition: FNV-1a over `name \0 size crc32c` of each file.
    fn content_hash(files: &[(&str, &[u8])]) -> Option<String> {
        let mut h: u64 = 0xcbf29ce484222325;
        for (name, data) in files {
            let size = (data.len() as u64).to_le_bytes();
            for &b in [name.as_bytes(), &[0], &size, &crc32c::crc32c(data).to_le_bytes()]
                .concat()
                .iter()
            {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
        Some(format!("{h:016x}"))
    }

    #[test]
    fn contents_rewritten_at_the_same_size_change_it_and_the_cache_spares_rereading() {
        let root = std::env::temp_dir().join(format!("dm-fingerprint-content-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/1.png"), b"12345").unwrap();
        std::fs::write(root.join("a/2.png"), b"abcde").unwrap();
        let cfg = DataConfig {
            path: Some(root.join("a")),
            ..Default::default()
        };
        let cache = root.join("cache.json");
        let first = of(&cfg, Some(&cache)).unwrap().unwrap();
        assert_eq!(first.content, content_hash(&[("1.png", b"12345"), ("2.png", b"abcde")]));
        // The two files' bytes swapped: the same names and sizes, other contents.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("a/1.png"), b"abcde").unwrap();
        std::fs::write(root.join("a/2.png"), b"12345").unwrap();
        let swapped = of(&cfg, Some(&cache)).unwrap().unwrap();
        assert_eq!(swapped.listing, first.listing);
        assert!(!first.same_data(&swapped));
        assert_eq!(first.change(&swapped), "the same 2 files, names and sizes, other bytes");
        // A record written before contents were hashed compares by its listing.
        let old = Fingerprint {
            content: None,
            ..first.clone()
        };
        assert!(old.same_data(&swapped));
        // The cache holds each file's hash by size and time: a cached entry is used as it is
        // (here a doctored one, sealed again, to show that the file is not read again).
        let mut cached = read_cache(&cache);
        assert_eq!(cached.len(), 2);
        let key = root.join("a/1.png").to_string_lossy().into_owned();
        cached.get_mut(&key).unwrap().crc = crc32c::crc32c(b"12345");
        std::fs::write(&cache, sealed(cached.clone())).unwrap();
        assert_eq!(
            of(&cfg, Some(&cache)).unwrap().unwrap().content,
            content_hash(&[("1.png", b"12345"), ("2.png", b"12345")])
        );
        // The same edit without the seal is not trusted: every file is read again.
        let unsealed = String::from_utf8(sealed(cached.clone())).unwrap();
        std::fs::write(&cache, unsealed.replacen("\"digest\":\"", "\"digest\":\"0", 1)).unwrap();
        assert_eq!(of(&cfg, Some(&cache)).unwrap().unwrap(), swapped);
        // A data path that is one file is fingerprinted as that file (named "" below itself).
        let one = DataConfig {
            path: Some(root.join("a/2.png")),
            ..Default::default()
        };
        assert_eq!(
            of(&one, None).unwrap().unwrap().content,
            content_hash(&[("", b"12345")])
        );
        // A damaged cache is ignored and rewritten.
        std::fs::write(&cache, b"not json").unwrap();
        assert_eq!(of(&cfg, Some(&cache)).unwrap().unwrap(), swapped);
        assert_eq!(read_cache(&cache).len(), 2, "rewritten, sealed");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Names that are not UTF-8 are kept exactly: two files whose names differ only in such a
    /// byte (`a\xfe.png`, `a\xff.png`), of one size and one time, keep their own cache entries,
    /// and swapping their bytes changes the fingerprint (lossy names made them one key).
    #[test]
    fn names_outside_utf8_are_hashed_and_cached_exactly() {
        let root = darkmagic_base::testutil::tempdir("fingerprint-bytes");
        let name = |b: u8| root.join(std::ffi::OsStr::from_bytes(&[b'a', b, b'.', b'p', b'n', b'g']));
        let (fe, ff) = (name(0xfe), name(0xff));
        std::fs::write(&fe, b"12345").unwrap();
        std::fs::write(&ff, b"abcde").unwrap();
        let same_time = std::fs::metadata(&fe).unwrap().modified().unwrap();
        let touch = |p: &Path| {
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(same_time).unwrap();
        };
        touch(&ff);
        let cfg = DataConfig {
            path: Some(root.clone()),
            ..Default::default()
        };
        let cache = darkmagic_base::testutil::tempdir("fingerprint-bytes-cache").join("cache.json");
        let first = of(&cfg, Some(&cache)).unwrap().unwrap();
        let cached = read_cache(&cache);
        assert_eq!(cached.len(), 2, "{:?}", cached.keys());
        std::fs::write(&fe, b"abcde").unwrap();
        std::fs::write(&ff, b"12345").unwrap();
        touch(&fe);
        touch(&ff);
        let swapped = of(&cfg, None).unwrap().unwrap();
        assert!(!first.same_data(&swapped));
        assert_eq!(swapped.listing, first.listing);
    }

    /// Bytes rewritten in place at the same size with the modification time set back (as
    /// `touch -r` or `rsync -t` leave them) are read again: the status-change time moved, and it
    /// cannot be set back. An unchanged file is taken from the cache.
    #[test]
    fn a_rewrite_with_its_modification_time_restored_is_read_again() {
        let root = darkmagic_base::testutil::tempdir("fingerprint-restored-time");
        let file = root.join("a.png");
        std::fs::write(&file, b"12345").unwrap();
        std::fs::write(root.join("b.png"), b"67890").unwrap();
        let cfg = DataConfig {
            path: Some(root.clone()),
            ..Default::default()
        };
        let cache = darkmagic_base::testutil::tempdir("fingerprint-restored-time-cache").join("cache.json");
        let first = of(&cfg, Some(&cache)).unwrap().unwrap();
        let was = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"abcde").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(was)
            .unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), was);
        let after = of(&cfg, Some(&cache)).unwrap().unwrap();
        assert_eq!(after.content, content_hash(&[("a.png", b"abcde"), ("b.png", b"67890")]));
        assert!(!first.same_data(&after));
        // A cache entry of an earlier build (no status-change time) is hashed again, not trusted,
        // even in a cache sealed as this build seals it.
        let mut cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        for v in cached["files"].as_object_mut().unwrap().values_mut() {
            v["stamp"].as_object_mut().unwrap().remove("changed_ns");
            v["crc"] = serde_json::json!(0);
        }
        let old: BTreeMap<String, Cached> = serde_json::from_value(cached["files"].clone()).unwrap();
        std::fs::write(&cache, sealed(old)).unwrap();
        assert_eq!(read_cache(&cache).len(), 2, "the seal holds");
        assert_eq!(of(&cfg, Some(&cache)).unwrap().unwrap(), after);
    }
}
