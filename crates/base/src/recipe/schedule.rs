//! `[schedule]`: the learning-rate regime (warm-up, cosine power annealing, step) and the weight
//! decay schedule.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

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
    /// Linear warm-up length in epochs (fractional allowed). A warm-up as long as the run or
    /// longer (`--set train.epochs=1` with the default 1) takes every step but the fewest the
    /// regime runs in: 2 per cosine cycle, 1 otherwise.
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

impl ScheduleConfig {
    /// The `[schedule]` section's ranges and rules, given `optim.lr`, which bounds the floor of
    /// the learning rate.
    pub fn validate(&self, lr: f64) -> Result<()> {
        let s = self;
        check(
            "schedule.warmup_epochs",
            s.warmup_epochs,
            s.warmup_epochs >= 0.0 && s.warmup_epochs.is_finite(),
            "a finite number >= 0",
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
            s.lr_min >= 0.0 && s.lr_min <= lr,
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
