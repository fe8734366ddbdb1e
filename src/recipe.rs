//! The Recipe: every knob of a training run and its default, in one typed TOML document.
//!
//! Defaults are the article's baseline (TRICKS.md section 1): SGD with Nesterov momentum, cycles of
//! cosine power annealing with decaying amplitude and a linear warm-up, weight decay 5e-5 with 1-D
//! parameters excluded, label smoothing 0.1, AutoAugment's ImageNet policy, squeeze-and-excitation
//! on, LeakyReLU in the downscaling layers. The full field reference is `docs/recipe.md`.
//!
//! A recipe is read from TOML, then `--set key.path=value` overrides are applied, then it is
//! deserialized strictly (unknown keys are errors) and validated; every error names the key.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// Seeds model initialisation, the validation split, data order and augmentation draws.
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub optim: OptimConfig,
    pub schedule: ScheduleConfig,
    pub loss: LossConfig,
    pub augment: AugmentConfig,
    pub train: TrainConfig,
    /// What `darkmagic checklist` varies around this recipe; ignored by `darkmagic train`.
    pub checklist: ChecklistConfig,
    /// An external training script run instead of darkmagic's trainer (see `external`); the
    /// darkmagic sections then serve only `train.epochs`, `seed` and `data.path`, which the
    /// command's placeholders name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalConfig>,
}

/// An external trainer: its command line, the baseline's arguments, and where its metric is.
///
/// Placeholders in `command`, `args` and `env` values: `{run_dir}` (the trial's run directory,
/// also the command's working directory), `{seed}`, `{epochs}` (`train.epochs`), `{data}`
/// (`data.path`) and `{threads}` (`train.threads`). The command runs in the run directory;
/// relative paths in `command` (those with a `/`) and `{data}` are taken from where darkmagic
/// runs, as darkmagic's own `data.path` is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalConfig {
    /// The program and its fixed arguments, e.g. `["/usr/bin/python3", "/src/train.py", "{data}"]`.
    pub command: Vec<String>,
    /// The baseline's flags: `"--lr" = 0.1` gives `--lr 0.1`, `true` a bare flag, `false`
    /// leaves it out, an array several values. Checklist variants change these.
    #[serde(default)]
    pub args: toml::Table,
    /// Environment variables of the trainer (`PYTHONUNBUFFERED=1` and, from `train.threads`,
    /// `OMP_NUM_THREADS` are set unless given here).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    pub metric: MetricSource,
    /// Seconds after which a trial is killed and recorded as failed; 0 = no limit.
    #[serde(default)]
    pub timeout: f64,
}

/// Where an external trainer's metric is read once it exits. Exactly one of `csv`, `json` and
/// `regex`; the value is multiplied by `scale`, and higher must be better (a loss: `scale = -1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSource {
    /// A CSV file with a header row (path relative to the run dir, placeholders allowed): the
    /// column `key` of the last row, or of the best with `row = "best"`. Every row becomes an
    /// epoch of the per-epoch curves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// A JSON file (relative to the run dir): the number at the dotted `key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// The column (`csv`) or dotted key (`json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A regular expression over the trainer's output (stdout and stderr, line by line): its
    /// first capture group in the last line that matches, e.g. `"top-1 ([0-9.]+)"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default)]
    pub row: MetricRow,
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

/// Which row of a metric CSV counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricRow {
    #[default]
    Last,
    Best,
}

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
            image_size: None,
            decode: Decode::AtLoad,
            mean: None,
            std: None,
        }
    }
}

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
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimName {
    /// SGD with momentum (`nesterov` selects PyTorch's Nesterov form); coupled L2 weight decay.
    Sgd,
    /// Adam with coupled L2 weight decay, as `torch.optim.Adam`.
    Adam,
    /// Adam with decoupled weight decay, as `torch.optim.AdamW`.
    Adamw,
    /// Lion (Chen et al. 2023, timm's `Lion`): the sign of `beta1 * m + (1 - beta1) * g` as the
    /// step, `m` averaged with `beta2` (the paper's 0.99), decoupled weight decay; it wants a
    /// learning rate 3-10x below AdamW's.
    Lion,
    /// RMSprop in TensorFlow's form (timm's `RMSpropTF`, as EfficientNet and MobileNetV3 were
    /// trained): square average started at 1 and decayed by `alpha`, `eps` inside the square
    /// root, the learning rate inside the momentum buffer; coupled L2 weight decay.
    RmspropTf,
    /// LAMB (You et al. 2020, timm's `Lamb`): the bias-corrected Adam direction plus coupled
    /// weight decay, scaled per parameter by `||w|| / ||update||` where weight decay applies.
    /// timm's Lamb also divides the gradients by `max(1, global norm)`: here
    /// `train.clip_grad = 1.0` does that (within its 1e-6).
    Lamb,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub name: OptimName,
    /// Peak learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Exclude 1-D parameters (biases, norm scales) from weight decay, as timm does.
    pub exclude_1d: bool,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `rmsprop_tf`: decay of the squared-gradient average (timm's `alpha`).
    pub alpha: f64,
    /// Layer-wise learning-rate decay (timm's `--layer-decay`, from BEiT): the learning rate of
    /// layer group i of n (stem 0, each residual block, head n - 1) is scaled by
    /// `layer_decay^(n - 1 - i)`; 1 = off.
    pub layer_decay: f64,
    /// `linear`: the peak LR is `lr * batch_size / 256` (Goyal et al. 2017's linear scaling rule).
    pub lr_scaling: LrScaling,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScaling {
    None,
    Linear,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            name: OptimName::Sgd,
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-5,
            exclude_1d: true,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            alpha: 0.9,
            layer_decay: 1.0,
            lr_scaling: LrScaling::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    Constant,
    /// Gamma decay: every `step_epochs` epochs, or at `milestones`.
    Step,
    /// One cycle of plain cosine annealing (P = 1).
    Cosine,
    /// `cycles` cycles of cosine power annealing with exponent `power`.
    CosinePower,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub regime: Regime,
    /// Linear warm-up length in epochs (fractional allowed).
    pub warmup_epochs: f64,
    /// Learning rate at step 0 of the warm-up.
    pub warmup_lr_init: f64,
    /// Learning rate at the end of each annealing cycle.
    pub lr_min: f64,
    /// Exponent P of cosine power annealing (P = 1 is plain cosine).
    pub power: f64,
    pub cycles: usize,
    /// Cycle i peaks at `lr * cycle_decay^i`.
    pub cycle_decay: f64,
    /// Each cycle is `cycle_mul` times as long as the previous one.
    pub cycle_mul: f64,
    /// Step regime: multiply the LR by this at each decay.
    pub gamma: f64,
    /// Step regime: decay every this many epochs; if unset, decay at `milestones`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_epochs: Option<f64>,
    /// Step regime: decay points as fractions of the whole training, ascending in (0, 1).
    pub milestones: Vec<f64>,
    /// Scheduled regularization: how weight decay changes over training.
    pub wd_policy: WdPolicy,
    /// Weight decay factor (times `optim.weight_decay`) where a schedule starts (or its minimum).
    pub wd_start: f64,
    /// Weight decay factor where a schedule ends (or its maximum).
    pub wd_end: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WdPolicy {
    /// `optim.weight_decay` throughout.
    Fixed,
    /// Linear ramp from `wd_start` to `wd_end` times the weight decay over training.
    Linear,
    /// Steps up from `wd_start` to `wd_end` at each LR cycle end.
    Cycles,
    /// Rises as the LR falls within each cycle.
    Lr,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            regime: Regime::CosinePower,
            warmup_epochs: 1.0,
            warmup_lr_init: 1e-4,
            lr_min: 0.0,
            power: 2.0,
            cycles: 2,
            cycle_decay: 0.5,
            cycle_mul: 1.0,
            gamma: 0.1,
            step_epochs: None,
            milestones: vec![0.5, 0.75],
            wd_policy: WdPolicy::Fixed,
            wd_start: 0.0,
            wd_end: 2.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// PyTorch's convention: eps/C to every class, 1 - eps + eps/C to the true one.
    pub label_smoothing: f64,
    /// Weight of the auxiliary classifier's loss (with `model.aux_stage`), as in DARTS.
    pub aux_weight: f64,
    /// Knowledge distillation (Hinton et al. 2015) from this teacher: a finished run dir of any
    /// darkmagic architecture, on the same classes and image shape; its outputs are computed on
    /// each (augmented, mixed) training batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distill_teacher: Option<PathBuf>,
    /// Softmax temperature T of distillation.
    pub distill_temperature: f64,
    /// Weight a of distillation: `(1 - a) * task loss + a * T^2 * KL(teacher_T || student_T)`.
    pub distill_weight: f64,
    /// Binary cross-entropy per class instead of softmax cross-entropy (timm's `--bce-loss`):
    /// the same smoothed (or mixed) targets, each class a sigmoid, averaged over classes and batch.
    pub bce: bool,
    /// With `bce`: targets above this become 1, the rest 0 (timm's `--bce-target-thresh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bce_target_thresh: Option<f64>,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            label_smoothing: 0.1,
            aux_weight: 0.4,
            distill_teacher: None,
            distill_temperature: 4.0,
            distill_weight: 0.5,
            bce: false,
            bce_target_thresh: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    Zero,
    Reflect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Pixels of padding before a random crop back to the original size (0 = no crop).
    pub pad: usize,
    pub pad_mode: PadMode,
    /// Random horizontal flip with probability 0.5 (off by default: digits must not be mirrored).
    pub hflip: bool,
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
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: 1.0,
            mix_switch_prob: 0.5,
            random_resized_crop: false,
            rrc_scale: [0.08, 1.0],
            rrc_ratio: [3.0 / 4.0, 4.0 / 3.0],
            eval_crop_fraction: 1.0,
            tta_flip: false,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    Auto,
    Cpu,
    Cuda,
}

/// Mixed precision of the forward pass, as PyTorch's autocast (`torch.autocast`; timm's
/// `--amp --amp-dtype`): matrix products and convolutions in the low-precision type, reductions
/// and the loss in float32, weights and optimizer state in float32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amp {
    /// bfloat16 on CUDA, off on the CPU (where bfloat16 matrix products are slower than float32
    /// without AMX).
    Auto,
    Off,
    Bf16,
    /// float16 with dynamic loss scaling (`torch.amp.GradScaler`'s defaults).
    Fp16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    /// CPU threads for libtorch and the data pipeline; 0 = all cores.
    pub threads: usize,
    pub device: DeviceChoice,
    /// Keep 4-D weights and activations in NHWC memory order (PyTorch's `channels_last`, timm's
    /// `--channels-last`): same numbers up to float rounding, faster convolutions on CPU (oneDNN)
    /// and on tensor-core GPUs.
    pub channels_last: bool,
    pub amp: Amp,
    /// Gradient accumulation: each optimizer step sums this many micro-batches of
    /// `batch_size / accumulate` images, so `batch_size` is the effective batch.
    pub accumulate: usize,
    /// Exponential moving average of the weights, evaluated beside them; 0 = off.
    pub ema_decay: f64,
    /// EMA warm-up as timm: the decay used at update n is `min(ema_decay, (1 + n) / (10 + n))`.
    pub ema_warmup: bool,
    /// Train only the classifier for this many first epochs (fine-tuning from `model.init`).
    pub freeze_epochs: usize,
    /// A finished run dir to compare with epoch by epoch (the checklist's early stop sets it to
    /// the paired baseline trial): from half the epochs on, this run stops with status
    /// `stopped` once its validation accuracy is more than `stop_margin` below the reference's
    /// at the same epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reference: Option<PathBuf>,
    /// Percentage points below the reference that stop the run.
    pub stop_margin: f64,
    /// Gradient clipping before each step, as timm's `--clip-grad`: the threshold (0 = off).
    pub clip_grad: f64,
    /// What `clip_grad` bounds (timm's `--clip-mode`).
    pub clip_mode: ClipMode,
}

/// Gradient clipping modes, as timm's `dispatch_clip_grad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipMode {
    /// `torch.nn.utils.clip_grad_norm_`: every gradient scaled by
    /// `min(1, clip_grad / (total L2 norm + 1e-6))`.
    Norm,
    /// `torch.nn.utils.clip_grad_value_`: each element clamped to `[-clip_grad, clip_grad]`.
    Value,
    /// Adaptive gradient clipping (Brock et al. 2021, timm's `adaptive_clip_grad`): per output
    /// unit, a gradient whose norm exceeds `clip_grad * max(norm of the weights, 1e-3)` is scaled
    /// down to it.
    Agc,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 64,
            eval_batch_size: 512,
            threads: 0,
            device: DeviceChoice::Auto,
            channels_last: true,
            amp: Amp::Auto,
            accumulate: 1,
            ema_decay: 0.0,
            ema_warmup: true,
            freeze_epochs: 0,
            stop_reference: None,
            stop_margin: 10.0,
            clip_grad: 0.0,
            clip_mode: ClipMode::Norm,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// The article's one-factor variants (TRICKS.md section 1) that this build supports.
    Default,
    /// `default` plus the "future posts" tricks and their usual companions.
    Extended,
    /// Only the factors listed in `checklist.factors`.
    None,
    /// The article's checklist as flags of timm's `train.py`, for an `[external]` trainer.
    Timm,
}

/// The checklist around this recipe: the baseline is the recipe itself, each variant changes one
/// factor. A factor maps variant names to the fields they override, e.g.
/// `[checklist.factors.weight_decay]` with `"10x" = { "optim.weight_decay" = 5e-4 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecklistConfig {
    pub plan: PlanKind,
    /// Seeds of the first round: `seed`, `seed + 1`, ...; the same for every arm so comparisons
    /// pair up.
    pub seeds: usize,
    /// The most seeds an arm gets: undecided variants get more rounds up to this (sequential
    /// seeds); at or below `seeds`, every arm runs `seeds` seeds (a fixed design).
    pub max_seeds: usize,
    /// Seeds each later round adds.
    pub round_seeds: usize,
    /// Family-wise error of the helps/hurts verdicts over all variants and rounds, and the
    /// level of each equivalence test.
    pub alpha: f64,
    /// Equivalence margin in percentage points; unset: 0.5 pp or two validation images,
    /// whichever is larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// Built-in factors to leave out.
    pub skip: Vec<String>,
    /// Factors added to (or replacing) the built-in plan: factor -> variant -> overrides.
    pub factors: std::collections::BTreeMap<String, std::collections::BTreeMap<String, toml::Table>>,
    /// Build the combined recipe (every variant that helps, one per factor) and confirm it.
    pub combine: bool,
    /// Stop a variant's trial early (status `stopped`) when, from half its epochs on, its
    /// validation accuracy falls more than `early_stop_margin` pp below its paired baseline
    /// trial's at the same epoch. Each round then runs the baseline's trials first.
    pub early_stop: bool,
    /// Percentage points below the baseline that stop a variant's trial.
    pub early_stop_margin: f64,
    /// Pretrained weights (darkmagic checkpoint or torchvision safetensors): adds the article's
    /// "pretraining on" variant, which sets `model.init` to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PathBuf>,
    /// A trained run dir: adds the variant "distillation on", which sets `loss.distill_teacher`
    /// to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher: Option<PathBuf>,
    /// Nuisance hyperparameters tuned for each arm before its seeds run.
    pub tune: TuneConfig,
}

/// Nuisance hyperparameters tuned per arm (the Deep Learning Tuning Playbook): each arm
/// (baseline, variant, combined recipe) first trains once per candidate on its own tuning seeds,
/// and the candidate with the best mean validation metric is fixed for all its paired seeds, so
/// that `optimizer=adam` is compared at Adam's best learning rate, not at SGD's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuneConfig {
    /// Field -> candidates, e.g. `"optim.lr" = [0.3, 1.0, 3.0]`: multipliers of the arm's own
    /// value (or values, with `absolute`). Several fields: every combination.
    pub fields: std::collections::BTreeMap<String, Vec<f64>>,
    /// The candidates are values, not multipliers of the arm's value.
    pub absolute: bool,
    /// Candidates for one variant (by label, e.g. `"optimizer=adam"`), replacing `fields` there.
    pub variants: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<f64>>>,
    /// Tuning runs per candidate. They use seeds of their own (`seed + 1000`, `seed + 1001`,
    /// ...): choosing on the comparison seeds would favour the chosen candidate on them.
    pub seeds: usize,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            fields: Default::default(),
            absolute: false,
            variants: Default::default(),
            seeds: 1,
        }
    }
}

/// The first seed of the tuning runs is the recipe's seed plus this.
pub const TUNE_SEED_OFFSET: u64 = 1000;

/// Magnitude bins of RandAugment (torchvision's `num_magnitude_bins`): `augment.randaugment_m`
/// is one of them.
pub const RAND_BINS: usize = 31;

/// The compiled `external.metric.regex`, with a size limit on the compiled program: matching
/// time grows with it, and `(?:a{0,100}){100}` took minutes on one line.
pub fn metric_regex(pattern: &str) -> std::result::Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::RegexBuilder::new(pattern).size_limit(1 << 16).build()
}

impl Default for ChecklistConfig {
    fn default() -> Self {
        ChecklistConfig {
            plan: PlanKind::Default,
            seeds: 3,
            max_seeds: 4,
            round_seeds: 3,
            alpha: 0.05,
            margin: None,
            skip: Vec::new(),
            factors: Default::default(),
            combine: true,
            early_stop: false,
            early_stop_margin: 10.0,
            pretrained: None,
            teacher: None,
            tune: TuneConfig::default(),
        }
    }
}

/// Largest `data.image_size`: 4096 pixels a side (one RGB image is then 48 MiB of floats).
pub const MAX_IMAGE_SIZE: usize = 4096;
/// Largest `train.epochs`.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest `train.batch_size` and `train.eval_batch_size`.
pub const MAX_BATCH: usize = 1 << 20;
/// Largest `train.threads`.
pub const MAX_THREADS: usize = 1024;
/// Largest `checklist.seeds`.
pub const MAX_SEEDS: usize = 1000;
/// Largest recipe file: 1 MiB of TOML.
pub const MAX_RECIPE_BYTES: u64 = 1 << 20;
/// Largest number of tuning candidates of one arm (the product of its fields' list lengths).
pub const MAX_TUNE_CANDIDATES: usize = 1000;

impl Recipe {
    /// Reads a recipe file (or the defaults when `path` is None), applies `key.path=value`
    /// overrides, and validates the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Recipe> {
        let mut table = match path {
            Some(p) => read_table(p)?,
            None => toml::Table::new(),
        };
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        Recipe::from_table(table)
    }

    /// Deserializes strictly and validates; errors carry the key path.
    pub fn from_table(table: toml::Table) -> Result<Recipe> {
        let recipe: Recipe = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            // toml appends "\nin `section`", which the path already says.
            let inner = e.inner().to_string();
            let message = inner.lines().next().unwrap_or_default().to_string();
            Error::recipe(e.path().to_string(), message)
        })?;
        recipe.validate()?;
        Ok(recipe)
    }

    /// The peak learning rate: `optim.lr`, times `batch_size / 256` under the linear scaling rule.
    pub fn peak_lr(&self) -> f64 {
        match self.optim.lr_scaling {
            LrScaling::None => self.optim.lr,
            LrScaling::Linear => self.optim.lr * self.train.batch_size as f64 / 256.0,
        }
    }

    /// This recipe with dotted-key overrides applied (`{"optim.lr" = 0.01}`), validated.
    pub fn with_overrides(&self, overrides: &toml::Table) -> Result<Recipe> {
        let mut table = toml::Table::try_from(self).expect("a Recipe always converts to a table");
        for (key, value) in overrides {
            set_path(&mut table, key, value.clone())?;
        }
        Recipe::from_table(table)
    }

    /// The value at a dotted key, as TOML (None if the recipe has no such field set).
    pub fn get(&self, key: &str) -> Option<toml::Value> {
        let table = toml::Table::try_from(self).expect("a Recipe always converts to a table");
        let mut node = toml::Value::Table(table);
        for part in key.split('.') {
            node = node.as_table()?.get(part)?.clone();
        }
        Some(node)
    }

    /// Whether `other` trains the same run: it may differ only in where and how fast it runs
    /// (`train.threads`, `train.device`) and in the `[checklist]` section, which training
    /// ignores.
    pub fn same_training(&self, other: &Recipe) -> bool {
        let mut a = self.clone();
        a.train.threads = other.train.threads;
        a.train.device = other.train.device;
        a.checklist = other.checklist.clone();
        a == *other
    }

    /// The resolved recipe as TOML, as written to `recipe.toml` in a run dir.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Recipe always serializes to TOML")
    }

    /// Checks every numeric range and cross-field rule.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
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
        if let Some(s) = d.image_size
            && !(1..=MAX_IMAGE_SIZE).contains(&s)
        {
            return Err(Error::recipe(
                "data.image_size",
                format!("got {s}; expected 1 to {MAX_IMAGE_SIZE} pixels"),
            ));
        }
        if d.decode == Decode::PerBatch && (d.dataset != DatasetKind::Folder || d.image_size.is_none()) {
            return Err(Error::recipe(
                "data.decode",
                "\"per_batch\" is for `folder` datasets and needs data.image_size",
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
        let m = &self.model;
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
        check(
            "loss.aux_weight",
            self.loss.aux_weight,
            self.loss.aux_weight >= 0.0,
            ">= 0",
        )?;
        let l = &self.loss;
        check(
            "loss.distill_temperature",
            l.distill_temperature,
            l.distill_temperature > 0.0,
            "> 0",
        )?;
        check(
            "loss.distill_weight",
            l.distill_weight,
            (0.0..=1.0).contains(&l.distill_weight),
            "in [0, 1]",
        )?;
        if let Some(t) = l.bce_target_thresh {
            check("loss.bce_target_thresh", t, (0.0..1.0).contains(&t), "in [0, 1)")?;
            if !l.bce {
                return Err(Error::recipe("loss.bce_target_thresh", "needs loss.bce = true"));
            }
        }
        if let Some(t) = &l.distill_teacher
            && !t.is_dir()
        {
            return Err(Error::recipe(
                "loss.distill_teacher",
                format!("{} is not a folder (expected a run dir)", t.display()),
            ));
        }
        let o = &self.optim;
        check("optim.lr", o.lr, o.lr > 0.0 && o.lr.is_finite(), "a finite number > 0")?;
        check(
            "optim.momentum",
            o.momentum,
            (0.0..1.0).contains(&o.momentum),
            "in [0, 1)",
        )?;
        if o.name == OptimName::Sgd && o.nesterov && o.momentum == 0.0 {
            return Err(Error::recipe(
                "optim.nesterov",
                "Nesterov momentum requires optim.momentum > 0",
            ));
        }
        check("optim.weight_decay", o.weight_decay, o.weight_decay >= 0.0, ">= 0")?;
        check("optim.beta1", o.beta1, (0.0..1.0).contains(&o.beta1), "in [0, 1)")?;
        check("optim.beta2", o.beta2, (0.0..1.0).contains(&o.beta2), "in [0, 1)")?;
        check("optim.eps", o.eps, o.eps > 0.0, "> 0")?;
        check("optim.alpha", o.alpha, (0.0..1.0).contains(&o.alpha), "in [0, 1)")?;
        check(
            "optim.layer_decay",
            o.layer_decay,
            o.layer_decay > 0.0 && o.layer_decay <= 1.0,
            "in (0, 1] (1 = off)",
        )?;
        self.validate_train()?;
        self.validate_checklist()?;
        match &self.external {
            Some(e) => validate_external(e)?,
            // An external trainer has its own schedule; darkmagic's is not used.
            None => self.validate_schedule()?,
        }
        if self.external.is_some() && self.checklist.early_stop {
            // Early stop compares darkmagic's own per-epoch validation accuracies.
            return Err(Error::recipe(
                "checklist.early_stop",
                "needs darkmagic's trainer: an external trainer's epochs are not compared; remove it or [external]",
            ));
        }
        let a = &self.augment;
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
        let ls = self.loss.label_smoothing;
        check("loss.label_smoothing", ls, (0.0..1.0).contains(&ls), "in [0, 1)")?;
        Ok(())
    }

    /// The `[train]` section: counts first, since the schedule's rules depend on `train.epochs`.
    fn validate_train(&self) -> Result<()> {
        let t = &self.train;
        check("train.clip_grad", t.clip_grad, t.clip_grad >= 0.0, ">= 0 (0 = off)")?;
        check(
            "train.ema_decay",
            t.ema_decay,
            (0.0..1.0).contains(&t.ema_decay),
            "in [0, 1)",
        )?;
        if t.accumulate == 0 || !t.batch_size.is_multiple_of(t.accumulate) {
            return Err(Error::recipe(
                "train.accumulate",
                format!(
                    "got {}; expected at least 1 and a divisor of train.batch_size ({})",
                    t.accumulate, t.batch_size
                ),
            ));
        }
        if let Some(r) = &t.stop_reference
            && !r.is_dir()
        {
            return Err(Error::recipe(
                "train.stop_reference",
                format!("{} is not a folder (expected a run dir)", r.display()),
            ));
        }
        let m = t.stop_margin;
        check(
            "train.stop_margin",
            m,
            m > 0.0 && m <= 100.0,
            "in (0, 100] percentage points",
        )?;
        if t.threads > MAX_THREADS {
            return Err(Error::recipe(
                "train.threads",
                format!("got {}; expected 0 (all cores) to {MAX_THREADS}", t.threads),
            ));
        }
        check_count("train.epochs", t.epochs, MAX_EPOCHS)?;
        check_count("train.batch_size", t.batch_size, MAX_BATCH)?;
        check_count("train.eval_batch_size", t.eval_batch_size, MAX_BATCH)
    }

    fn validate_checklist(&self) -> Result<()> {
        let c = &self.checklist;
        check_count("checklist.seeds", c.seeds, MAX_SEEDS)?;
        check_count("checklist.max_seeds", c.max_seeds, MAX_SEEDS)?;
        if c.round_seeds == 0 {
            return Err(Error::recipe("checklist.round_seeds", "must be at least 1"));
        }
        check(
            "checklist.alpha",
            c.alpha,
            c.alpha > 0.0 && c.alpha < 0.5,
            "in (0, 0.5)",
        )?;
        let m = c.early_stop_margin;
        check(
            "checklist.early_stop_margin",
            m,
            m > 0.0 && m <= 100.0,
            "in (0, 100] percentage points",
        )?;
        if let Some(m) = c.margin {
            check(
                "checklist.margin",
                m,
                m > 0.0 && m < 100.0,
                "in (0, 100) percentage points",
            )?;
        }
        let t = &c.tune;
        check_count("checklist.tune.seeds", t.seeds, MAX_SEEDS)?;
        let grids = std::iter::once(("checklist.tune.fields".to_string(), &t.fields)).chain(
            t.variants
                .iter()
                .map(|(v, g)| (format!("checklist.tune.variants.{v}"), g)),
        );
        for (key, grid) in grids {
            for (field, candidates) in grid {
                let key = format!("{key}.{field}");
                if candidates.is_empty() || candidates.iter().any(|x| !x.is_finite()) {
                    return Err(Error::recipe(key, "expected a non-empty list of finite numbers"));
                }
                // Fields a trial's training does not take from its candidate: the trial's own
                // seed, where and how fast it runs, and the checklist's settings.
                let ignored = ["seed", "train.threads", "train.device", "train.stop_margin"];
                if ignored.contains(&field.as_str()) || field.starts_with("checklist.") {
                    return Err(Error::recipe(
                        key,
                        format!(
                            "a trial does not train differently with `{field}`: every candidate would run the same"
                        ),
                    ));
                }
                if self
                    .get(field)
                    .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                    .is_none()
                {
                    return Err(Error::recipe(
                        key,
                        format!("`{field}` is not a numeric field of the recipe"),
                    ));
                }
            }
            let combinations = grid.values().fold(1usize, |n, c| n.saturating_mul(c.len()));
            if combinations.saturating_mul(t.seeds) > MAX_TUNE_CANDIDATES {
                return Err(Error::recipe(
                    key,
                    format!(
                        "{combinations} combinations x {} tuning seeds; expected at most {MAX_TUNE_CANDIDATES} tuning runs per arm",
                        t.seeds
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_schedule(&self) -> Result<()> {
        let s = &self.schedule;
        let epochs = self.train.epochs as f64;
        check(
            "schedule.warmup_epochs",
            s.warmup_epochs,
            s.warmup_epochs >= 0.0 && s.warmup_epochs < epochs,
            "in [0, train.epochs)",
        )?;
        check(
            "schedule.warmup_lr_init",
            s.warmup_lr_init,
            s.warmup_lr_init >= 0.0,
            ">= 0",
        )?;
        check(
            "schedule.lr_min",
            s.lr_min,
            s.lr_min >= 0.0 && s.lr_min <= self.optim.lr,
            "in [0, optim.lr]",
        )?;
        check(
            "schedule.power",
            s.power,
            s.power >= 1.0 && s.power.is_finite(),
            ">= 1 (P < 1 is undefined)",
        )?;
        if s.cycles == 0 {
            return Err(Error::recipe("schedule.cycles", "must be at least 1"));
        }
        check(
            "schedule.cycle_decay",
            s.cycle_decay,
            s.cycle_decay > 0.0 && s.cycle_decay <= 1.0,
            "in (0, 1]",
        )?;
        check(
            "schedule.cycle_mul",
            s.cycle_mul,
            s.cycle_mul >= 1.0 && s.cycle_mul <= 10.0,
            "in [1, 10]",
        )?;
        check("schedule.gamma", s.gamma, s.gamma > 0.0 && s.gamma <= 1.0, "in (0, 1]")?;
        if let Some(se) = s.step_epochs {
            check("schedule.step_epochs", se, se > 0.0, "> 0")?;
        }
        check(
            "schedule.wd_start",
            s.wd_start,
            s.wd_start >= 0.0 && s.wd_start.is_finite(),
            ">= 0",
        )?;
        check(
            "schedule.wd_end",
            s.wd_end,
            s.wd_end >= 0.0 && s.wd_end.is_finite(),
            ">= 0",
        )?;
        let ascending = s.milestones.windows(2).all(|w| w[0] < w[1]);
        let inside = s.milestones.iter().all(|&m| m > 0.0 && m < 1.0);
        if !(ascending && inside) {
            return Err(Error::recipe(
                "schedule.milestones",
                format!(
                    "got {:?}; expected ascending fractions of training in (0, 1)",
                    s.milestones
                ),
            ));
        }
        Ok(())
    }
}

/// Checks one number: it must be finite and satisfy `ok`.
fn check(key: &str, value: f64, ok: bool, expected: &str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else if value.is_finite() {
        Err(Error::recipe(key, format!("got {value}; expected {expected}")))
    } else {
        Err(Error::recipe(
            key,
            format!("got {value}; expected a finite number, {expected}"),
        ))
    }
}

/// Checks a count: 1 to `max`.
fn check_count(key: &str, v: usize, max: usize) -> Result<()> {
    if (1..=max).contains(&v) {
        Ok(())
    } else {
        Err(Error::recipe(key, format!("got {v}; expected 1 to {max}")))
    }
}

/// Checks a `[lo, hi]` range: 0 < lo <= hi, and hi <= `upper` when given (finite otherwise).
fn check_range(key: &str, v: [f64; 2], upper: Option<f64>) -> Result<()> {
    let [lo, hi] = v;
    if 0.0 < lo && lo <= hi && hi <= upper.unwrap_or(f64::MAX) {
        return Ok(());
    }
    let bound = upper.map_or(String::new(), |u| format!(" <= {u}"));
    Err(Error::recipe(
        key,
        format!("got {v:?}; expected [lo, hi] with 0 < lo <= hi{bound}"),
    ))
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let bytes = crate::files::read_regular(path, MAX_RECIPE_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| Error::RecipeFile {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    text.parse::<toml::Table>().map_err(|e| Error::RecipeFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Applies one `a.b.c=value` override. The value is read as a TOML value (`0.1`, `true`,
/// `"sgd"`, `[1, 2]`); anything that does not parse as one is taken as a bare string, so
/// `optim.name=adam` works without quotes.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<()> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| Error::recipe(spec, "an override must look like key.path=value"))?;
    set_path(table, key.trim(), parse_value(raw.trim()))
}

/// Sets the field at dotted `key` (e.g. `optim.lr`) to `value`, creating sections as needed.
/// The rules of an `[external]` section: a command, flags with scalar values, exactly one
/// metric source (with its key, or a regular expression with a capture group).
fn validate_external(e: &ExternalConfig) -> Result<()> {
    if e.command.is_empty() {
        return Err(Error::recipe(
            "external.command",
            "empty; expected the program and its arguments, e.g. [\"/usr/bin/python3\", \"/src/train.py\"]",
        ));
    }
    for (flag, value) in &e.args {
        let key = format!("external.args.{flag}");
        if !flag.starts_with('-') {
            return Err(Error::recipe(
                key,
                "not a flag; expected a name starting with `-`, e.g. \"--lr\"",
            ));
        }
        let scalar = |v: &toml::Value| !matches!(v, toml::Value::Table(_) | toml::Value::Array(_));
        let ok = match value {
            toml::Value::Array(items) => items.iter().all(scalar),
            v => scalar(v),
        };
        if !ok {
            return Err(Error::recipe(
                key,
                "expected a string, number or boolean, or an array of them",
            ));
        }
    }
    let m = &e.metric;
    let sources = [m.csv.is_some(), m.json.is_some(), m.regex.is_some()];
    if sources.iter().filter(|&&s| s).count() != 1 {
        return Err(Error::recipe(
            "external.metric",
            "expected exactly one of `csv` (a file and its column), `json` (a file and its key) or `regex` (over the output)",
        ));
    }
    for (key, file) in [("external.metric.csv", &m.csv), ("external.metric.json", &m.json)] {
        let Some(file) = file else { continue };
        let rel = file.strip_prefix("{run_dir}/").unwrap_or(file);
        let path = Path::new(rel);
        if path.is_absolute() || path.components().any(|c| c == std::path::Component::ParentDir) {
            // Each trial reads its own metric file; one elsewhere would be shared (or secret).
            return Err(Error::recipe(
                key,
                format!("`{file}` must name a file inside the run dir (relative to it, without `..`)"),
            ));
        }
    }
    if (m.csv.is_some() || m.json.is_some()) && m.key.is_none() {
        return Err(Error::recipe(
            "external.metric.key",
            "required with `csv` (the column) and `json` (the dotted key)",
        ));
    }
    if let Some(r) = &m.regex {
        let re = metric_regex(r).map_err(|e| Error::recipe("external.metric.regex", e.to_string()))?;
        if re.captures_len() < 2 {
            return Err(Error::recipe(
                "external.metric.regex",
                "has no capture group; put the number in parentheses, e.g. \"top-1 ([0-9.]+)\"",
            ));
        }
    }
    check(
        "external.metric.scale",
        m.scale,
        m.scale.is_finite() && m.scale != 0.0,
        "a finite number other than 0",
    )?;
    check(
        "external.timeout",
        e.timeout,
        e.timeout.is_finite() && e.timeout >= 0.0,
        ">= 0 seconds",
    )
}

pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::recipe(key, "empty component in key path"));
    }
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut node = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| Error::recipe(parts[..=i].join("."), "is a value, not a section"))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, overrides: &[&str]) -> Result<Recipe> {
        let mut table: toml::Table = text.parse().unwrap();
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        Recipe::from_table(table)
    }

    #[test]
    fn defaults_are_the_article_baseline() {
        let r = Recipe::default();
        r.validate().unwrap();
        assert_eq!(r.optim.name, OptimName::Sgd);
        assert!(r.optim.nesterov);
        assert_eq!(r.schedule.regime, Regime::CosinePower);
        assert_eq!(r.loss.label_smoothing, 0.1);
        assert!(r.model.se);
        assert_eq!(r.model.downscale_activation, Activation::LeakyRelu);
        assert_eq!(r.optim.weight_decay, 5e-5);
        assert_eq!(r.augment.policy, AugPolicy::AutoaugmentImagenet);
    }

    #[test]
    fn round_trips_through_toml() {
        let mut r = Recipe::default();
        r.data.mean = Some(vec![0.5]);
        r.data.std = Some(vec![0.25]);
        let back = load_str(&r.to_toml(), &[]).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn overrides_set_typed_values_and_bare_strings() {
        let r = load_str("", &["optim.name=adamw", "optim.lr=0.003", "model.se=false"]).unwrap();
        assert_eq!(r.optim.name, OptimName::Adamw);
        assert_eq!(r.optim.lr, 0.003);
        assert!(!r.model.se);
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let e = load_str("[model]\nsee = true\n", &[]).unwrap_err().to_string();
        assert!(e.contains("model"), "{e}");
        assert!(e.contains("unknown field `see`"), "{e}");
        assert!(e.contains("`se`"), "lists allowed fields: {e}");
    }

    #[test]
    fn bad_enum_value_lists_allowed_ones() {
        let e = load_str("", &["optim.name=adagrad"]).unwrap_err().to_string();
        assert!(e.contains("optim.name"), "{e}");
        assert!(
            e.contains("adagrad") && e.contains("adamw") && e.contains("lamb"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = load_str("[train]\nepochs = \"ten\"\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("recipe: `train.epochs`"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_the_key_and_range() {
        let cases = [
            ("schedule.power=0.5", "schedule.power", ">= 1"),
            ("loss.label_smoothing=1.5", "loss.label_smoothing", "[0, 1)"),
            (
                "loss.bce_target_thresh=0.2",
                "loss.bce_target_thresh",
                "needs loss.bce = true",
            ),
            ("loss.distill_weight=2", "loss.distill_weight", "[0, 1]"),
            ("loss.distill_temperature=0", "loss.distill_temperature", "> 0"),
            ("train.clip_grad=-1", "train.clip_grad", ">= 0"),
            ("augment.tta_flip=1", "augment.tta_flip", "bool"),
            (
                "checklist.tune.fields={\"optim.lr\"=[1,2,3,4,5,6,7,8,9,10,11], \"optim.momentum\"=[1,2,3,4,5,6,7,8,9,10], \"optim.weight_decay\"=[1,2,3,4,5,6,7,8,9,10]}",
                "checklist.tune.fields",
                "1100 combinations x 1 tuning seeds; expected at most 1000 tuning runs per arm",
            ),
            ("optim.lr=-1", "optim.lr", "> 0"),
            ("schedule.milestones=[0.8, 0.2]", "schedule.milestones", "ascending"),
            ("train.batch_size=0", "train.batch_size", "expected 1 to 1048576"),
            (
                "train.accumulate=3",
                "train.accumulate",
                "divisor of train.batch_size (64)",
            ),
            ("augment.rrc_scale=[0.5, 0.2]", "augment.rrc_scale", "0 < lo <= hi <= 1"),
            ("model.aux_stage=3", "model.aux_stage", "1..=2"),
            ("model.drop_path_rate=1.0", "model.drop_path_rate", "[0, 1)"),
            ("model.dropout=1.0", "model.dropout", "[0, 1)"),
            ("model.bn_momentum=0.0", "model.bn_momentum", "(0, 1]"),
            ("train.ema_decay=1.5", "train.ema_decay", "[0, 1)"),
            ("model.init=\"/no/such.safetensors\"", "model.init", "is not a file"),
            ("data.decode=\"per_batch\"", "data.decode", "needs data.image_size"),
            (
                "augment.erase_area=[0.0, 0.3]",
                "augment.erase_area",
                "0 < lo <= hi <= 1",
            ),
            ("augment.erase_ratio=[2.0, 1.0]", "augment.erase_ratio", "0 < lo <= hi"),
            ("augment.erase_count=0", "augment.erase_count", "at least 1"),
        ];
        for (o, key, expected) in cases {
            let e = load_str("", &[o]).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(expected), "{o}: {e}");
        }
    }

    #[test]
    fn mobilenet_and_efficientnet_recipes_resolve_their_own_defaults() {
        let r = load_str("[model]\narch = \"efficientnet_b0\"\n", &[]).unwrap();
        assert_eq!(r.model.arch, Arch::EfficientnetB0);
        assert_eq!(
            (r.model.se_ratio(), r.model.se_divisor(), r.model.dropout()),
            (0.25, 1, 0.2)
        );
        let r = load_str("", &["model.arch=\"mobilenet_v3_large\"", "model.se_ratio=0.5"]).unwrap();
        assert_eq!(
            (r.model.arch.stages(), r.model.se_ratio(), r.model.se_divisor()),
            (5, 0.5, 8)
        );
        assert_eq!(r.model.bn_momentum(), 0.01);
        let r = load_str("", &[]).unwrap();
        assert_eq!(
            (r.model.se_ratio(), r.model.se_divisor(), r.model.dropout()),
            (1.0 / 16.0, 8, 0.0)
        );
        assert_eq!(r.model.activation, Activation::Native);
        for (o, key) in [
            ("model.resnet_d=true", "model.resnet_d"),
            ("model.blur_pool=true", "model.blur_pool"),
        ] {
            let e = load_str("", &["model.arch=\"mobilenet_v3_small\"", o])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("applies to the ResNets"), "{e}");
        }
        let e = load_str("", &["model.arch=\"efficientnet_b0\"", "model.aux_stage=7"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1..=6"), "{e}");
        let e = load_str("", &["model.arch=\"mobilenet_v4\""]).unwrap_err().to_string();
        assert!(e.contains("mobilenet_v3_small") && e.contains("efficientnet_b0"), "{e}");
    }

    #[test]
    fn path_required_for_file_datasets() {
        let e = load_str("", &["data.dataset=idx"]).unwrap_err().to_string();
        assert!(e.contains("data.path") && e.contains("required"), "{e}");
    }

    #[test]
    fn override_into_a_value_is_an_error() {
        let e = load_str("seed = 3", &["seed.x=1"]).unwrap_err().to_string();
        assert!(e.contains("`seed`") && e.contains("not a section"), "{e}");
    }
}
