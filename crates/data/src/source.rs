//! Where one encoded image (PNG, JPEG) is: a file, a member of a tar archive (a WebDataset
//! shard), or bytes held in memory (a parquet row). The readers that keep images encoded until a
//! batch needs them (`data.decode = "per_batch"`) list sources; decoding reads them here.
use darkmagic_base::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest tar member read as one image (as [`crate::MAX_FILE_BYTES`] for files).
const MAX_MEMBER_BYTES: u64 = crate::MAX_FILE_BYTES;

/// One encoded image.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// An image file.
    File(PathBuf),
    /// `len` bytes at `offset` in the tar archive `archive`, the member `name`.
    Member {
        archive: Arc<PathBuf>,
        name: String,
        offset: u64,
        len: u64,
    },
    /// Bytes in memory; `name` says where they came from (e.g. `train.parquet:row 12`).
    Bytes { name: PathBuf, bytes: Arc<[u8]> },
}

impl Source {
    /// The name messages and prediction files give the image: the file's path,
    /// `archive.tar:member` for a tar member, the bytes' origin.
    pub fn name(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Member { archive, name, .. } => {
                let mut s = archive.as_os_str().to_os_string();
                s.push(":");
                s.push(name);
                PathBuf::from(s)
            }
            Source::Bytes { name, .. } => name.clone(),
        }
    }

    /// The encoded bytes, read now (bounded: a file or member over the limit is an error).
    pub fn read(&self) -> Result<Vec<u8>> {
        match self {
            Source::File(p) => crate::read_file(p),
            Source::Member {
                archive, offset, len, ..
            } => {
                let path = self.name();
                if *len > MAX_MEMBER_BYTES {
                    return Err(Error::data(
                        &path,
                        format!("member of {len} bytes; expected at most {MAX_MEMBER_BYTES} for an image"),
                    ));
                }
                let mut file = std::fs::File::open(archive.as_path()).map_err(|e| Error::io(archive.as_path(), e))?;
                file.seek(SeekFrom::Start(*offset)).map_err(|e| Error::io(&path, e))?;
                let mut bytes = Vec::new();
                crate::reserve(&mut bytes, *len as usize, &path)?;
                file.take(*len)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io(&path, e))?;
                if bytes.len() as u64 != *len {
                    return Err(Error::data(
                        &path,
                        format!(
                            "the archive ends {} bytes into this member of {len} bytes (truncated since it was listed)",
                            bytes.len()
                        ),
                    ));
                }
                Ok(bytes)
            }
            Source::Bytes { bytes, .. } => Ok(bytes.to_vec()),
        }
    }
}

impl From<PathBuf> for Source {
    fn from(p: PathBuf) -> Source {
        Source::File(p)
    }
}

impl From<&Path> for Source {
    fn from(p: &Path) -> Source {
        Source::File(p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_read_from_its_offset_and_a_truncated_one_is_named() {
        let dir = darkmagic_base::testutil::tempdir("source-member");
        let archive = dir.join("a.tar");
        std::fs::write(&archive, b"0123456789").unwrap();
        let member = |offset, len| Source::Member {
            archive: Arc::new(archive.clone()),
            name: "k.png".into(),
            offset,
            len,
        };
        assert_eq!(member(3, 4).read().unwrap(), b"3456");
        assert_eq!(member(3, 4).name(), dir.join("a.tar:k.png"));
        let e = member(8, 4).read().unwrap_err().to_string();
        assert!(e.contains("a.tar:k.png") && e.contains("ends 2 bytes into"), "{e}");
    }
}
