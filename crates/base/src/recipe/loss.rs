//! `[loss]`: label smoothing, binary cross-entropy, the auxiliary loss and distillation.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

impl LossConfig {
    /// The `[loss]` section's ranges and rules; every error names its key.
    pub fn validate(&self) -> Result<()> {
        check("loss.aux_weight", self.aux_weight, self.aux_weight >= 0.0, ">= 0")?;
        let l = self;
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
        let ls = self.label_smoothing;
        check("loss.label_smoothing", ls, (0.0..1.0).contains(&ls), "in [0, 1)")?;
        Ok(())
    }
}
