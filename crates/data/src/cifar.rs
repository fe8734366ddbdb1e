//! CIFAR-10 and CIFAR-100 binary versions (Krizhevsky 2009). Each record is the label byte(s)
//! then 3072 bytes: the 32x32 red plane, then green, then blue, row-major.
//!
//! CIFAR-10: `data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`, one label byte,
//! class names in `batches.meta.txt`. CIFAR-100: `train.bin`, `test.bin`, a coarse then a fine
//! label byte (the fine label is used), names in `fine_label_names.txt`.
use super::{Dataset, Images, Pixels};
use darkmagic_base::error::{Error, Result};
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    fn num_classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }
}

/// Loads the train and test splits from a folder of CIFAR binary files.
pub fn load(dir: &Path, variant: Variant) -> Result<Dataset> {
    let (train_files, test_file, names_file, format) = match variant {
        Variant::Cifar10 => (
            (1..=5).map(|i| format!("data_batch_{i}.bin")).collect::<Vec<_>>(),
            "test_batch.bin",
            "batches.meta.txt",
            "CIFAR-10 binary",
        ),
        Variant::Cifar100 => (
            vec!["train.bin".to_string()],
            "test.bin",
            "fine_label_names.txt",
            "CIFAR-100 binary",
        ),
    };
    let train_paths: Vec<_> = train_files.iter().map(|f| dir.join(f)).collect();
    let train = read_records(&train_paths, variant)?;
    let test_path = dir.join(test_file);
    let test = if test_path.exists() {
        Some(read_records(&[test_path], variant)?)
    } else {
        None
    };
    Ok(Dataset {
        format: format.into(),
        classes: class_names(&dir.join(names_file), variant.num_classes()),
        train,
        test,
    })
}

/// The records of binary files, one after another.
fn read_records(paths: &[PathBuf], variant: Variant) -> Result<Images> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for path in paths {
        append_records(path, variant, &mut pixels, &mut labels)?;
    }
    Ok(Images {
        pixels: Pixels::Decoded(pixels),
        labels,
        height: SIDE,
        width: SIDE,
        channels: 3,
        names: Vec::new(),
    })
}

/// Appends the records of one binary file, converting planes (CHW) to HWC.
fn append_records(path: &Path, variant: Variant, pixels: &mut Vec<u8>, labels: &mut Vec<i64>) -> Result<()> {
    let bytes = super::read_file(path)?;
    let lb = variant.label_bytes();
    let record = lb + 3 * PLANE;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(Error::data(
            path,
            format!(
                "truncated or corrupt: {} bytes is not a whole number of {record}-byte records",
                bytes.len()
            ),
        ));
    }
    super::reserve(pixels, bytes.len(), path)?;
    super::reserve(labels, bytes.len() / record, path)?;
    for (r, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[lb - 1] as usize;
        if label >= variant.num_classes() {
            return Err(Error::data(
                path,
                format!("record {r}: label {label} >= {} classes", variant.num_classes()),
            ));
        }
        labels.push(label as i64);
        let planes = &rec[lb..];
        for p in 0..PLANE {
            pixels.extend_from_slice(&[planes[p], planes[PLANE + p], planes[2 * PLANE + p]]);
        }
    }
    Ok(())
}

/// Class names from the metadata file, one per line, or the class indices when it is absent.
fn class_names(path: &Path, n: usize) -> Vec<String> {
    let names: Vec<String> = std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if names.len() == n {
        names
    } else {
        (0..n).map(|c| c.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: &[u8], r: u8, g: u8, b: u8) -> Vec<u8> {
        let mut v = label.to_vec();
        for c in [r, g, b] {
            v.extend(std::iter::repeat_n(c, PLANE));
        }
        v
    }

    #[test]
    fn cifar10_planes_become_hwc_and_names_are_read() {
        let dir = darkmagic_base::testutil::tempdir("cifar10");
        for i in 1..=5 {
            std::fs::write(dir.join(format!("data_batch_{i}.bin")), record(&[i], 10, 20, 30)).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), record(&[9], 1, 2, 3)).unwrap();
        let names = (0..10).map(|i| format!("c{i}\n")).collect::<String>();
        std::fs::write(dir.join("batches.meta.txt"), names).unwrap();
        let d = load(&dir, Variant::Cifar10).unwrap();
        assert_eq!(d.train.labels, vec![1, 2, 3, 4, 5]);
        assert_eq!(&d.train.image(0)[..6], &[10, 20, 30, 10, 20, 30]);
        assert_eq!(d.test.unwrap().labels, vec![9]);
        assert_eq!(d.classes[3], "c3");
    }

    #[test]
    fn cifar100_uses_the_fine_label() {
        let dir = darkmagic_base::testutil::tempdir("cifar100");
        std::fs::write(dir.join("train.bin"), record(&[3, 77], 0, 0, 0)).unwrap();
        let d = load(&dir, Variant::Cifar100).unwrap();
        assert_eq!(d.train.labels, vec![77]);
        assert_eq!(d.classes.len(), 100);
        assert!(d.test.is_none());
    }

    #[test]
    fn truncated_batch_is_named() {
        let dir = darkmagic_base::testutil::tempdir("cifar-trunc");
        let mut rec = record(&[1], 0, 0, 0);
        rec.truncate(1000);
        std::fs::write(dir.join("train.bin"), rec).unwrap();
        let e = load(&dir, Variant::Cifar100).unwrap_err().to_string();
        assert!(e.contains("train.bin") && e.contains("truncated"), "{e}");
    }
}
