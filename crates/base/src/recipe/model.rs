//! `[model]`: the network and the article's architectural tricks (SE, downscaling activations,
//! drop path, auxiliary head, attention pooling).
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Resnet20,
    Resnet32,
    Resnet56,
    Resnet18,
    Resnet34,
    Resnet50,
    /// torchvision's `mobilenet_v3_small` (Howard et al. 2019), with its parameter names.
    MobilenetV3Small,
    /// torchvision's `mobilenet_v3_large`.
    MobilenetV3Large,
    /// timm's `efficientnet_b0` (Tan & Le 2019), with its parameter names.
    EfficientnetB0,
}

impl Arch {
    /// One of the residual networks (the ResNet-only options `resnet_d`, `blur_pool` apply).
    pub fn is_resnet(self) -> bool {
        !matches!(
            self,
            Arch::MobilenetV3Small | Arch::MobilenetV3Large | Arch::EfficientnetB0
        )
    }

    /// Stages (groups of blocks at one resolution, or timm's `blocks.i` for EfficientNet) an
    /// auxiliary classifier (`model.aux_stage`) can follow.
    pub fn stages(self) -> usize {
        match self {
            Arch::Resnet20 | Arch::Resnet32 | Arch::Resnet56 => 3,
            Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50 | Arch::MobilenetV3Small => 4,
            Arch::MobilenetV3Large => 5,
            Arch::EfficientnetB0 => 7,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    /// x * sigmoid(x), also called SiLU.
    Swish,
    Elu,
    /// x * relu6(x + 3) / 6 (Howard et al. 2019), MobileNetV3's.
    HardSwish,
    /// The architecture's own at that layer: ReLU in the ResNets, MobileNetV3's table of ReLU
    /// and hard-swish, swish in EfficientNet.
    Native,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// resnet20/32/56: CIFAR-style (3 stages, 16-32-64 channels); resnet18/34/50: torchvision's.
    pub arch: Arch,
    /// Channel width multiplier.
    pub width: f64,
    /// Squeeze-and-excitation in every residual block (ResNets), or in the blocks of the
    /// architecture's table that have it (MobileNetV3: some; EfficientNet: all).
    pub se: bool,
    /// SE reduction ratio (timm's `rd_ratio`); unset: the architecture's own (see `se_ratio()`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se_ratio: Option<f64>,
    /// SE reduced channels are rounded to a multiple of this (timm's `rd_divisor`); unset: the
    /// architecture's own (see `se_divisor()`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se_divisor: Option<usize>,
    /// Dropout before the classifier in training; unset: the architecture's own (see
    /// `dropout()`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// Batch-norm momentum (PyTorch's convention); unset: the architecture's own (see
    /// `bn_momentum()`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn_momentum: Option<f64>,
    /// Activation of the non-downscaling layers.
    pub activation: Activation,
    /// Activation of the downscaling layers: the stem and the stride-2 blocks.
    pub downscale_activation: Activation,
    /// Negative slope of `leaky_relu` wherever it is used.
    pub leaky_slope: f64,
    /// Stochastic depth: the residual branch of block i (of B) is dropped per sample with
    /// probability `drop_path_rate * i / (B - 1)`, growing linearly with depth as in timm.
    pub drop_path_rate: f64,
    /// ResNet-D (He et al. 2019, "Bag of Tricks", timm's `resnet*d`): shortcuts that downsample
    /// by 2x2 average pooling before their 1x1 convolution, and for the torchvision-style nets
    /// the deep stem (three 3x3 convolutions, 32-32-64 channels at width 1).
    pub resnet_d: bool,
    /// Anti-aliased downsampling (BlurPool, Zhang 2019; as timm's `resnetblur*`): each stride-2
    /// convolution of a block runs at stride 1 and is followed by a 3x3 binomial blur at stride
    /// 2, and the stem's max pooling likewise.
    pub blur_pool: bool,
    /// Global pooling before the classifier.
    pub pool: Pool,
    /// Stage (1-based) whose output feeds an auxiliary classifier during training; none if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_stage: Option<usize>,
    /// Initial weights: a darkmagic checkpoint or a safetensors state dict with torchvision's
    /// parameter names. The classifier is re-initialised when its shape differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// Initialise the stem's first convolution by patch whitening of the training images (the
    /// CIFAR-10 speedruns' first layer, airbench94's `init_whitening_conv`; from the first 5,000
    /// training images, fewer when they are large): its filters are the leading eigenvectors `v`
    /// of the covariance of the images' patches, scaled by
    /// `1 / sqrt(eigenvalue + 5e-4)`, each with its negative; filters beyond twice the patch
    /// size keep their random initialisation. Still trained afterwards.
    pub whiten_stem: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Global average pooling.
    Avg,
    /// Learned attention-weighted pooling (see `model::layers::AttentionPool`).
    Attention,
}

impl ModelConfig {
    /// The SE reduction ratio: `se_ratio`, else 1/16 of the block's channels in the ResNets
    /// (Hu et al.), 1/4 of the expanded channels in MobileNetV3 and 1/4 of the block's input
    /// channels in EfficientNet.
    pub fn se_ratio(&self) -> f64 {
        let native = if self.arch.is_resnet() { 1.0 / 16.0 } else { 0.25 };
        self.se_ratio.unwrap_or(native)
    }

    /// The SE rounding divisor: `se_divisor`, else 8, or 1 (plain rounding) in EfficientNet.
    pub fn se_divisor(&self) -> usize {
        let native = if self.arch == Arch::EfficientnetB0 { 1 } else { 8 };
        self.se_divisor.unwrap_or(native)
    }

    /// The classifier's dropout: `dropout`, else none in the ResNets and 0.2 in MobileNetV3
    /// (torchvision's) and EfficientNet-B0 (the paper's, timm's training recipe).
    pub fn dropout(&self) -> f64 {
        let native = if self.arch.is_resnet() { 0.0 } else { 0.2 };
        self.dropout.unwrap_or(native)
    }

    /// The batch-norm momentum: `bn_momentum`, else torchvision's 0.01 in MobileNetV3 (its
    /// running statistics then trail the weights for hundreds of steps: short runs evaluate
    /// better at 0.1) and PyTorch's default 0.1 elsewhere.
    pub fn bn_momentum(&self) -> f64 {
        let native = match self.arch {
            Arch::MobilenetV3Small | Arch::MobilenetV3Large => 0.01,
            _ => 0.1,
        };
        self.bn_momentum.unwrap_or(native)
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::Resnet20,
            width: 1.0,
            se: true,
            se_ratio: None,
            se_divisor: None,
            dropout: None,
            bn_momentum: None,
            activation: Activation::Native,
            downscale_activation: Activation::LeakyRelu,
            leaky_slope: 0.01,
            drop_path_rate: 0.0,
            resnet_d: false,
            blur_pool: false,
            pool: Pool::Avg,
            aux_stage: None,
            init: None,
            whiten_stem: false,
        }
    }
}

impl ModelConfig {
    /// The `[model]` section's ranges and rules; every error names its key.
    pub fn validate(&self) -> Result<()> {
        let m = self;
        check("model.width", m.width, m.width > 0.0 && m.width <= 16.0, "in (0, 16]")?;
        check(
            "model.se_ratio",
            m.se_ratio(),
            m.se_ratio() > 0.0 && m.se_ratio() <= 1.0,
            "in (0, 1]",
        )?;
        if m.se_divisor() == 0 {
            return Err(Error::recipe("model.se_divisor", "must be at least 1"));
        }
        check(
            "model.bn_momentum",
            m.bn_momentum(),
            m.bn_momentum() > 0.0 && m.bn_momentum() <= 1.0,
            "in (0, 1]",
        )?;
        check(
            "model.dropout",
            m.dropout(),
            (0.0..1.0).contains(&m.dropout()),
            "in [0, 1)",
        )?;
        for (field, on) in [("model.resnet_d", m.resnet_d), ("model.blur_pool", m.blur_pool)] {
            if on && !m.arch.is_resnet() {
                return Err(Error::recipe(
                    field,
                    format!("applies to the ResNets; model.arch is {:?}", m.arch),
                ));
            }
        }
        check(
            "model.leaky_slope",
            m.leaky_slope,
            (0.0..=1.0).contains(&m.leaky_slope),
            "in [0, 1]",
        )?;
        check(
            "model.drop_path_rate",
            m.drop_path_rate,
            (0.0..1.0).contains(&m.drop_path_rate),
            "in [0, 1)",
        )?;
        let stages = m.arch.stages();
        if let Some(s) = m.aux_stage
            && !(1..stages).contains(&s)
        {
            return Err(Error::recipe(
                "model.aux_stage",
                format!("got {s}; expected a stage in 1..={} (not the last)", stages - 1),
            ));
        }
        if let Some(p) = &m.init
            && !p.is_file()
        {
            return Err(Error::recipe("model.init", format!("{} is not a file", p.display())));
        }
        Ok(())
    }
}
