//! Training augmentation: per image on u8 HWC buffers (random-resized crop, random crop after
//! padding, horizontal flip; `crop`, resampled by `image::resample`; then a policy: `ops`, `policy`), per image
//! after normalisation (`erase`: CutOut, random erasing), and per batch on float tensors (`mix`:
//! mixup, CutMix).
//!
//! Every draw comes from the sample's own [`Rng`], keyed by (seed, epoch, sample index), so the
//! same image gets the same augmentation in every trial that shares the seed.
pub mod crop;
pub mod erase;
pub mod mix;
pub mod ops;
pub mod policy;

use crate::image::{View, fit, resample};
use darkmagic_base::recipe::{AugPolicy, AugmentConfig, FlipMode, PadMode};
use darkmagic_base::rng::Rng;

/// The evaluation transform to `h` x `w`: shorter side to `floor(min(h, w) / eval_crop_fraction)`,
/// then the centre crop (`fit::center_fit`).
pub fn eval<'a>(src: View<'a>, h: usize, w: usize, cfg: &AugmentConfig) -> std::borrow::Cow<'a, [u8]> {
    fit::center_fit(src, h, w, cfg.eval_crop_fraction, cfg.interpolation)
}

/// Applies the recipe's augmentation to one image and returns an `h` x `w` image: a
/// random-resized crop (or, for an image of another size, the evaluation resize and centre crop),
/// random crop after padding, horizontal flip, then the policy (AutoAugment, RandAugment or color
/// jitter), each if enabled.
pub fn apply(src: View, h: usize, w: usize, cfg: &AugmentConfig, sample: Sample, rng: &mut Rng) -> Vec<u8> {
    let c = src.c;
    let fitted;
    let src = if cfg.random_resized_crop {
        let region = crop::random_resized_region(src.h, src.w, cfg.rrc_scale, cfg.rrc_ratio, rng);
        fitted = resample::resize(src.px, src.w, c, region, h, w, cfg.interpolation);
        &fitted[..]
    } else if (src.h, src.w) != (h, w) {
        fitted = fit::center_fit(src, h, w, 1.0, cfg.interpolation).into_owned();
        &fitted[..]
    } else {
        src.px
    };
    let place = Placement::draw(h, w, cfg, sample, rng);
    let mut out = vec![0u8; h * w * c];
    for (y, sy) in place.rows.iter().enumerate() {
        let Some(sy) = sy else { continue };
        for (x, sx) in place.cols.iter().enumerate() {
            let Some(sx) = sx else { continue };
            let (o, s) = ((y * w + x) * c, (sy * w + sx) * c);
            out[o..o + c].copy_from_slice(&src[s..s + c]);
        }
    }
    apply_policy(out, h, w, c, cfg, rng)
}

/// Where each pixel of an augmented `h` x `w` image comes from after the random crop of the
/// padded image and the horizontal flip: output row `y` is source row `rows[y]`, output column
/// `x` source column `cols[x]`, None where the zero padding shows. The host path copies pixels
/// by it; the device path (`darkmagic::loader::resident`) gathers them by it, so both draw the
/// same numbers from the same keyed RNG.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub rows: Vec<Option<usize>>,
    pub cols: Vec<Option<usize>>,
}

impl Placement {
    /// Draws the crop offsets (uniform in 0..=2 pad each, rows first) and the flip from `rng`,
    /// as [`apply`] does.
    pub fn draw(h: usize, w: usize, cfg: &AugmentConfig, sample: Sample, rng: &mut Rng) -> Placement {
        let (dy, dx) = if cfg.pad > 0 {
            (rng.below(2 * cfg.pad + 1), rng.below(2 * cfg.pad + 1))
        } else {
            (0, 0)
        };
        let flip = cfg.hflip && flipped(cfg.hflip_mode, sample, rng);
        let rows = (0..h).map(|y| source_index(y + dy, cfg.pad, h, cfg.pad_mode)).collect();
        let cols = (0..w)
            .map(|x| source_index(if flip { w - 1 - x } else { x } + dx, cfg.pad, w, cfg.pad_mode))
            .collect();
        Placement { rows, cols }
    }
}

/// Which image an augmentation is drawn for: its seed, epoch and index, the key of its [`Rng`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub seed: u64,
    pub epoch: u64,
    pub index: u64,
}

impl Sample {
    /// The sample's own random numbers, keyed by (seed, epoch, index).
    pub fn rng(self) -> Rng {
        Rng::keyed(self.seed, self.epoch, self.index)
    }
}

/// The random stream of the alternating flip's first coin, apart from the epochs' streams.
const FLIP_STREAM: u64 = u64::MAX - 2;

/// Whether `sample` is flipped: a coin from its own stream (`random`), or a coin per (seed,
/// index) flipped over at every odd epoch (`alternating`; epochs count from 1).
fn flipped(mode: FlipMode, sample: Sample, rng: &mut Rng) -> bool {
    match mode {
        FlipMode::Random => rng.uniform() < 0.5,
        FlipMode::Alternating => {
            let first = Rng::keyed(sample.seed, FLIP_STREAM, sample.index).uniform() < 0.5;
            first ^ (sample.epoch.saturating_sub(1) % 2 == 1)
        }
    }
}

/// Maps a coordinate of the padded image back to the source, or None for zero padding.
/// Reflect padding mirrors without repeating the edge, as `torch.nn.functional.pad(mode="reflect")`.
fn source_index(i: usize, pad: usize, n: usize, mode: PadMode) -> Option<usize> {
    let j = i as isize - pad as isize;
    let n = n as isize;
    if (0..n).contains(&j) {
        return Some(j as usize);
    }
    match mode {
        PadMode::Zero => None,
        PadMode::Reflect => {
            let r = if j < 0 { -j } else { 2 * (n - 1) - j };
            Some(r.clamp(0, n - 1) as usize)
        }
    }
}

/// The recipe's policy applied to an augmented image.
fn apply_policy(img: Vec<u8>, h: usize, w: usize, c: usize, cfg: &AugmentConfig, rng: &mut Rng) -> Vec<u8> {
    let aa = |name| policy::autoaugment_table(name).expect("a published policy");
    match cfg.policy {
        AugPolicy::None => img,
        AugPolicy::AutoaugmentImagenet => policy::autoaugment(aa("imagenet"), img, h, w, c, cfg.fill, rng),
        AugPolicy::AutoaugmentCifar10 => policy::autoaugment(aa("cifar10"), img, h, w, c, cfg.fill, rng),
        AugPolicy::AutoaugmentSvhn => policy::autoaugment(aa("svhn"), img, h, w, c, cfg.fill, rng),
        AugPolicy::Randaugment => policy::randaugment(img, h, w, c, cfg, rng),
        AugPolicy::ColorJitter => policy::color_jitter(img, h, w, c, cfg.color_jitter, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u64, epoch: u64, index: u64) -> Sample {
        Sample { seed, epoch, index }
    }

    fn cfg(pad: usize, pad_mode: PadMode, hflip: bool) -> AugmentConfig {
        AugmentConfig {
            pad,
            pad_mode,
            hflip,
            policy: AugPolicy::None,
            ..AugmentConfig::default()
        }
    }

    #[test]
    fn no_augmentation_is_identity() {
        let src: Vec<u8> = (0..12).collect();
        let out = apply(
            View::new(&src, 2, 2, 3),
            2,
            2,
            &cfg(0, PadMode::Zero, false),
            key(0, 0, 0),
            &mut Rng::keyed(0, 0, 0),
        );
        assert_eq!(out, src);
    }

    #[test]
    fn crops_are_shifted_windows_of_the_padded_image() {
        let src: Vec<u8> = (1..=9).collect(); // 3x3 gray
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let out = apply(
                View::new(&src, 3, 3, 1),
                3,
                3,
                &cfg(1, PadMode::Zero, false),
                key(0, 0, i),
                &mut Rng::keyed(0, 0, i),
            );
            seen.insert(out);
        }
        assert_eq!(seen.len(), 9, "every offset in 0..=2 x 0..=2 appears");
        assert!(seen.contains(&vec![0, 0, 0, 0, 1, 2, 0, 4, 5]));
        assert!(seen.contains(&vec![5, 6, 0, 8, 9, 0, 0, 0, 0]));
    }

    #[test]
    fn reflect_padding_mirrors_without_the_edge() {
        assert_eq!(source_index(0, 2, 4, PadMode::Reflect), Some(2));
        assert_eq!(source_index(1, 2, 4, PadMode::Reflect), Some(1));
        assert_eq!(source_index(6, 2, 4, PadMode::Reflect), Some(2));
        assert_eq!(source_index(7, 2, 4, PadMode::Reflect), Some(1));
    }

    #[test]
    fn flip_mirrors_rows_about_half_the_time() {
        let src = vec![1, 2, 3];
        let flipped = (0..1000)
            .filter(|&i| {
                apply(
                    View::new(&src, 1, 3, 1),
                    1,
                    3,
                    &cfg(0, PadMode::Zero, true),
                    key(0, 0, i),
                    &mut Rng::keyed(0, 0, i),
                ) == vec![3, 2, 1]
            })
            .count();
        assert!((450..550).contains(&flipped), "{flipped}");
    }

    #[test]
    fn alternating_flips_each_image_every_other_epoch_from_a_fair_first_coin() {
        let src = vec![1, 2, 3];
        let alternating = AugmentConfig {
            hflip_mode: FlipMode::Alternating,
            ..cfg(0, PadMode::Zero, true)
        };
        let flipped_at = |epoch: u64, i: u64| {
            let sample = key(7, epoch, i);
            apply(View::new(&src, 1, 3, 1), 1, 3, &alternating, sample, &mut sample.rng()) == vec![3, 2, 1]
        };
        let mut first = 0;
        for i in 0..1000 {
            let at: Vec<bool> = (1..=4).map(|e| flipped_at(e, i)).collect();
            // Epochs 1 and 3 alike, 2 and 4 alike, each pair the other way round.
            assert_eq!(
                (at[0], at[1], at[2], at[3]),
                (at[0], !at[0], at[0], !at[0]),
                "image {i}"
            );
            first += usize::from(at[0]);
        }
        // A fair coin: within 4.5 standard deviations of 500 heads.
        assert!((429..=571).contains(&first), "{first}");
        // The coin depends on the seed, not only on the image.
        let other: usize = (0..1000)
            .filter(|&i| {
                let sample = key(8, 1, i);
                apply(View::new(&src, 1, 3, 1), 1, 3, &alternating, sample, &mut sample.rng()) == vec![3, 2, 1]
            })
            .count();
        assert_ne!(other, first);
    }
}
