//! Learning-rate regimes, computed in closed form per optimizer step (cosine power annealing
//! after Hundt et al. 2019, sharpDARTS; the warm-up as timm's; docs/tricks.md section 2).
//!
//! Time is counted in optimizer steps. A linear warm-up from `warmup_lr_init` to the peak comes
//! first; the regime then spans the *remaining* steps (timm#1242: starting the cosine at step 0
//! instead makes the LR drop sharply right after warm-up).
use crate::recipe::{Regime, ScheduleConfig, WdPolicy};

/// Cosine power annealing (Hundt et al. 2019, sharpDARTS), the fraction of the way from `lr_min`
/// to the peak at progress `x` in [0, 1] through a cycle:
/// `c = (1 + cos(pi x)) / 2`, `q = (P^(1 + c) - P) / (P^2 - P)` for P > 1, `q = c` for P = 1.
pub fn cosine_power(x: f64, power: f64) -> f64 {
    let c = (1.0 + (std::f64::consts::PI * x).cos()) / 2.0;
    if power == 1.0 {
        c
    } else {
        (power.powf(1.0 + c) - power) / (power * power - power)
    }
}

/// A resolved schedule: the recipe's fields plus the step counts of this run.
#[derive(Clone, Debug)]
pub struct LrSchedule {
    cfg: ScheduleConfig,
    peak: f64,
    total_steps: usize,
    steps_per_epoch: usize,
    warmup_steps: usize,
    /// Start step (counted after warm-up) of each annealing cycle, plus the end as last entry.
    cycle_bounds: Vec<usize>,
}

impl LrSchedule {
    pub fn new(cfg: &ScheduleConfig, peak: f64, epochs: usize, steps_per_epoch: usize) -> Self {
        let total_steps = epochs * steps_per_epoch;
        let cycles = match cfg.regime {
            Regime::CosinePower => cfg.cycles,
            _ => 1,
        };
        // A warm-up as long as the run or longer (one epoch of a recipe that warms up for one)
        // leaves the regime the fewest steps it runs in: 2 per cosine cycle (see `check`), 1
        // otherwise.
        let requested = (cfg.warmup_epochs * steps_per_epoch as f64).round() as usize;
        let fewest = match cfg.regime {
            Regime::Cosine | Regime::CosinePower => 2 * cycles,
            _ => 1,
        };
        let warmup_steps = if requested >= total_steps {
            total_steps.saturating_sub(fewest)
        } else {
            requested
        };
        let mul = match cfg.regime {
            Regime::CosinePower => cfg.cycle_mul,
            _ => 1.0,
        };
        let cycle_bounds = cycle_bounds(total_steps - warmup_steps, cycles, mul);
        LrSchedule {
            cfg: cfg.clone(),
            peak,
            total_steps,
            steps_per_epoch,
            warmup_steps,
            cycle_bounds,
        }
    }

    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Fails when a cosine cycle is shorter than 2 steps: such a cycle never leaves `lr_min`,
    /// so the run would train at the minimum learning rate without a word.
    pub fn check(&self) -> crate::Result<()> {
        let shortest = self.cycle_bounds.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
        if shortest >= 2 || !matches!(self.cfg.regime, Regime::Cosine | Regime::CosinePower) {
            return Ok(());
        }
        let cycles = self.cycle_bounds.len() - 1;
        Err(crate::Error::recipe(
            "schedule.cycles",
            format!(
                "{cycles} annealing cycle(s) in {} steps after warm-up ({} epochs of {} steps, {} of warm-up): a cycle needs at least 2 steps; use fewer cycles or more epochs",
                self.total_steps - self.warmup_steps,
                self.total_steps / self.steps_per_epoch,
                self.steps_per_epoch,
                self.warmup_steps
            ),
        ))
    }

    /// The learning rate used by optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        let c = &self.cfg;
        if step < self.warmup_steps {
            let t = step as f64 / self.warmup_steps as f64;
            return c.warmup_lr_init + t * (self.peak - c.warmup_lr_init);
        }
        match c.regime {
            Regime::Constant => self.peak,
            Regime::Step => self.peak * c.gamma.powi(self.decays_before(step)),
            Regime::Cosine => self.annealed(step, 1.0),
            Regime::CosinePower => self.annealed(step, c.power),
        }
    }

    /// Number of gamma decays that happened before `step`.
    fn decays_before(&self, step: usize) -> i32 {
        let epoch = step as f64 / self.steps_per_epoch as f64;
        match self.cfg.step_epochs {
            Some(every) => (epoch / every).floor() as i32,
            None => {
                let progress = step as f64 / self.total_steps as f64;
                self.cfg.milestones.iter().filter(|&&m| progress >= m).count() as i32
            }
        }
    }

    /// The weight decay at `step` for the recipe's base decay `wd` (the article's
    /// scheduled regularization), between `lo = wd_start * wd` and `hi = wd_end * wd`:
    /// `linear` ramps from lo at the first step to hi at the last; `cycles` steps from lo up to hi
    /// at each LR cycle end; `lr` is `lo + (hi - lo) * (1 - lr / peak of the cycle)`, rising as the
    /// LR falls (lo during warm-up, where the LR rises).
    pub fn weight_decay(&self, step: usize, wd: f64) -> f64 {
        let c = &self.cfg;
        let (lo, hi) = (c.wd_start * wd, c.wd_end * wd);
        match c.wd_policy {
            WdPolicy::Fixed => wd,
            WdPolicy::Linear => lo + (hi - lo) * step as f64 / self.total_steps.saturating_sub(1).max(1) as f64,
            WdPolicy::Cycles => {
                let cycles = self.cycle_bounds.len() - 1;
                lo + (hi - lo) * self.cycle_of(step) as f64 / cycles.saturating_sub(1).max(1) as f64
            }
            WdPolicy::Lr if step < self.warmup_steps => lo,
            WdPolicy::Lr => lo + (hi - lo) * (1.0 - self.lr(step) / self.cycle_peak(self.cycle_of(step))),
        }
    }

    /// The annealing cycle `step` falls in (0 during warm-up).
    fn cycle_of(&self, step: usize) -> usize {
        let t = step.saturating_sub(self.warmup_steps);
        let last = self.cycle_bounds.len() - 2;
        self.cycle_bounds
            .partition_point(|&b| b <= t)
            .saturating_sub(1)
            .min(last)
    }

    /// Peak LR of cycle `i`: `lr * cycle_decay^i` for cosine power annealing, else the peak.
    fn cycle_peak(&self, i: usize) -> f64 {
        match self.cfg.regime {
            Regime::CosinePower => self.peak * self.cfg.cycle_decay.powi(i as i32),
            _ => self.peak,
        }
    }

    /// Cycle `i` runs from its peak `peak * cycle_decay^i` (first step) down to `lr_min` (last step).
    fn annealed(&self, step: usize, power: f64) -> f64 {
        let t = step - self.warmup_steps;
        let i = self.cycle_of(step);
        let (start, end) = (self.cycle_bounds[i], self.cycle_bounds[i + 1]);
        let len = end - start;
        let x = if len <= 1 {
            1.0
        } else {
            (t - start) as f64 / (len - 1) as f64
        };
        let cycle_peak = self.cycle_peak(i);
        let lr_min = self.cfg.lr_min.min(cycle_peak);
        lr_min + (cycle_peak - lr_min) * cosine_power(x, power)
    }
}

/// Splits `steps` into `cycles` consecutive cycles, each `mul` times longer than the previous
/// (timm's `cycle_mul`); returns the `cycles + 1` boundaries, rounded to whole steps.
fn cycle_bounds(steps: usize, cycles: usize, mul: f64) -> Vec<usize> {
    let weight = |i: usize| {
        if mul == 1.0 {
            i as f64 / cycles as f64
        } else {
            (mul.powi(i as i32) - 1.0) / (mul.powi(cycles as i32) - 1.0)
        }
    };
    (0..=cycles)
        .map(|i| (steps as f64 * weight(i)).round() as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::ScheduleConfig;
    use std::f64::consts::PI;

    fn cfg(regime: Regime) -> ScheduleConfig {
        ScheduleConfig {
            regime,
            warmup_epochs: 0.0,
            warmup_lr_init: 0.0,
            lr_min: 0.0,
            cycles: 1,
            ..ScheduleConfig::default()
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn power_one_equals_plain_cosine() {
        for x in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0] {
            close(cosine_power(x, 1.0), (1.0 + (PI * x).cos()) / 2.0);
        }
    }

    #[test]
    fn power_two_and_four_closed_form() {
        // x = 0.5: c = 0.5, q = (P^1.5 - P) / (P^2 - P).
        close(cosine_power(0.5, 2.0), (2f64.powf(1.5) - 2.0) / 2.0);
        close(cosine_power(0.5, 4.0), (8.0 - 4.0) / 12.0);
        // x = 1/3: c = 0.75.
        close(cosine_power(1.0 / 3.0, 4.0), (4f64.powf(1.75) - 4.0) / 12.0);
        for p in [2.0, 4.0] {
            close(cosine_power(0.0, p), 1.0);
            close(cosine_power(1.0, p), 0.0);
        }
    }

    #[test]
    fn cosine_regime_matches_formula_at_chosen_steps() {
        let c = ScheduleConfig {
            lr_min: 0.01,
            ..cfg(Regime::Cosine)
        };
        let s = LrSchedule::new(&c, 0.1, 10, 11); // 110 steps, x = step / 109
        for step in [0, 17, 54, 100, 109] {
            let x = step as f64 / 109.0;
            close(s.lr(step), 0.01 + 0.09 * (1.0 + (PI * x).cos()) / 2.0);
        }
    }

    #[test]
    fn cosine_power_p2_values_and_last_step_reaches_lr_min() {
        let c = ScheduleConfig {
            power: 2.0,
            lr_min: 0.001,
            ..cfg(Regime::CosinePower)
        };
        let s = LrSchedule::new(&c, 0.1, 2, 51); // 102 steps
        close(s.lr(0), 0.1);
        let x: f64 = 30.0 / 101.0;
        let cc = (1.0 + (PI * x).cos()) / 2.0;
        close(s.lr(30), 0.001 + 0.099 * (2f64.powf(1.0 + cc) - 2.0) / 2.0);
        close(s.lr(101), 0.001);
    }

    #[test]
    fn warmup_endpoints_then_anneal_over_the_rest() {
        let c = ScheduleConfig {
            warmup_epochs: 2.0,
            warmup_lr_init: 1e-4,
            ..cfg(Regime::Cosine)
        };
        let s = LrSchedule::new(&c, 0.2, 12, 10); // warm-up 20 steps, then 100 cosine steps
        close(s.lr(0), 1e-4);
        close(s.lr(10), 1e-4 + 0.5 * (0.2 - 1e-4));
        close(s.lr(20), 0.2);
        close(s.lr(21), 0.2 * (1.0 + (PI / 99.0).cos()) / 2.0);
        close(s.lr(119), 0.0);
    }

    #[test]
    fn cycle_peaks_decay_by_the_factor() {
        let c = ScheduleConfig {
            cycles: 3,
            cycle_decay: 0.5,
            power: 4.0,
            ..cfg(Regime::CosinePower)
        };
        let s = LrSchedule::new(&c, 0.1, 3, 40); // 120 steps, 3 cycles of 40
        close(s.lr(0), 0.1);
        close(s.lr(40), 0.05);
        close(s.lr(80), 0.025);
        close(s.lr(39), 0.0);
        close(s.lr(119), 0.0);
        // Inside cycle 1 at x = 10/39 with P = 4.
        let cc = (1.0 + (PI * 10.0 / 39.0).cos()) / 2.0;
        close(s.lr(50), 0.05 * (4f64.powf(1.0 + cc) - 4.0) / 12.0);
    }

    #[test]
    fn cycle_mul_lengthens_cycles() {
        let c = ScheduleConfig {
            cycles: 2,
            cycle_mul: 2.0,
            cycle_decay: 1.0,
            ..cfg(Regime::CosinePower)
        };
        let s = LrSchedule::new(&c, 1.0, 3, 30); // 90 steps: cycles of 30 and 60
        close(s.lr(29), 0.0);
        close(s.lr(30), 1.0);
        close(s.lr(89), 0.0);
    }

    #[test]
    fn step_decay_every_n_epochs_and_at_milestones() {
        let every = ScheduleConfig {
            step_epochs: Some(3.0),
            gamma: 0.1,
            ..cfg(Regime::Step)
        };
        let s = LrSchedule::new(&every, 1.0, 10, 5);
        close(s.lr(14), 1.0);
        close(s.lr(15), 0.1);
        close(s.lr(30), 0.01);
        close(s.lr(45), 0.001);
        let ms = ScheduleConfig {
            milestones: vec![0.5, 0.75],
            gamma: 0.2,
            ..cfg(Regime::Step)
        };
        let s = LrSchedule::new(&ms, 1.0, 4, 10);
        close(s.lr(19), 1.0);
        close(s.lr(20), 0.2);
        close(s.lr(30), 0.04);
        close(s.lr(39), 0.04);
    }

    #[test]
    fn weight_decay_policies_match_their_formulas() {
        let wd = 1e-4;
        let base = ScheduleConfig {
            wd_start: 0.5,
            wd_end: 3.0,
            cycles: 2,
            cycle_decay: 0.5,
            ..cfg(Regime::CosinePower)
        };
        let at = |policy: WdPolicy, step: usize| {
            LrSchedule::new(
                &ScheduleConfig {
                    wd_policy: policy,
                    ..base.clone()
                },
                0.1,
                4,
                25,
            )
            .weight_decay(step, wd)
        };
        // 100 steps, two cycles of 50.
        close(at(WdPolicy::Fixed, 37), wd);
        close(at(WdPolicy::Linear, 0), 0.5e-4);
        close(at(WdPolicy::Linear, 99), 3e-4);
        close(at(WdPolicy::Linear, 33), 0.5e-4 + 2.5e-4 * 33.0 / 99.0);
        close(at(WdPolicy::Cycles, 49), 0.5e-4);
        close(at(WdPolicy::Cycles, 50), 3e-4);
        let s = LrSchedule::new(
            &ScheduleConfig {
                wd_policy: WdPolicy::Lr,
                ..base.clone()
            },
            0.1,
            4,
            25,
        );
        close(s.weight_decay(0, wd), 0.5e-4);
        close(s.weight_decay(49, wd), 3e-4);
        close(s.weight_decay(50, wd), 0.5e-4);
        close(s.weight_decay(70, wd), 0.5e-4 + 2.5e-4 * (1.0 - s.lr(70) / 0.05));
        let warm = ScheduleConfig {
            wd_policy: WdPolicy::Lr,
            warmup_epochs: 1.0,
            ..base
        };
        close(LrSchedule::new(&warm, 0.1, 4, 25).weight_decay(10, wd), 0.5e-4);
    }

    #[test]
    fn a_warmup_as_long_as_the_run_leaves_each_cycle_two_steps() {
        let c = ScheduleConfig {
            warmup_epochs: 1.0,
            warmup_lr_init: 0.0,
            ..cfg(Regime::Cosine)
        };
        let s = LrSchedule::new(&c, 0.5, 1, 4);
        // Steps 0-1 warm up towards 0.5; steps 2-3 are the cosine cycle, from 0.5 to lr_min (0).
        for (step, lr) in [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.0)] {
            close(s.lr(step), lr);
        }
        assert!(s.check().is_ok());
        let three = ScheduleConfig {
            regime: Regime::CosinePower,
            cycles: 3,
            warmup_epochs: 5.0,
            ..c
        };
        let s = LrSchedule::new(&three, 0.5, 1, 10);
        assert_eq!((s.warmup_steps, s.cycle_bounds.clone()), (4, vec![0, 2, 4, 6]));
        assert!(s.check().is_ok());
    }

    #[test]
    fn constant_after_warmup() {
        let c = ScheduleConfig {
            warmup_epochs: 1.0,
            warmup_lr_init: 0.0,
            ..cfg(Regime::Constant)
        };
        let s = LrSchedule::new(&c, 0.5, 3, 4);
        close(s.lr(2), 0.25);
        close(s.lr(4), 0.5);
        close(s.lr(11), 0.5);
    }
}
