//! Sequential seeds: the checklist runs in rounds, and after each round (a *look*) every variant
//! still undecided is tested; decided variants stop, the others get the next round of seeds.
//! Which trials run next is a pure function of the results so far, so a killed checklist resumes
//! from its run dirs and every executor works unchanged. The method, its proof sketch and its
//! simulated error rates are in docs/checklist-statistics.md.
//!
//! Looks are at `first`, `first + round`, ... seeds, capped at `max`; look `l` has the
//! information fraction `t_l = n_l / max`. The error `alpha` is spent over the looks by the
//! spending function `A(t) = alpha t^5` ([`SPENDING_POWER`]; Lan and DeMets 1983, Kim and
//! DeMets 1987): look `l` may spend `a_l = A(t_l) - A(t_{l-1})`, and the last look spends what
//! is left, so the `a_l` add up to `alpha` exactly.
//! - **helps / hurts**: the paired t interval of the mean difference at level `1 - a_l / K`
//!   (two-sided), `K` the number of variants planned: Bonferroni over every variant at every
//!   look, so a variant that stops (as equivalent or otherwise) frees nothing for the others.
//!   By the union bound over looks and variants, the probability of any false helps or hurts is
//!   at most `sum_l a_l = alpha`, whatever the true effects and however the variants correlate.
//! - **equivalent**: Schuirmann's two one-sided tests at level `a_l` each look: the
//!   `1 - 2 a_l` interval lies inside `+-margin`. By the union bound over looks, a variant whose
//!   true effect is at (or beyond) the margin is called equivalent with probability at most
//!   `alpha`: a per-variant guarantee, not corrected over variants.
//! - **undecided**: no decision at the last look (`max`). Fewer than [`MIN_SEEDS`] seeds give no
//!   verdict at all (**too few seeds**): a t interval on 2 seeds has 1 degree of freedom.
//!
//! Standard deviations are floored at the accuracy's resolution (1 / validation images; for an
//! external trainer, whose validation-set size is unknown, the smallest difference between two
//! observed metric values), so that a few identical differences do not read as a certain effect.
use crate::recipe::ChecklistConfig;
use crate::stats::{mean, normal_upper_quantile, sample_std, t_upper_quantile};
use serde::{Deserialize, Serialize};

/// The fewest paired seeds that give a verdict.
pub const MIN_SEEDS: usize = 3;

/// Power the minimum detectable effect and the seeds needed are computed for.
pub const POWER: f64 = 0.8;

/// The fewest seeds whose own standard deviation the power figures use; below it, one arm's
/// seeds cannot carry an estimate (3 seeds: 2 degrees of freedom) and the sd pooled over the
/// arms stands in, so that one noisy variant does not inflate every arm's figures once the
/// arms have seeds enough.
pub const OWN_SD_SEEDS: usize = 6;

/// The exponent of the spending function `A(t) = alpha t^rho` (Kim and DeMets' power family,
/// 1987). A union bound over looks pays for every look it spends on, and the first looks' t
/// intervals have few degrees of freedom, so error spent early buys little: in the simulated
/// 14-variant checklists (looks at 3, 6, 9, 10 seeds) power at +1 pp rose from 0.86
/// (O'Brien-Fleming-shaped, `2 - 2 Phi(z / sqrt t)`) and 0.88 (rho 3) to 0.92 with rho 5, for
/// 0.1 more seeds per variant on average (docs/checklist-statistics.md).
pub const SPENDING_POWER: f64 = 5.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The reference arm.
    Baseline,
    /// The corrected interval lies above 0.
    Helps,
    /// The corrected interval lies below 0.
    Hurts,
    /// The equivalence interval lies inside +-margin.
    Equivalent,
    /// No decision by the last look (`checklist.max_seeds`).
    Undecided,
    /// The last look had fewer than [`MIN_SEEDS`] seeds: no verdict.
    TooFewSeeds,
    Diverged,
    Failed,
    /// A trial was stopped early, far below its paired baseline trial (`checklist.early_stop`).
    Stopped,
    /// Waiting for seeds of a later round (or of an unfinished one).
    Incomplete,
}

/// How the seeds of a checklist are spent and judged. Fixed when the first look is taken and
/// recorded in the checklist directory (`design.json`), so that later looks spend what this
/// design planned and nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Design {
    /// Seeds of the first round.
    pub first: usize,
    /// The most seeds any arm gets.
    pub max: usize,
    /// Seeds added by each later round.
    pub round: usize,
    /// Family-wise error of helps/hurts claims; each variant's error of a false equivalence.
    pub alpha: f64,
    /// Equivalence margin, as a fraction (0.005 = 0.5 pp).
    pub margin: f64,
    /// The comparisons the helps/hurts level is split over: every variant planned.
    pub comparisons: usize,
}

/// One arm's standing after the looks its results allow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Helps, hurts, equivalent, undecided (last look passed), too few seeds, or incomplete.
    pub verdict: Verdict,
    /// Helps or hurts with the whole corrected interval inside +-margin: a real effect smaller
    /// than the margin.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub below_margin: bool,
    /// Seeds the last evaluated look used (0 before the first look).
    pub seeds: usize,
    /// The last look evaluated, 1-based (0 before the first).
    pub look: usize,
    /// The helps/hurts interval of the mean difference at that look, and its confidence level.
    pub ci: Option<(f64, f64)>,
    #[serde(default)]
    pub ci_level: Option<f64>,
    /// The equivalence interval at that look (two one-sided tests), and its confidence level.
    pub eq_ci: Option<(f64, f64)>,
    #[serde(default)]
    pub eq_level: Option<f64>,
    /// The smallest true effect the helps/hurts test of that look finds with 80% power, from the
    /// arm's own standard deviation, or the one pooled over the arms when it has fewer than
    /// [`OWN_SD_SEEDS`] seeds (`pooled_sd`).
    pub detectable: Option<f64>,
    /// Undecided arms: seeds a one-look checklist would need to find an effect of the margin
    /// with 80% power (the same standard deviation); None above 1000.
    pub seeds_needed: Option<usize>,
    /// The power figures use the standard deviation pooled over the arms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pooled_sd: bool,
    /// Seeds the next round needs for this arm (0 when decided or done).
    pub needs: usize,
}

impl Decision {
    /// The interval that decided the verdict and its level: the equivalence interval for
    /// `equivalent`, the helps/hurts interval otherwise.
    pub fn deciding(&self) -> Option<((f64, f64), f64)> {
        match self.verdict {
            Verdict::Equivalent => self.eq_ci.zip(self.eq_level),
            _ => self.ci.zip(self.ci_level),
        }
    }
}

/// The critical values of one look.
#[derive(Clone, Copy, Debug)]
struct Boundary {
    /// Seeds at the look.
    n: usize,
    /// Error spent at the look.
    spent: f64,
    /// t quantile of the helps/hurts interval: `t(1 - spent / (2K), n - 1)`.
    c: f64,
    /// t quantile of the equivalence interval: `t(1 - spent, n - 1)`.
    ce: f64,
    /// The minimum detectable effect at 80% power per unit of standard deviation.
    mde: f64,
}

/// Every look's critical values, computed once per design (they depend on the design alone).
#[derive(Clone, Debug)]
pub struct Boundaries(Vec<Boundary>);

impl Design {
    /// The design of a `[checklist]` section with `comparisons` variants, for a validation split
    /// of `val_images` images (0 if unknown): the default margin is 0.5 pp or two validation
    /// images, whichever is larger, since a smaller difference is within the accuracy's
    /// resolution.
    pub fn new(cfg: &ChecklistConfig, val_images: usize, comparisons: usize) -> Design {
        let two_images = if val_images > 0 { 2.0 / val_images as f64 } else { 0.0 };
        Design {
            first: cfg.seeds,
            max: cfg.max_seeds.max(cfg.seeds),
            round: cfg.round_seeds,
            alpha: cfg.alpha,
            margin: cfg.margin.map_or(two_images.max(0.005), |pp| pp / 100.0),
            comparisons: comparisons.max(1),
        }
    }

    /// The seed counts of the looks: `first`, `first + round`, ..., `max`.
    pub fn looks(&self) -> Vec<usize> {
        let mut v = vec![self.first.min(self.max)];
        while *v.last().expect("one look") < self.max {
            v.push((v.last().expect("one look") + self.round.max(1)).min(self.max));
        }
        v
    }

    /// The spending function: the error that may be spent by information fraction `t`,
    /// `A(t) = alpha t^SPENDING_POWER`, so that `A(1) = alpha`.
    pub fn spending(&self, t: f64) -> f64 {
        self.alpha * t.clamp(0.0, 1.0).powf(SPENDING_POWER)
    }

    /// The error spent at each look: `A(t_l) - A(t_{l-1})`, the last look taking the rest of
    /// `alpha`, so that they add up to `alpha`.
    pub fn spent(&self) -> Vec<f64> {
        let looks = self.looks();
        let cumulative: Vec<f64> = looks
            .iter()
            .enumerate()
            .map(|(l, &n)| {
                if l + 1 == looks.len() {
                    self.alpha
                } else {
                    self.spending(n as f64 / self.max as f64)
                }
            })
            .collect();
        (0..looks.len())
            .map(|l| cumulative[l] - if l == 0 { 0.0 } else { cumulative[l - 1] })
            .collect()
    }

    /// The critical values of every look.
    pub fn boundaries(&self) -> Boundaries {
        let k = self.comparisons as f64;
        let looks = self.looks().into_iter().zip(self.spent());
        Boundaries(
            looks
                .map(|(n, spent)| {
                    let df = n.saturating_sub(1).max(1) as f64;
                    Boundary {
                        n,
                        spent,
                        c: t_upper_quantile(spent / (2.0 * k), df),
                        ce: t_upper_quantile(spent, df),
                        mde: detectable(1.0, n, spent / k),
                    }
                })
                .collect(),
        )
    }

    /// Replays the looks over the arms' paired differences (each in seed order, as many as have
    /// finished) and returns each arm's decision. `stopped[k]` marks an arm that ended otherwise
    /// (a diverged or failed seed): it takes no part in the looks. With Bonferroni over every
    /// planned variant, each arm's looks depend on its own differences only. Also returns the
    /// standard deviation pooled over the arms' differences, which the power figures use.
    pub fn decide(&self, arms: &[Vec<f64>], stopped: &[bool], resolution: f64) -> (Vec<Decision>, Option<f64>) {
        self.decide_with(&self.boundaries(), arms, stopped, resolution)
    }

    /// [`Design::decide`] with the design's boundaries computed beforehand (simulations decide
    /// thousands of checklists of one design).
    pub fn decide_with(
        &self,
        bounds: &Boundaries,
        arms: &[Vec<f64>],
        stopped: &[bool],
        resolution: f64,
    ) -> (Vec<Decision>, Option<f64>) {
        let bounds = &bounds.0;
        let mut out: Vec<Decision> = arms
            .iter()
            .zip(stopped)
            .map(|(diffs, &stop)| self.decide_arm(diffs, stop, resolution, bounds))
            .collect();
        let used: Vec<&[f64]> = arms.iter().zip(&out).map(|(a, d)| &a[..d.seeds]).collect();
        let pooled = pooled_sd(&used).map(|s| s.max(resolution));
        let mut factors = std::collections::HashMap::new();
        for (d, x) in out.iter_mut().zip(&used).filter(|(d, _)| d.look > 0) {
            d.pooled_sd = x.len() < OWN_SD_SEEDS;
            let sd = if d.pooled_sd {
                pooled
            } else {
                Some(sample_std(x).max(resolution))
            };
            d.detectable = sd.map(|s| bounds[d.look - 1].mde * s);
            if d.verdict == Verdict::Undecided {
                d.seeds_needed = sd.and_then(|s| self.seeds_needed(s, &mut factors));
            }
        }
        (out, pooled)
    }

    /// One arm's decision from its differences.
    fn decide_arm(&self, diffs: &[f64], stopped: bool, resolution: f64, bounds: &[Boundary]) -> Decision {
        let mut d = Decision {
            verdict: Verdict::Incomplete,
            below_margin: false,
            seeds: 0,
            look: 0,
            ci: None,
            ci_level: None,
            eq_ci: None,
            eq_level: None,
            detectable: None,
            seeds_needed: None,
            pooled_sd: false,
            needs: if stopped { 0 } else { bounds[0].n },
        };
        if stopped {
            return d;
        }
        for (l, b) in bounds.iter().enumerate() {
            if diffs.len() < b.n {
                d.needs = b.n;
                return d;
            }
            let last = l + 1 == bounds.len();
            (d.seeds, d.look, d.needs) = (b.n, l + 1, 0);
            if b.n < MIN_SEEDS {
                d.verdict = if last {
                    Verdict::TooFewSeeds
                } else {
                    Verdict::Incomplete
                };
                d.needs = bounds.get(l + 1).map_or(0, |next| next.n);
                continue;
            }
            let x = &diffs[..b.n];
            let (m, se) = (mean(x), sample_std(x).max(resolution) / (b.n as f64).sqrt());
            d.ci = Some((m - b.c * se, m + b.c * se));
            d.ci_level = Some(1.0 - b.spent / self.comparisons as f64);
            d.eq_ci = Some((m - b.ce * se, m + b.ce * se));
            d.eq_level = Some(1.0 - 2.0 * b.spent);
            let (lo, hi) = d.ci.expect("set above");
            let (elo, ehi) = d.eq_ci.expect("set above");
            d.verdict = if lo > 0.0 {
                Verdict::Helps
            } else if hi < 0.0 {
                Verdict::Hurts
            } else if -self.margin < elo && ehi < self.margin {
                Verdict::Equivalent
            } else if last {
                Verdict::Undecided
            } else {
                d.needs = bounds[l + 1].n;
                Verdict::Incomplete
            };
            d.below_margin =
                matches!(d.verdict, Verdict::Helps | Verdict::Hurts) && -self.margin < lo && hi < self.margin;
            if d.verdict != Verdict::Incomplete {
                return d;
            }
        }
        d
    }

    /// Seeds (up to 1000) a one-look checklist at level `alpha / K` would need to find an
    /// effect of the margin with 80% power, at standard deviation `sd` (STATISTICS.md section 5:
    /// the normal approximation, then t quantiles until it settles). `factors` keeps the
    /// detectable effect per unit sd of each seed count computed so far.
    fn seeds_needed(&self, sd: f64, factors: &mut std::collections::HashMap<usize, f64>) -> Option<usize> {
        let a = self.alpha / self.comparisons as f64;
        let z = normal_upper_quantile(a / 2.0) + normal_upper_quantile(1.0 - POWER);
        let mut reaches = |n: usize| *factors.entry(n).or_insert_with(|| detectable(1.0, n, a)) * sd <= self.margin;
        let mut n = ((z * sd / self.margin).powi(2).ceil() as usize).clamp(MIN_SEEDS, 1001);
        while n <= 1000 && !reaches(n) {
            n += 1;
        }
        while n > MIN_SEEDS && reaches(n - 1) {
            n -= 1;
        }
        (n <= 1000).then_some(n)
    }

    /// Seeds the baseline needs: as many as the arm that needs the most (paired differences).
    pub fn baseline_needs(decisions: &[Decision]) -> usize {
        decisions.iter().map(|d| d.needs).max().unwrap_or(0)
    }
}

/// The minimum detectable effect with 80% power of a two-sided t test at level `a` on `n`
/// paired seeds with standard deviation `sd`: `(t(n-1, 1 - a/2) + t(n-1, 0.8)) sd / sqrt(n)`
/// (STATISTICS.md section 5).
pub fn detectable(sd: f64, n: usize, a: f64) -> f64 {
    let df = n.saturating_sub(1).max(1) as f64;
    (t_upper_quantile(a / 2.0, df) + t_upper_quantile(1.0 - POWER, df)) * sd / (n as f64).sqrt()
}

/// The standard deviation pooled over arms, each about its own mean (degrees of freedom
/// `sum (n_k - 1)`); None when no arm has two values. A planning figure: one arm's few seeds
/// cannot carry its own.
pub fn pooled_sd(arms: &[&[f64]]) -> Option<f64> {
    let (ss, df) = arms.iter().filter(|a| a.len() >= 2).fold((0.0, 0usize), |(ss, df), a| {
        let m = mean(a);
        (ss + a.iter().map(|x| (x - m).powi(2)).sum::<f64>(), df + a.len() - 1)
    });
    (df > 0).then(|| (ss / df as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design(max: usize) -> Design {
        Design {
            first: 3,
            max,
            round: 3,
            alpha: 0.05,
            margin: 0.005,
            comparisons: 14,
        }
    }

    #[test]
    fn looks_and_spending_add_up_to_alpha() {
        let d = design(10);
        assert_eq!(d.looks(), vec![3, 6, 9, 10]);
        assert_eq!(design(3).looks(), vec![3]);
        // A(t) = 0.05 t^5: 0.05 * 0.3^5 = 1.215e-4 at the first look.
        assert!((d.spending(0.3) - 1.215e-4).abs() < 1e-15, "{}", d.spending(0.3));
        assert!((d.spending(1.0) - 0.05).abs() < 1e-15);
        let spent = d.spent();
        assert!((spent[0] - d.spending(0.3)).abs() < 1e-15);
        assert!((spent[1] - (d.spending(0.6) - d.spending(0.3))).abs() < 1e-15);
        let total: f64 = spent.iter().sum();
        assert!((total - 0.05).abs() < 1e-15, "{total}");
        assert!(spent.windows(2).take(2).all(|w| w[0] < w[1]), "little early: {spent:?}");
    }

    #[test]
    fn one_look_by_hand() {
        // 3 differences of 0.02, 0.03, 0.04: mean 0.03, sd 0.01, se 0.01/sqrt(3); one variant,
        // one look (max 3) spends all of alpha: helps/hurts interval 0.03 +- t(0.975, 2) se at
        // 95%, equivalence interval 0.03 +- t(0.95, 2) se at 90%.
        let d = Design {
            max: 3,
            comparisons: 1,
            ..design(3)
        };
        let (out, pooled) = d.decide(&[vec![0.02, 0.03, 0.04]], &[false], 1.0 / 1000.0);
        let half = 4.302_652_7 * 0.01 / 3f64.sqrt();
        let (lo, hi) = out[0].ci.unwrap();
        assert!(
            (lo - (0.03 - half)).abs() < 1e-6 && (hi - (0.03 + half)).abs() < 1e-6,
            "{lo} {hi}"
        );
        let (elo, _) = out[0].eq_ci.unwrap();
        assert!((elo - (0.03 - 2.919_986 * 0.01 / 3f64.sqrt())).abs() < 1e-6, "{elo}");
        assert!((out[0].ci_level.unwrap() - 0.95).abs() < 1e-12);
        assert!((out[0].eq_level.unwrap() - 0.90).abs() < 1e-12);
        assert_eq!(out[0].verdict, Verdict::Helps);
        assert_eq!(out[0].deciding(), Some(((lo, hi), out[0].ci_level.unwrap())));
        assert_eq!((out[0].seeds, out[0].look, out[0].needs), (3, 1, 0));
        // 80% power at 3 seeds: (t(0.975, 2) + t(0.8, 2)) sd / sqrt(3), t(0.8, 2) = 1.060660.
        assert!((pooled.unwrap() - 0.01).abs() < 1e-12);
        let mde = (4.302_652_7 + 1.060_660) * 0.01 / 3f64.sqrt();
        assert!(
            (out[0].detectable.unwrap() - mde).abs() < 1e-6,
            "{:?}",
            out[0].detectable
        );
    }

    #[test]
    fn bonferroni_is_over_every_planned_variant_and_an_arm_depends_on_its_own_seeds() {
        let d = design(10);
        let noisy = vec![0.01, -0.01, 0.004];
        let (alone, _) = d.decide(std::slice::from_ref(&noisy), &[false], 0.001);
        let (with_others, _) = d.decide(&[noisy, vec![0.0, 0.0005, -0.0005]], &[false, false], 0.001);
        assert_eq!(alone[0].ci, with_others[0].ci, "another arm's stopping frees no error");
        assert!((alone[0].ci_level.unwrap() - (1.0 - d.spent()[0] / 14.0)).abs() < 1e-15);
    }

    #[test]
    fn rounds_ask_for_seeds_until_decided() {
        let d = design(10);
        // Nothing run yet: every arm needs the first round.
        let (out, _) = d.decide(&[vec![], vec![]], &[false, false], 0.001);
        assert!(out.iter().all(|o| o.needs == 3 && o.verdict == Verdict::Incomplete));
        // Arm 0 has differences within 0.05 pp of 0 but only 3 seeds: the first look spends so
        // little that it is not yet equivalent; arm 1 is noisy. Both need 6, the baseline too.
        let arms = [vec![0.0, 0.0005, -0.0005], vec![0.01, -0.01, 0.004]];
        let (out, _) = d.decide(&arms, &[false, false], 0.001);
        assert_eq!((out[0].verdict, out[0].needs), (Verdict::Incomplete, 6));
        assert_eq!((out[1].verdict, out[1].needs), (Verdict::Incomplete, 6));
        assert_eq!(Design::baseline_needs(&out), 6);
        // Six tight differences: equivalent at the second look.
        let tight = vec![0.0, 0.0005, -0.0005, 0.0, 0.0005, -0.0005];
        let (out, _) = d.decide(&[tight], &[false], 0.001);
        assert_eq!((out[0].verdict, out[0].look), (Verdict::Equivalent, 2));
        assert_eq!(out[0].deciding().map(|(ci, _)| ci), out[0].eq_ci);
        // A stopped arm (diverged) takes no part and needs nothing.
        let (out, _) = d.decide(&[vec![], vec![0.0; 6]], &[true, false], 0.001);
        assert_eq!((out[0].needs, out[1].verdict), (0, Verdict::Equivalent));
    }

    #[test]
    fn two_seeds_give_no_verdict_and_a_small_real_effect_is_below_the_margin() {
        let two = Design {
            first: 2,
            max: 2,
            ..design(2)
        };
        let (out, _) = two.decide(&[vec![0.05, 0.05]], &[false], 0.001);
        assert_eq!(
            (out[0].verdict, out[0].ci, out[0].needs),
            (Verdict::TooFewSeeds, None, 0)
        );
        // +0.2 pp, sd 0.01 pp, one look at 10 seeds: helps, and the whole interval lies inside
        // +-0.5 pp.
        let d = Design {
            first: 10,
            ..design(10)
        };
        let small: Vec<f64> = (0..10).map(|i| 0.002 + if i % 2 == 0 { 1e-4 } else { -1e-4 }).collect();
        let (out, _) = d.decide(&[small], &[false], 1e-5);
        assert_eq!(out[0].verdict, Verdict::Helps);
        assert!(out[0].below_margin, "{:?}", out[0]);
    }

    #[test]
    fn power_figures_use_an_arms_own_sd_from_6_seeds_on() {
        // A quiet arm and a noisy one at 6 seeds: each is judged by its own noise.
        let d = Design {
            first: 6,
            max: 6,
            ..design(6)
        };
        let quiet = vec![0.001, -0.001, 0.002, -0.002, 0.001, -0.001];
        let noisy: Vec<f64> = quiet.iter().map(|x| 20.0 * x).collect();
        let (out, _) = d.decide(&[quiet.clone(), noisy], &[false, false], 1e-5);
        assert!(!out[0].pooled_sd && !out[1].pooled_sd);
        let ratio = out[1].detectable.unwrap() / out[0].detectable.unwrap();
        assert!((ratio - 20.0).abs() < 1e-9, "{ratio}");
        let mde = detectable(sample_std(&quiet), 6, d.spent()[0] / 14.0);
        assert!((out[0].detectable.unwrap() - mde).abs() < 1e-15);
    }

    /// A tiny alpha passes validation; its levels lie far beyond `1 - p`'s float resolution and
    /// once made the t quantile panic after the first round (and every report after it).
    #[test]
    fn a_tiny_alpha_gives_finite_intervals_and_no_panic() {
        let d = Design {
            alpha: 1e-15,
            ..design(10)
        };
        let arms = vec![vec![0.01, 0.02, 0.015], vec![0.0, 0.001, -0.001]];
        let (out, _) = d.decide(&arms, &[false, false], 1e-4);
        for o in &out {
            let (lo, hi) = o.ci.unwrap();
            assert!(lo.is_finite() && hi.is_finite() && lo < hi, "{o:?}");
            assert_eq!(o.verdict, Verdict::Incomplete);
        }
    }

    #[test]
    fn seeds_needed_reach_the_margin_with_80_percent_power() {
        let d = design(4);
        // Undecided at 4 seeds with noise 1 pp: a one-look design at 0.05 / 14 needs n with
        // (t(1 - 0.05/28, n-1) + t(0.8, n-1)) 1 pp / sqrt(n) <= 0.5 pp.
        let arms = vec![vec![0.01, -0.01, 0.012, -0.008]];
        let (out, pooled) = d.decide(&arms, &[false], 0.0);
        assert_eq!(out[0].verdict, Verdict::Undecided);
        assert!(out[0].pooled_sd, "4 seeds: the pooled sd");
        let n = out[0].seeds_needed.unwrap();
        let s = pooled.unwrap();
        assert!(detectable(s, n, 0.05 / 14.0) <= 0.005 && detectable(s, n - 1, 0.05 / 14.0) > 0.005);
        assert!((60..=120).contains(&n), "{n}");
    }
}
