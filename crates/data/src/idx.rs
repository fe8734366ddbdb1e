//! MNIST-style IDX files (LeCun's format): big-endian magic `0x0000_08_DD` (u8 data, DD dims),
//! the dimension sizes as big-endian u32, then the data. Raw or gzip-compressed.
//!
//! A dataset folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (each optionally `.gz`; a `.` instead of
//! the last `-` is accepted too), as MNIST and Fashion-MNIST ship them.
use super::{Dataset, Images, Pixels};
use darkmagic_base::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Finds the file whose name starts with `stem` (e.g. `train-images`) in `dir`.
pub fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let suffix = if stem.ends_with("images") {
        "idx3-ubyte"
    } else {
        "idx1-ubyte"
    };
    for sep in ["-", "."] {
        for ext in ["", ".gz"] {
            let p = dir.join(format!("{stem}{sep}{suffix}{ext}"));
            if p.is_file() {
                return Ok(p);
            }
            if p.exists() {
                return Err(Error::data(
                    p,
                    "not a regular file (a folder, FIFO, device or socket); expected an IDX file",
                ));
            }
        }
    }
    Err(Error::data(dir.join(format!("{stem}-{suffix}[.gz]")), "file not found"))
}

/// Loads the train and (if present) t10k splits of an IDX dataset folder. The classes are
/// 0..=the largest training label, each with at least one training image; test labels must be
/// among them.
pub fn load(dir: &Path) -> Result<Dataset> {
    let train_images = find(dir, "train-images")?;
    let train_labels = find(dir, "train-labels")?;
    let train = read_pair(&train_images, &train_labels)?;
    let classes = train.labels.iter().max().map_or(0, |&m| m as usize + 1);
    let counts = train.class_counts(classes);
    if let Some(empty) = counts.iter().position(|&n| n == 0) {
        return Err(Error::data(
            train_labels,
            format!(
                "labels run up to {} but class {empty} has no image; expected labels 0..C-1 with every class present",
                classes - 1
            ),
        ));
    }
    let test = match (find(dir, "t10k-images"), find(dir, "t10k-labels")) {
        (Ok(i), Ok(l)) => {
            let test = read_pair(&i, &l)?;
            if let Some((k, &label)) = test.labels.iter().enumerate().find(|(_, y)| **y as usize >= classes) {
                return Err(Error::data(
                    l,
                    format!(
                        "label {label} of image {k} is not a training class (0..={})",
                        classes - 1
                    ),
                ));
            }
            Some(test)
        }
        // A test file there that cannot be used (not a regular file) is an error, not a data
        // set without its test split.
        (Err(e @ Error::Data { .. }), _) | (_, Err(e @ Error::Data { .. }))
            if !e.to_string().ends_with("file not found") =>
        {
            return Err(e);
        }
        _ => None,
    };
    Ok(Dataset {
        format: "IDX".into(),
        classes: (0..classes).map(|c| c.to_string()).collect(),
        train,
        test,
    })
}

fn read_pair(images: &Path, labels: &Path) -> Result<Images> {
    let (dims, pixels) = read_idx(images)?;
    if dims.len() != 3 {
        return Err(Error::data(
            images,
            format!("expected 3 dimensions (N, H, W), found {}", dims.len()),
        ));
    }
    if dims[0] == 0 || dims[1] == 0 || dims[2] == 0 {
        return Err(Error::data(
            images,
            format!("header {dims:?}: expected at least 1 image of at least 1x1 pixels"),
        ));
    }
    let (ldims, label_bytes) = read_idx(labels)?;
    if ldims.len() != 1 || ldims[0] != dims[0] {
        return Err(Error::data(
            labels,
            format!(
                "expected {} labels to match {}, found shape {ldims:?}",
                dims[0],
                images.display()
            ),
        ));
    }
    Ok(Images {
        pixels: Pixels::Decoded(pixels),
        labels: label_bytes.into_iter().map(i64::from).collect(),
        height: dims[1],
        width: dims[2],
        channels: 1,
        names: Vec::new(),
    })
}

/// Reads one IDX file of unsigned bytes: its dimensions and its data.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let mut bytes = super::maybe_gunzip(path, super::read_file(path)?)?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::data(path, "not an IDX file (bad magic number)"));
    }
    if bytes[2] != 0x08 {
        return Err(Error::data(
            path,
            format!("IDX data type 0x{:02x} unsupported (expected 0x08, u8)", bytes[2]),
        ));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(Error::data(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n as u64 <= super::MAX_FILE_BYTES)
        .ok_or_else(|| Error::data(path, format!("header {dims:?} claims more data than any file can hold")))?;
    let data_len = bytes.len() - header;
    if data_len != expected {
        return Err(Error::data(
            path,
            format!(
                "truncated or corrupt: header {dims:?} needs {expected} bytes of data, found {}",
                data_len
            ),
        ));
    }
    bytes.drain(..header);
    Ok((dims, bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes an IDX file of u8 data with the given dimensions.
    pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        std::fs::write(path, b).unwrap();
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gzip_files_with_test_split() {
        let dir = darkmagic_base::testutil::tempdir("idx");
        let px: Vec<u8> = (0..3 * 2 * 2).collect();
        write_idx(&dir.join("train-images-idx3-ubyte"), &[3, 2, 2], &px);
        write_idx(&dir.join("train-labels-idx1-ubyte"), &[3], &[0, 2, 1]);
        write_idx(&dir.join("t10k-images-idx3-ubyte"), &[1, 2, 2], &[9, 9, 9, 9]);
        write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[1], &[2]);
        let raw = std::fs::read(dir.join("t10k-images-idx3-ubyte")).unwrap();
        std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&raw)).unwrap();
        let d = load(&dir).unwrap();
        assert_eq!(d.classes.len(), 3);
        assert_eq!(d.train.image(1), &[4, 5, 6, 7]);
        assert_eq!(d.train.labels, vec![0, 2, 1]);
        let t = d.test.unwrap();
        assert_eq!((t.image(0), t.labels.clone()), (vec![9, 9, 9, 9], vec![2]));
    }

    #[test]
    fn truncated_file_is_named() {
        let dir = darkmagic_base::testutil::tempdir("idx-trunc");
        write_idx(&dir.join("train-images-idx3-ubyte"), &[3, 2, 2], &[1, 2, 3]);
        write_idx(&dir.join("train-labels-idx1-ubyte"), &[3], &[0, 1, 2]);
        let e = load(&dir).unwrap_err().to_string();
        assert!(
            e.contains("train-images-idx3-ubyte") && e.contains("needs 12 bytes"),
            "{e}"
        );
    }

    #[test]
    fn corrupt_gzip_and_missing_file_are_named() {
        let dir = darkmagic_base::testutil::tempdir("idx-gz");
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 1, 2, 3]).unwrap();
        write_idx(&dir.join("train-labels-idx1-ubyte"), &[1], &[0]);
        let e = load(&dir).unwrap_err().to_string();
        assert!(
            e.contains("train-images-idx3-ubyte.gz") && e.contains("corrupt gzip"),
            "{e}"
        );
        let e = load(&dir.join("nope")).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte") && e.contains("not found"), "{e}");
    }
}
