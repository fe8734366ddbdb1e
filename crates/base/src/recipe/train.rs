//! `[train]`: epochs, batches, device, precision, EMA, clipping, accumulation.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    Auto,
    Cpu,
    Cuda,
}

/// Where training batches are built (`train.loader`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loader {
    /// `device` when training on CUDA and every augmentation of the recipe runs there, else `host`.
    Auto,
    /// Per image on the CPU threads, a batch ahead on a prefetch thread, then copied over.
    Host,
    /// The training split copied to the device once; batches gathered, augmented and normalised
    /// there by tensor ops, from the same random draws as the host's (the same batches).
    Device,
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
    /// Where the training batches are built.
    pub loader: Loader,
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
            loader: Loader::Auto,
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

impl TrainConfig {
    /// The `[train]` section: counts first, since the schedule's rules depend on `train.epochs`.
    pub fn validate(&self) -> Result<()> {
        let t = self;
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
}
