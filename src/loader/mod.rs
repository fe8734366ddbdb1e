//! Batches: augmented, normalised float tensors (N, C, H, W) and int64 labels, built on a
//! prefetch thread so the next batch is ready while the model trains on the current one.
use crate::augment;
use crate::augment::mix::Mix;
use crate::data::Images;
use crate::error::{Error, Result};
use crate::recipe::AugmentConfig;
use crate::rng::Rng;
use crate::rundir::ModelSpec;
use rayon::prelude::*;
use std::sync::{Arc, mpsc};
use tch::Tensor;

pub mod resident;

/// One batch on the CPU.
///
/// The data stay in host vectors until the consumer asks for tensors: building a tensor runs a
/// libtorch copy whose OpenMP team would otherwise live, and spin, on the prefetch thread.
pub struct Batch {
    /// Normalised images, (N, C, H, W) row-major.
    pub pixels: Vec<f32>,
    pub shape: [i64; 4],
    pub labels: Vec<i64>,
    /// Soft targets (N x classes) of a mixed batch; None when the batch is not mixed.
    pub targets: Option<Vec<f32>>,
}

impl Batch {
    pub fn images(&self, device: tch::Device) -> Tensor {
        Tensor::from_slice(&self.pixels).view(self.shape).to_device(device)
    }

    pub fn labels(&self, device: tch::Device) -> Tensor {
        Tensor::from_slice(&self.labels).to_device(device)
    }

    /// The batch's tensors on `device`.
    pub fn to_device(&self, device: tch::Device) -> resident::DeviceBatch {
        resident::DeviceBatch {
            images: self.images(device),
            labels: self.labels(device),
            targets: self.targets(device),
        }
    }

    pub fn targets(&self, device: tch::Device) -> Option<Tensor> {
        let n = self.shape[0];
        self.targets
            .as_ref()
            .map(|t| Tensor::from_slice(t).view([n, t.len() as i64 / n]).to_device(device))
    }
}

/// Maps u8 pixels to `(v / 255 - mean[c]) / std[c]` through one 256-entry table per channel.
#[derive(Clone, Debug)]
pub struct Normalizer {
    tables: Vec<[f32; 256]>,
}

impl Normalizer {
    /// The input normalisation a model of `spec` was trained with.
    pub fn of(spec: &ModelSpec) -> Self {
        Normalizer::new(&spec.mean, &spec.std, spec.channels)
    }

    pub fn new(mean: &[f64], std: &[f64], channels: usize) -> Self {
        let pick = |v: &[f64], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        let tables = (0..channels)
            .map(|c| std::array::from_fn(|v| ((v as f64 / 255.0 - pick(mean, c)) / pick(std, c)) as f32))
            .collect();
        Normalizer { tables }
    }

    /// Writes one HWC u8 image as normalised CHW floats into `out`.
    fn write_chw(&self, hwc: &[u8], out: &mut [f32]) {
        let c = self.tables.len();
        let plane = hwc.len() / c;
        for (p, px) in hwc.chunks_exact(c).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                out[ch * plane + p] = self.tables[ch][v as usize];
            }
        }
    }
}

/// How the training batches of one epoch are drawn.
#[derive(Clone, Debug)]
pub struct TrainOrder {
    pub seed: u64,
    pub epoch: u64,
    /// Images per (micro-)batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step: an epoch has a multiple of this many batches.
    pub accumulate: usize,
    pub augment: AugmentConfig,
    /// Number of classes and label smoothing, for the soft targets of mixed batches.
    pub classes: usize,
    pub label_smoothing: f64,
}

impl TrainOrder {
    /// Optimizer steps per epoch: full effective batches (`batch_size * accumulate` images).
    pub fn steps(&self, n: usize) -> usize {
        (n / (self.batch_size * self.accumulate)).max(1)
    }

    /// The sample indices of each batch, in a permutation drawn from (seed, epoch).
    pub fn batches(&self, n: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..n).collect();
        Rng::keyed(self.seed, self.epoch, u64::MAX).shuffle(&mut order);
        let bs = self.batch_size.min(n);
        order
            .chunks_exact(bs)
            .take(self.steps(n) * self.accumulate)
            .map(<[usize]>::to_vec)
            .collect()
    }
}

/// What a batch is for.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// Training, with the batch's index in the epoch (it keys the batch's mix draw).
    Train(&'a TrainOrder, usize),
    /// Evaluation, with the recipe's evaluation crop.
    Eval(&'a AugmentConfig),
}

/// Builds one batch from `indices`. For training,
/// each image is augmented with its own keyed RNG, then the batch may be mixed (mixup/CutMix),
/// which gives it soft targets. Fails if an image file cannot be decoded.
pub fn make_batch(images: &Images, indices: &[usize], norm: &Normalizer, mode: Mode) -> Result<Batch> {
    let (h, w, c) = (images.height, images.width, images.channels);
    let len = images.image_len();
    let n = indices.len();
    let mut data = vec![0f32; n * len];
    // Images are augmented in parallel (rayon); each draws from its own keyed RNG, so the batch
    // is the same whatever the number of threads.
    data.par_chunks_mut(len)
        .zip(indices.par_iter())
        .try_for_each(|(out, &i)| {
            images.with_image(i, |src| match mode {
                Mode::Train(o, _) => {
                    let sample = augment::Sample {
                        seed: o.seed,
                        epoch: o.epoch,
                        index: i as u64,
                    };
                    let mut rng = sample.rng();
                    norm.write_chw(&augment::apply(src, h, w, &o.augment, sample, &mut rng), out);
                    augment::erase::apply(out, c, h, w, &o.augment, &mut rng);
                }
                Mode::Eval(a) => norm.write_chw(&augment::eval(src, h, w, a), out),
            })
        })?;
    let labels: Vec<i64> = indices.iter().map(|&i| images.labels[i]).collect();
    let mut targets = None;
    if let Mode::Train(o, b) = mode {
        let mix = Mix::draw(
            &o.augment,
            h,
            w,
            &mut Rng::keyed(o.seed, o.epoch, u64::MAX - 1 - b as u64),
        );
        if mix != Mix::None {
            mix.apply(&mut data, n, c, h, w);
            targets = Some(mix.targets(&labels, o.classes, o.label_smoothing));
        }
    }
    Ok(Batch {
        pixels: data,
        shape: [n as i64, c as i64, h as i64, w as i64],
        labels,
        targets,
    })
}

/// The training batches of one epoch, built `depth` batches ahead on a background thread.
pub fn train_epoch(images: Arc<Images>, norm: Normalizer, order: TrainOrder, depth: usize) -> Prefetch {
    let (tx, rx) = mpsc::sync_channel(depth);
    let thread = std::thread::spawn(move || {
        for (b, idx) in order.batches(images.len()).iter().enumerate() {
            let batch = make_batch(&images, idx, &norm, Mode::Train(&order, b));
            let failed = batch.is_err();
            if tx.send(batch).is_err() || failed {
                return;
            }
        }
    });
    Prefetch {
        batches: rx.into_iter(),
        thread: Some(thread),
    }
}

/// The batches a prefetch thread sends. When they run out the thread is joined, and a panic
/// there becomes the last item, an error, instead of an epoch that silently ends early.
pub struct Prefetch {
    batches: mpsc::IntoIter<Result<Batch>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for Prefetch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if let Some(batch) = self.batches.next() {
            return Some(batch);
        }
        let panic = self.thread.take()?.join().err()?;
        Some(Err(Error::panic("the data loader thread", panic.as_ref())))
    }
}

/// Evaluation batches in dataset order, with the evaluation crop only, built as they are consumed.
pub fn eval_batches<'a>(
    images: &'a Images,
    norm: &'a Normalizer,
    augment: &'a AugmentConfig,
    batch_size: usize,
) -> impl Iterator<Item = Result<Batch>> + 'a {
    let n = images.len();
    (0..n).step_by(batch_size).map(move |start| {
        let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        make_batch(images, &idx, norm, Mode::Eval(augment))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Pixels;

    fn order(epoch: u64) -> TrainOrder {
        TrainOrder {
            seed: 5,
            epoch,
            batch_size: 4,
            accumulate: 1,
            augment: AugmentConfig::default(),
            classes: 3,
            label_smoothing: 0.0,
        }
    }

    #[test]
    fn epochs_cover_distinct_samples_in_seeded_orders() {
        let b = order(0).batches(10);
        assert_eq!(b.len(), 2);
        let mut all: Vec<usize> = b.concat();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8);
        assert_eq!(order(0).batches(10), b);
        assert_ne!(order(1).batches(10), b);
    }

    #[test]
    fn batches_are_identical_with_one_or_two_threads() {
        let d = crate::data::digits::load().unwrap().train;
        let norm = Normalizer::new(&[0.5], &[0.25], 1);
        let aug = AugmentConfig {
            pad: 1,
            cutout_fraction: 0.5,
            mixup_alpha: 0.4,
            ..AugmentConfig::default()
        };
        let o = TrainOrder {
            augment: aug,
            classes: 10,
            label_smoothing: 0.1,
            batch_size: 64,
            ..order(3)
        };
        let idx = &o.batches(d.len())[2];
        let with = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| make_batch(&d, idx, &norm, Mode::Train(&o, 2)).unwrap())
        };
        let (a, b) = (with(1), with(2));
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.targets.unwrap(), b.targets.unwrap());
        let plain = make_batch(&d, idx, &norm, Mode::Eval(&AugmentConfig::default())).unwrap();
        assert_ne!(a.pixels, plain.pixels, "the batch was augmented");
    }

    #[test]
    fn mixed_batches_carry_soft_targets() {
        let images = Images {
            pixels: Pixels::Decoded((0..8).collect()),
            labels: vec![0, 1, 2, 0, 1, 2, 0, 1],
            height: 1,
            width: 1,
            channels: 1,
            names: Vec::new(),
        };
        let norm = Normalizer::new(&[0.0], &[1.0], 1);
        let plain = order(0);
        assert!(
            make_batch(&images, &[0, 1, 2, 3], &norm, Mode::Train(&plain, 0))
                .unwrap()
                .targets
                .is_none()
        );
        let mixed = TrainOrder {
            augment: AugmentConfig {
                mixup_alpha: 1.0,
                ..AugmentConfig::default()
            },
            ..order(0)
        };
        let b = make_batch(&images, &[0, 1, 2, 3], &norm, Mode::Train(&mixed, 0)).unwrap();
        let t = b.targets(tch::Device::Cpu).unwrap();
        assert_eq!(t.size(), vec![4, 3]);
        let sums: Vec<f32> = Vec::try_from(t.sum_dim_intlist(1, false, tch::Kind::Float)).unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
    }

    #[test]
    fn normalisation_is_chw_and_uses_per_channel_stats() {
        let images = Images {
            pixels: Pixels::Decoded(vec![0, 255, 51, 102]),
            labels: vec![3],
            height: 1,
            width: 2,
            channels: 2,
            names: Vec::new(),
        };
        let norm = Normalizer::new(&[0.0, 0.5], &[1.0, 0.5], 2);
        let b = make_batch(&images, &[0], &norm, Mode::Eval(&AugmentConfig::default())).unwrap();
        assert_eq!(b.images(tch::Device::Cpu).size(), vec![1, 2, 1, 2]);
        let v = b.pixels.clone();
        let expected = [0.0, 0.2, (1.0 - 0.5) / 0.5, (0.4 - 0.5) / 0.5];
        for (a, e) in v.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{v:?}");
        }
        assert_eq!(b.labels, vec![3]);
    }
}
