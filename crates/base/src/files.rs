//! Reading and writing files safely: a record, recipe or token is read only when it is a regular
//! file within a size bound (a FIFO would block, `/dev/zero` grow without end), and a record is
//! written atomically (a sibling temporary file, synced, then renamed), so a killed run never
//! leaves a half-written file behind.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads a whole file that must be a regular file of at most `limit` bytes: a FIFO or a device
/// (`/dev/zero`) named as a recipe, token, record or weights file would block or grow without
/// end. The error names the file and what was expected.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    check_regular(path, limit)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit + 1), &mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::io(
            path,
            std::io::Error::other(format!("grew past {limit} bytes while being read")),
        ));
    }
    Ok(bytes)
}

/// The last `max` bytes of the regular file `path` as text (lossy); empty when it is missing or
/// not a regular file itself (a link is not followed, a FIFO never waited on).
pub fn tail(path: &Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    let Some(mut f) = regular.then(|| std::fs::File::open(path).ok()).flatten() else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = f.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Opens `path` for appending, creating it; a regular file only. Opened without blocking and
/// checked once open: a FIFO would hold the writer until a reader came (a FIFO `train.log` hung
/// training), a device would swallow the log.
pub fn open_append(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    /// `O_NONBLOCK` on Linux.
    const O_NONBLOCK: i32 = 0o4000;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("not a regular file (a FIFO or device?)"),
        ));
    }
    Ok(file)
}

/// [`read_regular`]'s checks without the read: a regular file (links followed) of at most
/// `limit` bytes.
pub fn check_regular(path: &Path, limit: u64) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("not a regular file (a folder, FIFO or device?)"),
        ));
    }
    if meta.len() > limit {
        return Err(Error::io(
            path,
            std::io::Error::other(format!("{} bytes; expected at most {limit}", meta.len())),
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a sibling temporary file is written, synced and renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // The rename would replace whatever is there: a FIFO a reader waits on, a device (`--out
    // /dev/null` run as root), the link rather than what it names. Only files are replaced.
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.is_file()
    {
        return Err(Error::io(
            path,
            std::io::Error::other(format!(
                "{}, not a regular file: darkmagic writes whole files and replaces only regular ones; remove it, or \
                 write elsewhere",
                kind_of(&meta)
            )),
        ));
    }
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        // Nothing half-done is left: the temporary file goes with the failed write.
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// What a file that is not a regular one is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    match () {
        _ if t.is_symlink() => "a symbolic link",
        _ if t.is_dir() => "a folder",
        _ if t.is_fifo() => "a FIFO",
        _ if t.is_char_device() || t.is_block_device() => "a device",
        _ if t.is_socket() => "a socket",
        _ => "a special file",
    }
}

/// The temporary sibling used while `path` is being written.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Every file at or below `root`, links followed, each directory listed once: a directory
/// reached again (a link cycle, or a second link to it) is skipped by its device and inode, so
/// the walk ends and no file is listed twice through two paths. Calls `f` with each file's path
/// and metadata, in directory order.
pub fn walk_files(root: &Path, mut f: impl FnMut(&Path, &std::fs::Metadata) -> Result<()>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if !meta.is_dir() {
            f(&path, &meta)?;
            continue;
        }
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| Error::io(&path, e))?
            .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(&path, e)))
            .collect::<Result<_>>()?;
        // Depth first, in name order.
        entries.sort_by(|a, b| b.cmp(a));
        pending.extend(entries);
    }
    Ok(())
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    #[test]
    fn a_link_cycle_ends_and_each_file_is_listed_once() {
        let root = std::env::temp_dir().join(format!("dm-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/1.png"), b"1").unwrap();
        std::fs::write(root.join("a/b/2.png"), b"2").unwrap();
        // A cycle (a/b/up -> a) and a second way into a/b (a/again -> a/b).
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink(root.join("a/b"), root.join("a/again")).unwrap();
        let mut files = Vec::new();
        walk_files(&root, |p, _| {
            files.push(p.strip_prefix(&root).unwrap().to_path_buf());
            Ok(())
        })
        .unwrap();
        files.sort();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["1.png", "2.png"], "{files:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_failed_whole_file_write_leaves_nothing_behind() {
        let root = std::env::temp_dir().join(format!("dm-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // `new/` names a folder that is not there: the rename fails after the write.
        let e = write_atomic(&root.join("new/"), b"x").unwrap_err().to_string();
        assert!(e.contains("new"), "{e}");
        let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
