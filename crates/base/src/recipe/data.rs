//! `[data]`: the data set, its validation split and how images are decoded and normalised.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// scikit-learn's 8x8 digits (UCI), compiled into the binary.
    Digits,
    /// MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, ...), e.g. MNIST, Fashion-MNIST.
    Idx,
    /// CIFAR-10 binary batches (`data_batch_{1..5}.bin`, `test_batch.bin`).
    Cifar10,
    /// CIFAR-100 binary files (`train.bin`, `test.bin`), fine labels.
    Cifar100,
    /// One subfolder per class of PNG/JPEG files (optionally under `train/` and `val/`/`test/`).
    Folder,
    /// A CSV (or JSON lines, `.jsonl`) manifest of image path and label, or a folder holding
    /// `train.csv` and `test.csv`/`val.csv` (`data::manifest`).
    Manifest,
    /// Hugging Face parquet files (an `Image` and a `ClassLabel` column): one file, or a folder
    /// of `train-*`/`test-*`/`validation-*` files (`data::parquet`).
    Parquet,
    /// WebDataset tar shards (`KEY.png` + `KEY.cls`): one shard, a folder of them, or a brace
    /// pattern `train-{000..009}.tar` (`data::webdataset`).
    Webdataset,
}

impl DatasetKind {
    /// Whether the data set is image files (PNG, JPEG), decoded and sized by darkmagic
    /// (`data.image_size`, `data.decode`).
    pub fn is_image_files(self) -> bool {
        matches!(
            self,
            DatasetKind::Folder | DatasetKind::Manifest | DatasetKind::Parquet | DatasetKind::Webdataset
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decode {
    AtLoad,
    PerBatch,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Folder or file of the dataset; not used for `digits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Fraction of the training split held out for validation (stratified, seeded).
    pub val_fraction: f64,
    /// Use only this many images of the training split (before the validation hold-out): a
    /// class-stratified subset, the same for every seed, so a quick checklist pairs its trials
    /// on the same images. Unset: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Score only this many images of the test split (class-stratified, the same for every
    /// seed). Unset: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_subset: Option<usize>,
    /// Side length images of a `folder` dataset are brought to: at load, the shorter side resized
    /// to it and the centre square cropped; per batch, by the crop of the transforms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// When a `folder` dataset's files are decoded: all `at_load` (fast epochs, memory for every
    /// image) or `per_batch` on the loader threads (ImageNet-size sets; needs `image_size`).
    pub decode: Decode,
    /// Per-channel mean used to normalise inputs in [0, 1] scale; computed on the train split if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// Per-channel standard deviation; computed on the train split if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f64>>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::Digits,
            path: None,
            val_fraction: 0.1,
            train_subset: None,
            test_subset: None,
            image_size: None,
            decode: Decode::AtLoad,
            mean: None,
            std: None,
        }
    }
}

impl DataConfig {
    /// The `[data]` section's ranges and rules; every error names its key.
    pub fn validate(&self) -> Result<()> {
        let d = self;
        check(
            "data.val_fraction",
            d.val_fraction,
            (0.0..1.0).contains(&d.val_fraction),
            "in [0, 1)",
        )?;
        if d.dataset != DatasetKind::Digits && d.path.is_none() {
            return Err(Error::recipe(
                "data.path",
                "required for this dataset (a folder or file)",
            ));
        }
        for (key, n) in [
            ("data.train_subset", d.train_subset),
            ("data.test_subset", d.test_subset),
        ] {
            if n == Some(0) {
                return Err(Error::recipe(
                    key,
                    "got 0; expected at least 1 image (or leave it unset for all)",
                ));
            }
        }
        if let Some(s) = d.image_size
            && !(1..=MAX_IMAGE_SIZE).contains(&s)
        {
            return Err(Error::recipe(
                "data.image_size",
                format!("got {s}; expected 1 to {MAX_IMAGE_SIZE} pixels"),
            ));
        }
        if d.decode == Decode::PerBatch && (!d.dataset.is_image_files() || d.image_size.is_none()) {
            return Err(Error::recipe(
                "data.decode",
                "\"per_batch\" is for image-file datasets (`folder`, `manifest`, `parquet`, `webdataset`) and needs data.image_size",
            ));
        }
        if d.mean.is_some() != d.std.is_some() {
            let (set, unset) = if d.mean.is_some() {
                ("data.mean", "data.std")
            } else {
                ("data.std", "data.mean")
            };
            return Err(Error::recipe(
                unset,
                format!("required with {set}: give both or neither"),
            ));
        }
        for (key, v) in [("data.mean", &d.mean), ("data.std", &d.std)] {
            if let Some(v) = v
                && (v.len() != 1 && v.len() != 3 || v.iter().any(|x| !x.is_finite()))
            {
                return Err(Error::recipe(key, format!("got {v:?}; expected 1 or 3 finite values")));
            }
        }
        if let Some(std) = &d.std
            && std.iter().any(|&s| s <= 0.0)
        {
            return Err(Error::recipe("data.std", "every value must be > 0"));
        }
        Ok(())
    }
}
