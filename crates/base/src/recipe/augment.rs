//! `[augment]`: crops, flips, policies (AutoAugment, RandAugment, color jitter), erasing, mixing,
//! test-time flips and the evaluation crop.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    Zero,
    Reflect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipMode {
    Random,
    Alternating,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Pixels of padding before a random crop back to the original size (0 = no crop).
    pub pad: usize,
    pub pad_mode: PadMode,
    /// Random horizontal flip with probability 0.5 (off by default: digits must not be mirrored).
    pub hflip: bool,
    /// How `hflip` draws: `random`, a fair coin per image and epoch; `alternating`, the
    /// derandomized flip of the CIFAR-10 speedruns (Jordan 2024, airbench): a fair coin per
    /// image at the first epoch, then each image flipped in every other epoch, so that over any
    /// two epochs it is seen once each way.
    pub hflip_mode: FlipMode,
    /// Mixup's Beta(alpha, alpha) parameter; 0 = no mixup.
    pub mixup_alpha: f64,
    /// CutMix's Beta(alpha, alpha) parameter; 0 = no CutMix.
    pub cutmix_alpha: f64,
    /// Probability that a batch is mixed at all.
    pub mix_prob: f64,
    /// With both mixup and CutMix on, the probability of CutMix for a mixed batch.
    pub mix_switch_prob: f64,
    /// torchvision's `RandomResizedCrop`: a random region (area fraction in `rrc_scale`, aspect
    /// ratio in `rrc_ratio`) resized back to the image size.
    pub random_resized_crop: bool,
    pub rrc_scale: [f64; 2],
    pub rrc_ratio: [f64; 2],
    /// Evaluation: the shorter side resized to `image side / eval_crop_fraction`, then the centre
    /// crop of the image's size (timm's `crop_pct`; 1 = the image as it is).
    pub eval_crop_fraction: f64,
    /// Test-time augmentation: evaluation also scores each image with its horizontal mirror,
    /// averaging the two softmax outputs; recorded beside the plain accuracy (`val_acc_tta`).
    pub tta_flip: bool,
    /// Test-time augmentation: evaluation also scores each image shifted by one pixel up-left
    /// and down-right (reflect padding), each with its mirror when `tta_flip` is on; the
    /// unshifted and the shifted scores weigh half each (airbench94's `tta_level = 2`, with
    /// softmax outputs averaged as `tta_flip` does). Recorded as the test-time-augmented accuracy.
    pub tta_translate: bool,
    /// Resampling filter of every resize (random-resized crop, evaluation, folder images), as
    /// PIL computes it; torchvision's default is bilinear.
    pub interpolation: Interpolation,
    /// Per-image policy after cropping and flipping.
    pub policy: AugPolicy,
    /// RandAugment: ops per image.
    pub randaugment_n: usize,
    /// RandAugment: magnitude bin of 31 (torchvision's default 9).
    pub randaugment_m: usize,
    /// RandAugment: std of Gaussian noise on the magnitude bin (timm's `mstd`); 0 = none.
    pub randaugment_mstd: f64,
    /// Color jitter strength s: brightness, contrast, saturation factors in [1 - s, 1 + s].
    pub color_jitter: f64,
    /// Fill of pixels geometric ops bring in: 0 as torchvision, 128 as timm.
    pub fill: u8,
    /// CutOut (DeVries & Taylor 2017): side of the square zeroed after normalisation, as a
    /// fraction of the image's shorter side (their CIFAR setting, 16 of 32 px, is 0.5); 0 = off.
    pub cutout_fraction: f64,
    /// CutOut: squares per image.
    pub cutout_count: usize,
    /// Random erasing (Zhong et al. 2020, timm's `RandomErasing`, after normalisation):
    /// probability per image; 0 = off.
    pub erase_prob: f64,
    /// Random erasing: area of the rectangles as a fraction of the image, uniform in this range.
    pub erase_area: [f64; 2],
    /// Random erasing: aspect ratio (height / width), log-uniform in this range.
    pub erase_ratio: [f64; 2],
    /// Random erasing: rectangles per image (the drawn area is split across them, as timm).
    pub erase_count: usize,
    /// Random erasing fill, as timm's modes: `const` 0 (the mean), `rand` one standard normal
    /// value per channel, `pixel` one per pixel.
    pub erase_mode: EraseMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseMode {
    Const,
    Rand,
    Pixel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugPolicy {
    None,
    /// AutoAugment's ImageNet policy (the article's recommendation).
    AutoaugmentImagenet,
    AutoaugmentCifar10,
    AutoaugmentSvhn,
    Randaugment,
    /// The article's "standard color augmentation": brightness/contrast/saturation jitter.
    ColorJitter,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            pad: 0,
            pad_mode: PadMode::Zero,
            hflip: false,
            hflip_mode: FlipMode::Random,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: 1.0,
            mix_switch_prob: 0.5,
            random_resized_crop: false,
            rrc_scale: [0.08, 1.0],
            rrc_ratio: [3.0 / 4.0, 4.0 / 3.0],
            eval_crop_fraction: 1.0,
            tta_flip: false,
            tta_translate: false,
            interpolation: Interpolation::Bilinear,
            policy: AugPolicy::AutoaugmentImagenet,
            randaugment_n: 2,
            randaugment_m: 9,
            randaugment_mstd: 0.0,
            color_jitter: 0.4,
            fill: 0,
            cutout_fraction: 0.0,
            cutout_count: 1,
            erase_prob: 0.0,
            erase_area: [0.02, 1.0 / 3.0],
            erase_ratio: [0.3, 1.0 / 0.3],
            erase_count: 1,
            erase_mode: EraseMode::Pixel,
        }
    }
}

/// Magnitude bins of RandAugment (torchvision's `num_magnitude_bins`): `augment.randaugment_m`
/// is one of them.
pub const RAND_BINS: usize = 31;

impl AugmentConfig {
    /// The `[augment]` section's ranges and rules; every error names its key.
    pub fn validate(&self) -> Result<()> {
        let a = self;
        check(
            "augment.mixup_alpha",
            a.mixup_alpha,
            a.mixup_alpha >= 0.0 && a.mixup_alpha.is_finite(),
            ">= 0",
        )?;
        check(
            "augment.cutmix_alpha",
            a.cutmix_alpha,
            a.cutmix_alpha >= 0.0 && a.cutmix_alpha.is_finite(),
            ">= 0",
        )?;
        check(
            "augment.mix_prob",
            a.mix_prob,
            (0.0..=1.0).contains(&a.mix_prob),
            "in [0, 1]",
        )?;
        check(
            "augment.mix_switch_prob",
            a.mix_switch_prob,
            (0.0..=1.0).contains(&a.mix_switch_prob),
            "in [0, 1]",
        )?;
        check_range("augment.rrc_scale", a.rrc_scale, Some(1.0))?;
        check_range("augment.rrc_ratio", a.rrc_ratio, None)?;
        check(
            "augment.erase_prob",
            a.erase_prob,
            (0.0..=1.0).contains(&a.erase_prob),
            "in [0, 1]",
        )?;
        check_range("augment.erase_area", a.erase_area, Some(1.0))?;
        check_range("augment.erase_ratio", a.erase_ratio, None)?;
        if a.erase_count == 0 {
            return Err(Error::recipe("augment.erase_count", "must be at least 1"));
        }
        if a.randaugment_m >= RAND_BINS {
            return Err(Error::recipe(
                "augment.randaugment_m",
                format!("got {}; expected a bin in 0..=30", a.randaugment_m),
            ));
        }
        check(
            "augment.randaugment_mstd",
            a.randaugment_mstd,
            a.randaugment_mstd >= 0.0,
            ">= 0",
        )?;
        check(
            "augment.cutout_fraction",
            a.cutout_fraction,
            (0.0..=1.0).contains(&a.cutout_fraction),
            "in [0, 1]",
        )?;
        check(
            "augment.color_jitter",
            a.color_jitter,
            (0.0..=1.0).contains(&a.color_jitter),
            "in [0, 1]",
        )?;
        let f = a.eval_crop_fraction;
        check("augment.eval_crop_fraction", f, f > 0.0 && f <= 1.0, "in (0, 1]")?;
        Ok(())
    }
}
