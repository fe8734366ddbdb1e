//! Datasets on u8 pixels, with no libtorch: readers for each format, the seeded
//! train/validation split, the data fingerprint, and the [`image`] and [`augment`] code the
//! readers and the batch loader (the `darkmagic` crate's `loader`) share.
//!
//! Every reader yields [`Images`]: u8 pixels in HWC order (1 or 3 channels) plus integer labels.
//! The formats: the embedded digits, IDX (MNIST, Fashion-MNIST), CIFAR-10/100 binaries, and
//! image folders.
pub mod augment;
pub mod cifar;
pub mod digits;
pub mod fingerprint;
pub mod folder;
pub mod idx;
pub mod image;
pub mod labels;
pub mod manifest;
pub mod parquet;
pub mod source;
pub mod tar;
pub mod webdataset;

use crate::image::View;
use crate::source::Source;
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::{DataConfig, DatasetKind, Interpolation, Recipe};
use darkmagic_base::rng::Rng;
use darkmagic_base::rundir::ModelSpec;
use std::path::Path;

/// A set of images with one label each, all brought to `height` x `width` x `channels` (HWC)
/// by the time they reach a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub pixels: Pixels,
    pub labels: Vec<i64>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// The files the images were decoded from at load, one per image, to name them (`eval`'s
    /// predictions); empty where one file holds many images (IDX, CIFAR) and for
    /// [`Pixels::Encoded`], whose sources name the images themselves.
    pub names: Vec<Source>,
}

/// Where the pixels of a set of images are.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    /// Decoded u8 HWC images of the set's size, one after another.
    Decoded(Vec<u8>),
    /// Encoded images (files, tar members, bytes), decoded when a batch needs them
    /// (`data.decode = "per_batch"`), at their own size: the transforms crop and resize them to
    /// the set's size.
    Encoded(Vec<Source>),
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

    /// Calls `f` with image `i` as stored: its decoded pixels, or its file decoded now.
    pub fn with_image<R>(&self, i: usize, f: impl FnOnce(View) -> R) -> Result<R> {
        let c = self.channels;
        match &self.pixels {
            Pixels::Decoded(px) => {
                let n = self.image_len();
                let (h, w) = (self.height, self.width);
                Ok(f(View::new(&px[i * n..(i + 1) * n], h, w, c)))
            }
            Pixels::Encoded(sources) => {
                let img = folder::decode(&sources[i], c)?;
                Ok(f(img.view()))
            }
        }
    }

    /// Image `i` as stored (decoded if it is a file), for tests.
    #[cfg(test)]
    pub fn image(&self, i: usize) -> Vec<u8> {
        self.with_image(i, |v| v.px.to_vec()).unwrap()
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Images {
        let pixels = match &self.pixels {
            Pixels::Decoded(px) => {
                let n = self.image_len();
                Pixels::Decoded(indices.iter().flat_map(|&i| &px[i * n..(i + 1) * n]).copied().collect())
            }
            Pixels::Encoded(sources) => Pixels::Encoded(indices.iter().map(|&i| sources[i].clone()).collect()),
        };
        Images {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            names: match self.names.is_empty() {
                true => Vec::new(),
                false => indices.iter().map(|&i| self.names[i].clone()).collect(),
            },
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

    /// Per-channel mean and standard deviation of the pixels, in [0, 1] scale: over every image
    /// when decoded, over `STATS_FILES` evenly spaced ones when kept encoded.
    pub fn channel_stats(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        const STATS_FILES: usize = 256;
        let c = self.channels;
        let (mut sum, mut sq, mut count) = (vec![0f64; c], vec![0f64; c], 0usize);
        let step = match self.pixels {
            Pixels::Decoded(_) => 1,
            Pixels::Encoded(_) => self.len().div_ceil(STATS_FILES).max(1),
        };
        for i in (0..self.len()).step_by(step) {
            self.with_image(i, |v| {
                for (k, &p) in v.px.iter().enumerate() {
                    let x = p as f64 / 255.0;
                    sum[k % c] += x;
                    sq[k % c] += x * x;
                }
                count += v.px.len() / c;
            })?;
        }
        let n = count.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / n - m * m).max(1e-12).sqrt())
            .collect();
        Ok((mean, std))
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

impl Splits {
    /// What the model of `recipe` trained on these splits takes and gives: the training split's
    /// image shape and normalisation (`data.mean`/`data.std`, else the split's own statistics)
    /// and the class names.
    pub fn model_spec(&self, recipe: &Recipe) -> Result<ModelSpec> {
        let im = &self.train;
        let (mean, std) = match (&recipe.data.mean, &recipe.data.std) {
            (Some(m), Some(s)) => (m.clone(), s.clone()),
            _ => im.channel_stats()?,
        };
        for (key, v) in [("data.mean", &mean), ("data.std", &std)] {
            if v.len() != 1 && v.len() != im.channels {
                let c = im.channels;
                let expected = if c == 1 {
                    "1 value for this 1-channel data set".to_string()
                } else {
                    format!("1 or {c} values for this {c}-channel data set")
                };
                return Err(Error::recipe(
                    key,
                    format!("got {} values; expected {expected}", v.len()),
                ));
            }
        }
        Ok(ModelSpec {
            classes: self.classes.clone(),
            channels: im.channels,
            height: im.height,
            width: im.width,
            mean,
            std,
            recipe_digest: None,
            digest: None,
        })
    }
}

/// Loads the dataset a recipe names; folder images are resized with `interp`.
pub fn load(cfg: &DataConfig, interp: Interpolation) -> Result<Dataset> {
    let path = || {
        cfg.path
            .as_deref()
            .ok_or_else(|| Error::recipe("data.path", "required for this dataset"))
    };
    let reading = folder::Reading {
        image_size: cfg.image_size,
        decode: cfg.decode,
        interp,
    };
    let mut d = match cfg.dataset {
        DatasetKind::Digits => digits::load(),
        DatasetKind::Idx => idx::load(path()?),
        DatasetKind::Cifar10 => cifar::load(path()?, cifar::Variant::Cifar10),
        DatasetKind::Cifar100 => cifar::load(path()?, cifar::Variant::Cifar100),
        DatasetKind::Folder => folder::load(path()?, cfg.image_size, cfg.decode, interp),
        DatasetKind::Manifest => manifest::load(path()?, reading),
        DatasetKind::Parquet => parquet::load(path()?, reading),
        DatasetKind::Webdataset => webdataset::load(path()?, reading),
    }?;
    let classes = d.classes.len();
    if let Some(n) = cfg.train_subset {
        d.train = subset(&d.train, n, classes, "data.train_subset", "training")?;
    }
    if let (Some(n), Some(test)) = (cfg.test_subset, &d.test) {
        d.test = Some(subset(test, n, classes, "data.test_subset", "test")?);
    }
    Ok(d)
}

/// `n` of `images`, stratified: each class keeps its share of `n` (largest remainders rounded
/// up, ties to the lower class), its images drawn by a shuffle with a fixed key, so every seed
/// and every arm of a checklist sees the same subset. The images keep their order.
pub fn subset(images: &Images, n: usize, classes: usize, key: &str, split: &str) -> Result<Images> {
    let total = images.len();
    if n > total {
        return Err(Error::recipe(
            key,
            format!("got {n}; the {split} split has only {total} images"),
        ));
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in images.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    // Largest-remainder apportionment of n over the classes' sizes.
    let mut quota: Vec<usize> = by_class.iter().map(|c| c.len() * n / total).collect();
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(by_class[c].len() * n % total), c));
    let short = n - quota.iter().sum::<usize>();
    for &c in &order[..short] {
        quota[c] += 1;
    }
    let mut keep = Vec::with_capacity(n);
    for (c, mut idx) in by_class.into_iter().enumerate() {
        Rng::keyed(0, SUBSET_STREAM, c as u64).shuffle(&mut idx);
        keep.extend_from_slice(&idx[..quota[c]]);
    }
    keep.sort_unstable();
    Ok(images.select(&keep))
}

/// The random stream of the subset draws, apart from the validation split's (`u64::MAX`); their
/// seed is 0, not the recipe's (see [`subset`]).
const SUBSET_STREAM: u64 = u64::MAX - 1;

/// The splits of `recipe`'s data set as training draws them (`data.val_fraction`, `seed`).
pub fn load_splits(recipe: &Recipe) -> Result<Splits> {
    split(
        load(&recipe.data, recipe.augment.interpolation)?,
        recipe.data.val_fraction,
        recipe.seed,
    )
}

/// Guesses the format of the dataset at `path` from the files it holds ("digits" is the embedded set).
pub fn detect(path: &Path) -> Result<DatasetKind> {
    if path.as_os_str() == "digits" {
        return Ok(DatasetKind::Digits);
    }
    let manifest = |p: &Path| p.extension().is_some_and(|e| e == "csv" || e == "jsonl");
    if path.is_file() && manifest(path) || ["train.csv", "train.jsonl"].iter().any(|f| path.join(f).is_file()) {
        return Ok(DatasetKind::Manifest);
    }
    if !path.exists() && !path.to_str().is_some_and(|s| s.contains('{')) {
        return Err(Error::data(path, "no such file or folder"));
    }
    let ext = |p: &Path, e: &str| p.extension().is_some_and(|x| x == e);
    // A compressed shard is still a shard: the reader says why it cannot read it.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if [".tar.gz", ".tgz"].iter().any(|e| name.ends_with(e)) {
        return Ok(DatasetKind::Webdataset);
    }
    let holds =
        |dir: &Path, e: &str| std::fs::read_dir(dir).is_ok_and(|mut d| d.any(|f| f.is_ok_and(|f| ext(&f.path(), e))));
    if ext(path, "tar") || path.to_str().is_some_and(|s| s.contains('{')) || holds(path, "tar") {
        return Ok(DatasetKind::Webdataset);
    }
    // Hugging Face's layout keeps the files in `data/`.
    if ext(path, "parquet") || holds(path, "parquet") || holds(&path.join("data"), "parquet") {
        return Ok(DatasetKind::Parquet);
    }
    if !path.is_dir() && !path.is_file() {
        darkmagic_base::files::check_regular(path, u64::MAX)?;
    }
    if !path.is_dir() {
        return Err(Error::data(
            path,
            "not a folder (expected a dataset folder, a .csv or .jsonl manifest, a .parquet file, a .tar shard, or `digits`)",
        ));
    }
    // An IDX file there, even one that cannot be read (the reader then says why).
    if !matches!(idx::find(path, "train-images"), Err(Error::Data { ref message, .. }) if message == "file not found") {
        Ok(DatasetKind::Idx)
    } else if path.join("data_batch_1.bin").exists() {
        Ok(DatasetKind::Cifar10)
    } else if path.join("train.bin").exists() {
        Ok(DatasetKind::Cifar100)
    } else {
        Ok(DatasetKind::Folder)
    }
}

/// What `darkmagic data inspect` prints of the data set at `path`: its format, image size,
/// classes and the images of each class in the training and test splits.
pub fn describe(path: &Path) -> Result<String> {
    let cfg = DataConfig {
        dataset: detect(path)?,
        path: Some(path.to_path_buf()),
        ..Default::default()
    };
    let d = load(&cfg, Interpolation::Bilinear)?;
    let t = &d.train;
    let mut s = format!("path:     {}\n", path.display());
    s += &format!("format:   {}\n", d.format);
    s += &format!("images:   {}x{} pixels, {} channel(s)\n", t.width, t.height, t.channels);
    s += &format!("classes:  {}\n", d.classes.len());
    let test_counts = d.test.as_ref().map(|s| s.class_counts(d.classes.len()));
    s += &format!("train:    {} images\n", t.len());
    if let Some(test) = &d.test {
        s += &format!("test:     {} images\n", test.len());
    }
    s += &format!("{:>6}  {:<24} {:>8} {:>8}\n", "class", "name", "train", "test");
    for (c, (name, n)) in d.classes.iter().zip(t.class_counts(d.classes.len())).enumerate() {
        let test = test_counts.as_ref().map_or("-".to_string(), |v| v[c].to_string());
        s += &format!("{c:>6}  {name:<24} {n:>8} {test:>8}\n");
    }
    Ok(s)
}

/// Holds out `val_fraction` of each class of `train` for validation, drawn with `seed`. Fails
/// when no training image is left.
pub fn split(dataset: Dataset, val_fraction: f64, seed: u64) -> Result<Splits> {
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
    if train_idx.is_empty() {
        return Err(Error::recipe(
            "data.val_fraction",
            format!(
                "{val_fraction} of {} images holds out every one; no training image is left",
                dataset.train.len()
            ),
        ));
    }
    train_idx.sort_unstable();
    val_idx.sort_unstable();
    Ok(Splits {
        classes: dataset.classes,
        val: dataset.train.select(&val_idx),
        train: dataset.train.select(&train_idx),
        test: dataset.test,
    })
}

/// The most bytes one data file (IDX, CIFAR, after gzip decompression) may hold: 16 GiB, far
/// above MNIST (47 MB) or CIFAR (180 MB), so a corrupt header or a gzip bomb ends in an error
/// that names the file instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 16 << 30;

/// The most pixels one image file may have: Pillow's decompression-bomb limit
/// (`2 * Image.MAX_IMAGE_PIXELS`, where PIL raises `DecompressionBombError`), checked from the
/// header before anything is decoded.
pub const MAX_IMAGE_PIXELS: u64 = 2 * 89_478_485;

/// Reserves room for `additional` more items in `v`, or returns an error naming `path` when the
/// memory cannot be had (a file larger than the machine holds, `ulimit -v`), where a growing
/// `Vec` would abort the process.
pub(crate) fn reserve<T>(v: &mut Vec<T>, additional: usize, path: &Path) -> Result<()> {
    v.try_reserve(additional).map_err(|_| {
        let bytes = (v.len() + additional).saturating_mul(std::mem::size_of::<T>());
        Error::data(
            path,
            format!("cannot allocate {bytes} bytes for its data (out of memory)"),
        )
    })
}

/// Reads a whole file, naming it in the error; at most `MAX_FILE_BYTES`.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    // Opening a FIFO would block until a writer came, a device never end.
    darkmagic_base::files::check_regular(path, MAX_FILE_BYTES)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    read_bounded(path, file, len, |p, e| Error::io(p, e))
}

/// Reads `reader` to its end into memory, allocating as data arrives (starting from `hint`
/// bytes), with an error instead of an abort when it passes `MAX_FILE_BYTES` or memory runs out;
/// `read_error` names a failed read.
fn read_bounded(
    path: &Path,
    mut reader: impl std::io::Read,
    hint: u64,
    read_error: fn(&Path, std::io::Error) -> Error,
) -> Result<Vec<u8>> {
    let too_big = || {
        Error::data(
            path,
            format!(
                "holds more than {} GiB, the limit for one data file",
                MAX_FILE_BYTES >> 30
            ),
        )
    };
    if hint > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut out = Vec::new();
    reserve(&mut out, hint as usize, path)?;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(path, e)),
        };
        if (out.len() + n) as u64 > MAX_FILE_BYTES {
            return Err(too_big());
        }
        reserve(&mut out, n, path)?;
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Inflates gzip data (detected by its magic bytes) or returns the bytes as they are.
pub(crate) fn maybe_gunzip(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let hint = (bytes.len() as u64).saturating_mul(4).min(MAX_FILE_BYTES);
        let corrupt = |path: &Path, e: std::io::Error| Error::data(path, format!("corrupt gzip data: {e}"));
        read_bounded(path, flate2::read::GzDecoder::new(&bytes[..]), hint, corrupt)
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
                pixels: Pixels::Decoded((0..n).map(|i| i as u8).collect()),
                labels: (0..n).map(|i| (i % classes) as i64).collect(),
                height: 1,
                width: 1,
                channels: 1,
                names: Vec::new(),
            },
            test: None,
        }
    }

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let s = split(toy(20, 3), 0.25, 1).unwrap();
        assert_eq!(s.val.class_counts(3), vec![5, 5, 5]);
        assert_eq!(s.train.class_counts(3), vec![15, 15, 15]);
        let px = |im: &Images| match &im.pixels {
            Pixels::Decoded(px) => px.clone(),
            Pixels::Encoded(_) => unreachable!("decoded"),
        };
        let mut all: Vec<u8> = [px(&s.train), px(&s.val)].concat();
        all.sort();
        assert_eq!(all, (0..60).collect::<Vec<u8>>());
        assert_eq!(split(toy(20, 3), 0.25, 1).unwrap().val, s.val);
        assert_ne!(split(toy(20, 3), 0.25, 2).unwrap().val, s.val);
    }

    #[test]
    fn subset_keeps_each_class_share_the_same_images_for_every_seed() {
        // Classes of 30, 20 and 10 images; 25 of 60: shares 12.5, 8.33, 4.17 -> 12, 8, 4 and
        // the one left over to the largest remainder (class 0).
        let labels: Vec<i64> = (0..60)
            .map(|i| {
                if i < 30 {
                    0
                } else if i < 50 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let images = Images {
            pixels: Pixels::Decoded((0..60).collect()),
            labels,
            height: 1,
            width: 1,
            channels: 1,
            names: Vec::new(),
        };
        let s = subset(&images, 25, 3, "data.train_subset", "training").unwrap();
        assert_eq!(s.class_counts(3), vec![13, 8, 4]);
        let Pixels::Decoded(px) = &s.pixels else {
            unreachable!("decoded")
        };
        assert!(px.windows(2).all(|w| w[0] < w[1]), "order kept: {px:?}");
        assert!(px.iter().zip(&s.labels).all(|(&p, &l)| images.labels[p as usize] == l));
        assert_eq!(subset(&images, 25, 3, "k", "training").unwrap(), s);
        assert_eq!(subset(&images, 60, 3, "k", "training").unwrap(), images);
        let e = subset(&images, 61, 3, "data.train_subset", "training")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.train_subset") && e.contains("only 60 images"), "{e}");
    }

    #[test]
    fn channel_stats_of_known_pixels() {
        let im = Images {
            pixels: Pixels::Decoded(vec![0, 255, 0, 255]),
            labels: vec![0, 0],
            height: 1,
            width: 1,
            channels: 2,
            names: Vec::new(),
        };
        let (m, s) = im.channel_stats().unwrap();
        assert_eq!(m, vec![0.0, 1.0]);
        assert!(s.iter().all(|&v| v < 1e-5));
    }
}
