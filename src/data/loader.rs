//! Batches: augmented, normalised float tensors (N, C, H, W) and int64 labels, built on a
//! prefetch thread so the next batch is ready while the model trains on the current one.
use super::Images;
use crate::augment;
use crate::recipe::AugmentConfig;
use crate::rng::Rng;
use std::sync::{Arc, mpsc};
use tch::Tensor;

/// One batch on the CPU.
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// Maps u8 pixels to `(v / 255 - mean[c]) / std[c]` through one 256-entry table per channel.
#[derive(Clone, Debug)]
pub struct Normalizer {
    tables: Vec<[f32; 256]>,
}

impl Normalizer {
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
    pub batch_size: usize,
    pub augment: AugmentConfig,
}

impl TrainOrder {
    /// Full batches per epoch (the last partial batch is dropped, as timm's train loader does).
    pub fn steps(&self, n: usize) -> usize {
        (n / self.batch_size).max(1)
    }

    /// The sample indices of each batch, in a permutation drawn from (seed, epoch).
    pub fn batches(&self, n: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..n).collect();
        Rng::keyed(self.seed, self.epoch, u64::MAX).shuffle(&mut order);
        let bs = self.batch_size.min(n);
        order
            .chunks_exact(bs)
            .take(self.steps(n))
            .map(<[usize]>::to_vec)
            .collect()
    }
}

/// Builds one batch from `indices`, augmenting each image with its own keyed RNG when `order` is given.
pub fn make_batch(images: &Images, indices: &[usize], norm: &Normalizer, order: Option<&TrainOrder>) -> Batch {
    let (h, w, c) = (images.height, images.width, images.channels);
    let len = images.image_len();
    let mut data = vec![0f32; indices.len() * len];
    for (k, &i) in indices.iter().enumerate() {
        let out = &mut data[k * len..(k + 1) * len];
        match order {
            Some(o) => {
                let mut rng = Rng::keyed(o.seed, o.epoch, i as u64);
                norm.write_chw(&augment::apply(images.image(i), h, w, c, &o.augment, &mut rng), out);
            }
            None => norm.write_chw(images.image(i), out),
        }
    }
    let labels: Vec<i64> = indices.iter().map(|&i| images.labels[i]).collect();
    Batch {
        images: Tensor::from_slice(&data).view([indices.len() as i64, c as i64, h as i64, w as i64]),
        labels: Tensor::from_slice(&labels),
    }
}

/// The training batches of one epoch, built `depth` batches ahead on a background thread.
pub fn train_epoch(
    images: Arc<Images>,
    norm: Normalizer,
    order: TrainOrder,
    depth: usize,
) -> impl Iterator<Item = Batch> {
    let (tx, rx) = mpsc::sync_channel(depth);
    std::thread::spawn(move || {
        for idx in order.batches(images.len()) {
            if tx.send(make_batch(&images, &idx, &norm, Some(&order))).is_err() {
                return;
            }
        }
    });
    rx.into_iter()
}

/// Evaluation batches in dataset order, without augmentation.
pub fn eval_batches<'a>(
    images: &'a Images,
    norm: &'a Normalizer,
    batch_size: usize,
) -> impl Iterator<Item = Batch> + 'a {
    let idx: Vec<usize> = (0..images.len()).collect();
    idx.chunks(batch_size)
        .map(|c| make_batch(images, c, norm, None))
        .collect::<Vec<_>>()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::PadMode;

    fn order(epoch: u64) -> TrainOrder {
        TrainOrder {
            seed: 5,
            epoch,
            batch_size: 4,
            augment: AugmentConfig {
                pad: 0,
                pad_mode: PadMode::Zero,
                hflip: false,
            },
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
    fn normalisation_is_chw_and_uses_per_channel_stats() {
        let images = Images {
            pixels: vec![0, 255, 51, 102],
            labels: vec![3],
            height: 1,
            width: 2,
            channels: 2,
        };
        let norm = Normalizer::new(&[0.0, 0.5], &[1.0, 0.5], 2);
        let b = make_batch(&images, &[0], &norm, None);
        assert_eq!(b.images.size(), vec![1, 2, 1, 2]);
        let v: Vec<f32> = Vec::try_from(b.images.flatten(0, -1)).unwrap();
        let expected = [0.0, 0.2, (1.0 - 0.5) / 0.5, (0.4 - 0.5) / 0.5];
        for (a, e) in v.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{v:?}");
        }
        assert_eq!(Vec::<i64>::try_from(&b.labels).unwrap(), vec![3]);
    }
}
