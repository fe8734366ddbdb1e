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
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| Error::io(path, e))
}

/// The temporary sibling used while `path` is being written.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}
