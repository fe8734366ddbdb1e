//! The data set resident on the training device (`train.loader = "device"`): the decoded u8
//! images are copied there once, and each training batch is gathered, augmented and normalised
//! there by batched tensor ops, so a GPU is not kept waiting on the host's per-image loops and
//! copies.
//!
//! The random numbers are the host path's: per image the same keyed RNG draws the crop offsets
//! and the flip ([`augment::Placement`]) and the erased rectangles ([`augment::erase::draw`]),
//! per batch the same mixup/CutMix draw ([`Mix::draw`]). The device applies them: a gather of
//! rows and columns (the crop of the padded image and the flip in one), a 256-entry table per
//! channel for the normalisation (the host's own values), a mask for the erased pixels, and the
//! batch mixed with its reverse. So a device batch equals the host's [`super::make_batch`]
//! element for element (tests below), not only in distribution.
//!
//! What runs here: padding (zero or reflect) and random crop, horizontal flip (random or
//! alternating), CutOut, random erasing, mixup, CutMix. Random-resized crops, AutoAugment,
//! RandAugment, colour jitter and images kept encoded (`data.decode = "per_batch"`) run on the
//! host path; [`crate::recipe::Recipe::host_only`] names what keeps a recipe there.
use super::{Normalizer, TrainOrder};
use crate::augment::{self, erase, mix::Mix};
use crate::data::{Images, Pixels};
use crate::error::{Error, Result};
use crate::rng::Rng;
use tch::{Device, Kind, Tensor};

/// One batch on the training device.
pub struct DeviceBatch {
    /// Normalised images (N, C, H, W), float32.
    pub images: Tensor,
    pub labels: Tensor,
    /// Soft targets (N, classes) of a mixed batch.
    pub targets: Option<Tensor>,
}

/// A training split held on `device` as u8 (N, H + 1, W + 1, C): each image with one extra row
/// and column of zeros, where the zero padding of a crop gathers from.
pub struct Resident {
    pixels: Tensor,
    labels: Tensor,
    /// The same labels on the host, for the soft targets of mixed batches (no copy back from
    /// the device, which would wait for it, each batch).
    host_labels: Vec<i64>,
    /// The normaliser's tables, (C x 256) float32, flat.
    table: Tensor,
    h: usize,
    w: usize,
    c: usize,
    device: Device,
}

impl Resident {
    /// Copies `images` (decoded) to `device`, with `norm`'s tables.
    pub fn new(images: &Images, norm: &Normalizer, device: Device) -> Result<Resident> {
        let Pixels::Decoded(px) = &images.pixels else {
            return Err(Error::recipe(
                "train.loader",
                "\"device\" needs decoded images; set data.decode = \"at_load\"",
            ));
        };
        let (n, h, w, c) = (
            images.len() as i64,
            images.height as i64,
            images.width as i64,
            images.channels as i64,
        );
        let pixels = Tensor::from_slice(px)
            .view([n, h, w, c])
            .constant_pad_nd([0, 0, 0, 1, 0, 1]);
        let table: Vec<f32> = norm.tables.iter().flatten().copied().collect();
        Ok(Resident {
            pixels: pixels.to_device(device),
            labels: Tensor::from_slice(&images.labels).to_device(device),
            host_labels: images.labels.clone(),
            table: Tensor::from_slice(&table).to_device(device),
            h: images.height,
            w: images.width,
            c: images.channels,
            device,
        })
    }

    /// Training batch `b` of `order`: the images at `indices`, augmented as the host path would.
    pub fn train_batch(&self, indices: &[usize], order: &TrainOrder, b: usize) -> DeviceBatch {
        let (h, w, c, n) = (self.h, self.w, self.c, indices.len());
        let (mut rows, mut cols) = (Vec::with_capacity(n * h), Vec::with_capacity(n * w));
        let mut patches = Vec::with_capacity(n);
        for &i in indices {
            let sample = augment::Sample {
                seed: order.seed,
                epoch: order.epoch,
                index: i as u64,
            };
            let mut rng = sample.rng();
            let place = augment::Placement::draw(h, w, &order.augment, sample, &mut rng);
            // The extra zero row and column (index h, w) stand for the zero padding.
            rows.extend(place.rows.iter().map(|r| r.unwrap_or(h) as i64));
            cols.extend(place.cols.iter().map(|x| x.unwrap_or(w) as i64));
            patches.push(erase::draw(c, h, w, &order.augment, &mut rng));
        }
        let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(self.device);
        let mut images = self.gather(&idx, &rows, &cols);
        if patches.iter().any(|p| !p.is_empty()) {
            images = self.erase(images, &patches);
        }
        let labels = self.labels.index_select(0, &idx);
        let mix = Mix::draw(
            &order.augment,
            h,
            w,
            &mut Rng::keyed(order.seed, order.epoch, u64::MAX - 1 - b as u64),
        );
        let targets = (mix != Mix::None).then(|| {
            images = mixed(&images, mix);
            let batch_labels: Vec<i64> = indices.iter().map(|&i| self.host_labels[i]).collect();
            let t = mix.targets(&batch_labels, order.classes, order.label_smoothing);
            Tensor::from_slice(&t)
                .view([n as i64, order.classes as i64])
                .to_device(self.device)
        });
        DeviceBatch {
            images,
            labels,
            targets,
        }
    }

    /// The images `idx`, each row `rows[k*h + y]` and column `cols[k*w + x]` of image k taken,
    /// normalised: (N, C, H, W) float32.
    fn gather(&self, idx: &Tensor, rows: &[i64], cols: &[i64]) -> Tensor {
        let (n, h, w, c) = (idx.size()[0], self.h as i64, self.w as i64, self.c as i64);
        let batch = self.pixels.index_select(0, idx);
        let k = Tensor::arange(n, (Kind::Int64, self.device)).view([n, 1, 1]);
        let rows = Tensor::from_slice(rows).view([n, h, 1]).to_device(self.device);
        let cols = Tensor::from_slice(cols).view([n, 1, w]).to_device(self.device);
        let u8_nhwc = batch.index(&[Some(k), Some(rows), Some(cols)]);
        // Table lookup: channel ch's value v is table[ch * 256 + v], the host's own float.
        let offset = Tensor::arange(c, (Kind::Int64, self.device)) * 256;
        let flat = u8_nhwc.to_kind(Kind::Int64) + offset;
        let nchw = self.table.take(&flat).permute([0, 3, 1, 2]);
        // Copied into a fresh NCHW tensor rather than `contiguous()`: with one channel the permuted
        // tensor already counts as contiguous but keeps NHWC strides, and the convolution then
        // picks another kernel than for the host's batch (results differing in the last bits).
        let mut out = Tensor::empty([n, c, h, w], (Kind::Float, self.device));
        out.copy_(&nchw);
        out
    }

    /// `images` with the erased rectangles of each image painted over.
    fn erase(&self, images: Tensor, patches: &[Vec<erase::Patch>]) -> Tensor {
        let (c, h, w) = (self.c, self.h, self.w);
        let len = c * h * w;
        let mut mask = vec![false; patches.len() * len];
        let mut values = vec![0f32; patches.len() * len];
        for (k, image) in patches.iter().enumerate() {
            for p in image {
                p.paint(c, h, w, |i, v| {
                    mask[k * len + i] = true;
                    values[k * len + i] = v;
                });
            }
        }
        let shape = images.size();
        let mask = Tensor::from_slice(&mask).view(shape.as_slice()).to_device(self.device);
        let values = Tensor::from_slice(&values)
            .view(shape.as_slice())
            .to_device(self.device);
        values.where_self(&mask, &images)
    }
}

/// The batch mixed with its reverse (image i with image n - 1 - i), as [`Mix::apply`]: mixup
/// weighs them lambda and 1 - lambda (each product rounded to float32, then summed), CutMix
/// pastes the reverse's box.
fn mixed(images: &Tensor, mix: Mix) -> Tensor {
    let reversed = images.flip([0]);
    match mix {
        Mix::None => images.shallow_clone(),
        Mix::Mixup { lambda } => images * (lambda as f32) as f64 + reversed * ((1.0 - lambda) as f32) as f64,
        Mix::CutMix { y0, y1, x0, x1, .. } => {
            let out = images.copy();
            let (y, x) = (y0 as i64, x0 as i64);
            let (hh, ww) = ((y1 - y0) as i64, (x1 - x0) as i64);
            out.narrow(2, y, hh)
                .narrow(3, x, ww)
                .copy_(&reversed.narrow(2, y, hh).narrow(3, x, ww));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{Mode, make_batch};
    use crate::recipe::{AugPolicy, AugmentConfig, EraseMode, FlipMode, PadMode, Recipe};

    /// The digits' first 300 training images as RGB, so that channels differ.
    fn images() -> Images {
        let d = crate::data::digits::load().unwrap().train;
        let Pixels::Decoded(px) = &d.pixels else { unreachable!() };
        let rgb: Vec<u8> = px.iter().take(300 * 64).flat_map(|&v| [v, v / 2, 255 - v]).collect();
        Images {
            pixels: Pixels::Decoded(rgb),
            labels: d.labels[..300].to_vec(),
            channels: 3,
            ..d
        }
    }

    /// No augmentation at all: the fields each test sets are the ones at work.
    fn none() -> AugmentConfig {
        AugmentConfig {
            pad: 0,
            hflip: false,
            policy: AugPolicy::None,
            cutout_fraction: 0.0,
            erase_prob: 0.0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            random_resized_crop: false,
            ..AugmentConfig::default()
        }
    }

    fn order(augment: AugmentConfig, epoch: u64) -> TrainOrder {
        TrainOrder {
            seed: 11,
            epoch,
            batch_size: 64,
            accumulate: 1,
            augment,
            classes: 10,
            label_smoothing: 0.1,
        }
    }

    /// Every batch of two epochs built on the device equals the host's, element for element.
    fn same_as_host(augment: AugmentConfig) {
        let im = images();
        let norm = Normalizer::new(&[0.3, 0.2, 0.6], &[0.2, 0.1, 0.3], 3);
        let r = Resident::new(&im, &norm, Device::Cpu).unwrap();
        let mut augmented = 0;
        for epoch in [1, 2] {
            let o = order(augment.clone(), epoch);
            for (b, idx) in o.batches(im.len()).iter().enumerate() {
                let host = make_batch(&im, idx, &norm, Mode::Train(&o, b)).unwrap();
                let dev = r.train_batch(idx, &o, b);
                let px: Vec<f32> = Vec::try_from(dev.images.flatten(0, -1)).unwrap();
                assert_eq!(dev.images.size(), host.shape.to_vec());
                // The same memory layout too: the convolutions pick their kernels by it.
                assert_eq!(dev.images.stride(), host.images(Device::Cpu).stride());
                assert!(px == host.pixels, "{augment:?}: epoch {epoch} batch {b} differs");
                assert_eq!(Vec::<i64>::try_from(&dev.labels).unwrap(), host.labels);
                let targets = dev.targets.map(|t| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap());
                assert_eq!(targets, host.targets);
                let plain = make_batch(&im, idx, &norm, Mode::Eval(&none())).unwrap();
                augmented += usize::from(plain.pixels != host.pixels);
            }
        }
        assert!(
            augmented >= 8,
            "{augment:?}: only {augmented} of 8 batches were augmented"
        );
    }

    #[test]
    fn padded_crops_and_flips_equal_the_host_path() {
        for (pad_mode, hflip_mode) in [
            (PadMode::Zero, FlipMode::Random),
            (PadMode::Reflect, FlipMode::Alternating),
        ] {
            same_as_host(AugmentConfig {
                pad: 2,
                pad_mode,
                hflip: true,
                hflip_mode,
                ..none()
            });
        }
    }

    #[test]
    fn cutout_and_random_erasing_equal_the_host_path() {
        for erase_mode in [EraseMode::Const, EraseMode::Rand, EraseMode::Pixel] {
            same_as_host(AugmentConfig {
                pad: 1,
                cutout_fraction: 0.25,
                erase_prob: 0.5,
                erase_mode,
                ..none()
            });
        }
    }

    #[test]
    fn mixup_and_cutmix_equal_the_host_path() {
        same_as_host(AugmentConfig {
            hflip: true,
            mixup_alpha: 0.8,
            cutmix_alpha: 1.0,
            mix_prob: 0.9,
            ..none()
        });
    }

    #[test]
    fn recipes_the_device_cannot_run_are_named() {
        let with = |key: &str, value: &str| {
            Recipe::load(None, &["train.loader=\"device\"".to_string(), format!("{key}={value}")])
        };
        for (key, value) in [
            ("augment.random_resized_crop", "true"),
            ("augment.policy", "\"autoaugment_cifar10\""),
        ] {
            let e = with(key, value).unwrap_err().to_string();
            assert!(
                e.contains("train.loader") && e.contains(&format!("cannot run {key}")),
                "{e}"
            );
        }
        assert!(with("augment.policy", "\"none\"").is_ok());
        let decode = Recipe::load(
            None,
            &[
                "train.loader=\"device\"",
                "data.dataset=\"folder\"",
                "data.path=\"x\"",
                "data.image_size=8",
                "data.decode=\"per_batch\"",
                "augment.policy=\"none\"",
            ]
            .map(String::from),
        );
        assert!(
            decode
                .unwrap_err()
                .to_string()
                .contains("cannot run data.decode = \"per_batch\"")
        );
    }
}
