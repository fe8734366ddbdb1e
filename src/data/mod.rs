//! Datasets: readers for each format, the seeded train/validation split, and the batch loader.
//!
//! Every reader yields [`Images`]: u8 pixels in HWC order (1 or 3 channels) plus integer labels.
//! The formats: the embedded digits, IDX (MNIST, Fashion-MNIST), CIFAR-10/100 binaries, and
//! image folders.
pub mod cifar;
pub mod digits;
pub mod folder;
pub mod idx;
pub mod loader;

use crate::error::{Error, Result};
use crate::recipe::{DataConfig, DatasetKind};
use crate::rng::Rng;
use std::path::Path;

/// A set of equally sized images, u8 HWC, with one label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Images {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The pixels of image `i`, HWC.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Images {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Images {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            ..*self
        }
    }

    /// Number of images per class, for `num_classes` classes.
    pub fn class_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Per-channel mean and standard deviation of the pixels, in [0, 1] scale.
    pub fn channel_stats(&self) -> (Vec<f64>, Vec<f64>) {
        let c = self.channels;
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for (i, &p) in self.pixels.iter().enumerate() {
            let v = p as f64 / 255.0;
            sum[i % c] += v;
            sq[i % c] += v * v;
        }
        let n = (self.pixels.len() / c).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / n - m * m).max(1e-12).sqrt())
            .collect();
        (mean, std)
    }
}

/// A dataset as its format stores it: a training split and, where the format has one, a test split.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Human-readable format name, e.g. "IDX" or "CIFAR-10 binary".
    pub format: String,
    pub classes: Vec<String>,
    pub train: Images,
    pub test: Option<Images>,
}

/// The splits a training run uses.
#[derive(Clone, Debug)]
pub struct Splits {
    pub classes: Vec<String>,
    pub train: Images,
    pub val: Images,
    pub test: Option<Images>,
}

/// Loads the dataset a recipe names.
pub fn load(cfg: &DataConfig) -> Result<Dataset> {
    let path = || {
        cfg.path
            .as_deref()
            .ok_or_else(|| Error::recipe("data.path", "required for this dataset"))
    };
    match cfg.dataset {
        DatasetKind::Digits => digits::load(),
        DatasetKind::Idx => idx::load(path()?),
        DatasetKind::Cifar10 => cifar::load(path()?, cifar::Variant::Cifar10),
        DatasetKind::Cifar100 => cifar::load(path()?, cifar::Variant::Cifar100),
        DatasetKind::Folder => folder::load(path()?, cfg.image_size),
    }
}

/// Guesses the format of the dataset at `path` from the files it holds ("digits" is the embedded set).
pub fn detect(path: &Path) -> Result<DatasetKind> {
    if path.as_os_str() == "digits" {
        return Ok(DatasetKind::Digits);
    }
    if !path.is_dir() {
        return Err(Error::data(
            path,
            "not a folder (expected a dataset folder or `digits`)",
        ));
    }
    if idx::find(path, "train-images").is_ok() {
        Ok(DatasetKind::Idx)
    } else if path.join("data_batch_1.bin").exists() {
        Ok(DatasetKind::Cifar10)
    } else if path.join("train.bin").exists() {
        Ok(DatasetKind::Cifar100)
    } else {
        Ok(DatasetKind::Folder)
    }
}

/// Holds out `val_fraction` of each class of `train` for validation, drawn with `seed`.
pub fn split(dataset: Dataset, val_fraction: f64, seed: u64) -> Splits {
    let classes = dataset.classes.len();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in dataset.train.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut train_idx, mut val_idx) = (Vec::new(), Vec::new());
    for (c, mut idx) in by_class.into_iter().enumerate() {
        Rng::keyed(seed, u64::MAX, c as u64).shuffle(&mut idx);
        let n_val = (idx.len() as f64 * val_fraction).round() as usize;
        val_idx.extend_from_slice(&idx[..n_val]);
        train_idx.extend_from_slice(&idx[n_val..]);
    }
    train_idx.sort_unstable();
    val_idx.sort_unstable();
    Splits {
        classes: dataset.classes,
        val: dataset.train.select(&val_idx),
        train: dataset.train.select(&train_idx),
        test: dataset.test,
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Inflates gzip data (detected by its magic bytes) or returns the bytes as they are.
pub(crate) fn maybe_gunzip(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| Error::data(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n_per_class: usize, classes: usize) -> Dataset {
        let n = n_per_class * classes;
        Dataset {
            format: "toy".into(),
            classes: (0..classes).map(|c| c.to_string()).collect(),
            train: Images {
                pixels: (0..n).map(|i| i as u8).collect(),
                labels: (0..n).map(|i| (i % classes) as i64).collect(),
                height: 1,
                width: 1,
                channels: 1,
            },
            test: None,
        }
    }

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let s = split(toy(20, 3), 0.25, 1);
        assert_eq!(s.val.class_counts(3), vec![5, 5, 5]);
        assert_eq!(s.train.class_counts(3), vec![15, 15, 15]);
        let mut all: Vec<u8> = s.train.pixels.iter().chain(&s.val.pixels).copied().collect();
        all.sort();
        assert_eq!(all, (0..60).collect::<Vec<u8>>());
        assert_eq!(split(toy(20, 3), 0.25, 1).val, s.val);
        assert_ne!(split(toy(20, 3), 0.25, 2).val, s.val);
    }

    #[test]
    fn channel_stats_of_known_pixels() {
        let im = Images {
            pixels: vec![0, 255, 0, 255],
            labels: vec![0, 0],
            height: 1,
            width: 1,
            channels: 2,
        };
        let (m, s) = im.channel_stats();
        assert_eq!(m, vec![0.0, 1.0]);
        assert!(s.iter().all(|&v| v < 1e-5));
    }
}
