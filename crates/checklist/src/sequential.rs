//! Sequential seeds: the checklist runs in rounds, and after each round (a *look*) every variant
//! still undecided is tested; decided variants stop, the others get the next round of seeds.
//! Which trials run next is a pure function of the results so far, so a killed checklist resumes
//! from its run dirs and every executor works unchanged. The method, its proof sketch and its
//! simulated error rates are in docs/checklist-statistics.md.
//!
//! Looks are at `first`, `first + round`, ... seeds, capped at `max`; look `l` has the
//! information fraction `t_l = n_l / max`. The error `alpha` is spent over the looks by the
//! spending function `A(t) = alpha t^rho` ([`SPENDING_POWER`]; Lan and DeMets 1983, Kim and
//! DeMets 1987): look `l` may spend `a_l = A(t_l) - A(t_{l-1})`, the last look what is left, so
//! the `a_l` add up to `alpha`; a look with fewer than [`DECIDE_SEEDS`] seeds spends nothing
//! (its t interval is too wide to decide) and leaves its share to the next.
//! - **helps / hurts**: group-sequential Holm (Maurer and Bretz 2013): with `r` variants already
//!   called helps or hurts, each open variant is tested at level `alpha / (K - r)` with the
//!   group-sequential boundary of that level at this look (`calibration.rs`: exact
//!   group-sequential critical values for t on `n_l - 1` degrees of freedom), and the test is
//!   repeated at the look until no further variant is rejected. `K` counts every variant
//!   planned; a variant that stops as equivalent, diverged or failed frees nothing, only a
//!   rejection does. The family-wise chance of any false helps or hurts is at most `alpha`,
//!   whatever the true effects and however the variants correlate (the closed testing argument
//!   in docs/checklist-statistics.md).
//! - **equivalent**: Schuirmann's two one-sided tests at level `a_l` each look: the
//!   `1 - 2 a_l` interval lies inside `+-margin`. By the union bound over looks, a variant whose
//!   true effect is at (or beyond) the margin is called equivalent with probability at most
//!   `alpha`: a per-variant guarantee, not corrected over variants.
//! - **undecided**: no decision at the last look (`max`). Fewer than [`MIN_SEEDS`] seeds give no
//!   verdict at all (**too few seeds**): a t interval on 2 seeds has 1 degree of freedom.
//!
//! A look is taken for all open variants at once, when each has its seeds: Holm's levels depend
//! on the others' rejections at the same look.
//!
//! Standard deviations are floored at the accuracy's resolution (1 / validation images; for an
//! external trainer, whose validation-set size is unknown, the smallest difference between two
//! observed metric values), so that a few identical differences do not read as a certain effect.
use super::calibration::{self, Row};
use darkmagic_base::recipe::ChecklistConfig;
use darkmagic_base::stats::{mean, normal_upper_quantile, sample_std, t_cdf, t_upper_quantile};
use serde::{Deserialize, Serialize};

/// The fewest paired seeds that give a verdict.
pub const MIN_SEEDS: usize = 3;

/// The fewest paired seeds at which a look spends error. At 3 seeds a t interval has 2 degrees
/// of freedom: at 14 variants a helps/hurts test needs `|t| > 34` and never decides, so error
/// spent there is lost (an audit measured 24% of alpha spent at 3 seeds to no use).
pub const DECIDE_SEEDS: usize = 4;

/// Power the minimum detectable effect and the seeds needed are computed for.
pub const POWER: f64 = 0.8;

/// The fewest seeds whose own standard deviation the power figures use; below it, one arm's
/// seeds cannot carry an estimate and the sd pooled over the arms stands in, so that one noisy
/// variant does not inflate every arm's figures once the arms have seeds enough.
pub const OWN_SD_SEEDS: usize = 6;

/// The exponent of the spending function `A(t) = alpha t^rho` (Kim and DeMets' power family,
/// 1987). The choice is measured in docs/checklist-statistics.md.
pub const SPENDING_POWER: f64 = 3.0;

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

/// How large a helps or hurts effect is, from its helps/hurts interval against the margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// The whole interval lies beyond the margin: by at least the margin.
    AtLeastMargin,
    /// The whole interval lies inside +-margin: real, but smaller than the margin.
    BelowMargin,
    /// The interval reaches across the margin.
    Unclear,
}

impl Size {
    /// The size of an effect whose interval `(lo, hi)` excludes 0, against `margin`.
    pub fn of((lo, hi): (f64, f64), margin: f64) -> Size {
        if lo >= margin || hi <= -margin {
            Size::AtLeastMargin
        } else if -margin < lo && hi < margin {
            Size::BelowMargin
        } else {
            Size::Unclear
        }
    }
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
    /// The helps/hurts critical values of |t|: row `m - 1` for level `alpha / m`, one value per
    /// look (null where the look spends nothing), calibrated by `calibration::table` when the
    /// design is made and read back from the record after.
    #[serde(default)]
    pub critical: Vec<Row>,
}

/// One arm's standing after the looks its results allow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Helps, hurts, equivalent, undecided (last look passed), too few seeds, or incomplete.
    pub verdict: Verdict,
    /// Helps or hurts: how large, against the margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Seeds the last evaluated look used (0 before the first look).
    pub seeds: usize,
    /// The last look evaluated, 1-based (0 before the first).
    pub look: usize,
    /// The helps/hurts interval of the mean difference at that look (at the Holm level it was
    /// tested at), and its confidence level.
    pub ci: Option<(f64, f64)>,
    #[serde(default)]
    pub ci_level: Option<f64>,
    /// The equivalence interval at that look (two one-sided tests), and its confidence level.
    pub eq_ci: Option<(f64, f64)>,
    #[serde(default)]
    pub eq_level: Option<f64>,
    /// The smallest true effect the helps/hurts test of that look finds with 80% power (at level
    /// `alpha / K`), from the arm's own standard deviation, or the one pooled over the arms when
    /// it has fewer than [`OWN_SD_SEEDS`] seeds (`pooled_sd`).
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

    /// An arm that has not been looked at yet: it needs `needs` seeds.
    fn waiting(needs: usize) -> Decision {
        Decision {
            verdict: Verdict::Incomplete,
            size: None,
            seeds: 0,
            look: 0,
            ci: None,
            ci_level: None,
            eq_ci: None,
            eq_level: None,
            detectable: None,
            seeds_needed: None,
            pooled_sd: false,
            needs,
        }
    }
}

/// The critical values of one look.
#[derive(Clone, Debug)]
struct Boundary {
    /// Seeds at the look.
    n: usize,
    /// Error spent at the look.
    spent: f64,
    /// |t| critical values of the helps/hurts test at level `alpha / m`, index `m - 1`.
    c: Vec<Option<f64>>,
    /// t quantile of the equivalence interval: `t(1 - spent, n - 1)`.
    ce: Option<f64>,
}

impl Boundary {
    /// The helps/hurts critical value with `open` hypotheses not yet rejected.
    fn critical(&self, open: usize) -> Option<f64> {
        self.c.get(open.clamp(1, self.c.len()) - 1).copied().flatten()
    }
}

/// Every look's critical values (they depend on the design alone).
#[derive(Clone, Debug)]
pub struct Boundaries(Vec<Boundary>);

/// An open arm's statistics at one look.
struct AtLook {
    arm: usize,
    mean: f64,
    se: f64,
}

impl AtLook {
    fn t(&self) -> f64 {
        self.mean / self.se
    }
    fn interval(&self, c: f64) -> (f64, f64) {
        (self.mean - c * self.se, self.mean + c * self.se)
    }
}

impl Design {
    /// The design of a `[checklist]` section with `comparisons` variants, for a validation split
    /// of `val_images` images (0 if unknown): the default margin is 0.5 pp or two validation
    /// images, whichever is larger, since a smaller difference is within the accuracy's
    /// resolution. Its critical values are calibrated here (memoised per design).
    pub fn new(cfg: &ChecklistConfig, val_images: usize, comparisons: usize) -> Design {
        let mut d = Design {
            first: cfg.seeds,
            max: cfg.max_seeds.max(cfg.seeds),
            round: cfg.round_seeds,
            alpha: cfg.alpha,
            margin: cfg.margin.map_or(default_margin(val_images), |pp| pp / 100.0),
            comparisons: comparisons.max(1),
            critical: Vec::new(),
        };
        d.critical = d.calibrated_table();
        d
    }

    /// The critical values calibrated for this design's looks, spending and comparisons (what
    /// `critical` holds when the design was made here).
    pub fn calibrated_table(&self) -> Vec<Row> {
        self.calibrated().to_vec()
    }

    /// The critical values calibrated for this design's looks, spending and comparisons.
    fn calibrated(&self) -> std::sync::Arc<Vec<Row>> {
        calibration::table(&self.looks(), &self.spent(), self.comparisons)
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

    /// The error spent at each look: `A(t_l) - A(t_{l-1})`, nothing at a look with fewer than
    /// [`DECIDE_SEEDS`] seeds (unless it is the last), the last look taking the rest of
    /// `alpha`, so that they add up to `alpha`.
    pub fn spent(&self) -> Vec<f64> {
        let looks = self.looks();
        let cumulative: Vec<f64> = looks
            .iter()
            .enumerate()
            .map(|(l, &n)| match l + 1 == looks.len() {
                true => self.alpha,
                false if n < DECIDE_SEEDS => 0.0,
                false => self.spending(n as f64 / self.max as f64),
            })
            .collect();
        (0..looks.len())
            .map(|l| cumulative[l] - if l == 0 { 0.0 } else { cumulative[l - 1] })
            .collect()
    }

    /// The critical values of every look: the recorded ones when they fit the design's looks
    /// and comparisons, else calibrated.
    pub fn boundaries(&self) -> Boundaries {
        let looks = self.looks();
        // Row `m - 1` is level `alpha / m` whatever the table's length, so a wider table (the
        // checklist's, for its combined recipe's one comparison) serves by its first rows.
        let fits = self.critical.len() >= self.comparisons && self.critical.iter().all(|r| r.len() == looks.len());
        let table = if fits {
            std::sync::Arc::new(self.critical[..self.comparisons].to_vec())
        } else {
            self.calibrated()
        };
        let looks = looks.into_iter().zip(self.spent()).enumerate();
        Boundaries(
            looks
                .map(|(l, (n, spent))| Boundary {
                    n,
                    spent,
                    c: table.iter().map(|row| row[l]).collect(),
                    ce: (spent > 0.0).then(|| t_upper_quantile(spent, n.saturating_sub(1).max(1) as f64)),
                })
                .collect(),
        )
    }

    /// Replays the looks over the arms' paired differences (each in seed order, as many as have
    /// finished; one entry per planned variant, empty for one not run yet) and returns each
    /// arm's decision. `stopped[k]` marks an arm that ended otherwise (a diverged or failed
    /// seed): it takes no part in the looks. Also returns the standard deviation pooled over the
    /// arms' differences, which the power figures use.
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
        let mut out = self.verdicts(bounds, arms, stopped, resolution);
        let pooled = self.power_figures(&bounds.0, arms, &mut out, resolution);
        (out, pooled)
    }

    /// The looks of [`Design::decide_with`] without the power figures (what simulations need).
    pub fn verdicts(&self, bounds: &Boundaries, arms: &[Vec<f64>], stopped: &[bool], resolution: f64) -> Vec<Decision> {
        let bounds = &bounds.0;
        let mut out: Vec<Decision> = stopped
            .iter()
            .map(|&s| Decision::waiting(if s { 0 } else { bounds[0].n }))
            .collect();
        let mut rejected = 0;
        for (l, b) in bounds.iter().enumerate() {
            let open: Vec<usize> = (0..arms.len())
                .filter(|&k| !stopped[k] && matches!(out[k].verdict, Verdict::Incomplete))
                .collect();
            if open.iter().any(|&k| arms[k].len() < b.n) {
                // The look waits for every open arm's seeds: Holm's level depends on them all.
                open.iter().for_each(|&k| out[k].needs = b.n);
                break;
            }
            let next = bounds.get(l + 1).map_or(0, |next| next.n);
            let at: Vec<AtLook> = open
                .iter()
                .map(|&k| {
                    let x = &arms[k][..b.n];
                    let d = &mut out[k];
                    (d.seeds, d.look, d.needs) = (b.n, l + 1, next);
                    (d.ci, d.ci_level, d.eq_ci, d.eq_level) = (None, None, None, None);
                    let se = sample_std(x).max(resolution) / (b.n as f64).sqrt();
                    AtLook {
                        arm: k,
                        mean: mean(x),
                        se,
                    }
                })
                .collect();
            if b.n < MIN_SEEDS {
                for a in &at {
                    out[a.arm].verdict = if next == 0 {
                        Verdict::TooFewSeeds
                    } else {
                        Verdict::Incomplete
                    };
                }
                continue;
            }
            rejected += self.holm_at_look(b, &at, rejected, &mut out);
            for a in &at {
                self.equivalence_at_look(b, a, next == 0, &mut out[a.arm]);
            }
        }
        out
    }

    /// Holm's step-down at one look: open arms whose |t| passes the boundary of level
    /// `alpha / (K - r)` are called helps or hurts, and the others are tested again at the level
    /// their rejections free, until none passes. Each open arm's helps/hurts interval is the
    /// one at the level it was last tested at. Returns the number of new rejections.
    fn holm_at_look(&self, b: &Boundary, at: &[AtLook], before: usize, out: &mut [Decision]) -> usize {
        let mut rejected = before;
        loop {
            let Some(c) = b.critical(self.comparisons.saturating_sub(rejected)) else {
                return rejected - before;
            };
            let df = (b.n - 1) as f64;
            let mut newly = 0;
            for a in at {
                let d = &mut out[a.arm];
                if d.verdict != Verdict::Incomplete {
                    continue;
                }
                d.ci = Some(a.interval(c));
                d.ci_level = Some(1.0 - 2.0 * (1.0 - t_cdf(c, df)));
                if a.t().abs() > c {
                    d.verdict = if a.mean > 0.0 { Verdict::Helps } else { Verdict::Hurts };
                    d.size = Some(Size::of(a.interval(c), self.margin));
                    d.needs = 0;
                    newly += 1;
                }
            }
            if newly == 0 {
                return rejected - before;
            }
            rejected += newly;
        }
    }

    /// Schuirmann's two one-sided tests at one look: the equivalence interval of every arm
    /// looked at, and the verdict of one Holm did not reject.
    fn equivalence_at_look(&self, b: &Boundary, a: &AtLook, last: bool, d: &mut Decision) {
        let open = d.verdict == Verdict::Incomplete;
        if let Some(ce) = b.ce {
            let (lo, hi) = a.interval(ce);
            d.eq_ci = Some((lo, hi));
            d.eq_level = Some(1.0 - 2.0 * b.spent);
            if open && -self.margin < lo && hi < self.margin {
                d.verdict = Verdict::Equivalent;
                d.needs = 0;
                return;
            }
        }
        if open && last {
            d.verdict = Verdict::Undecided;
        }
    }

    /// Fills in each looked-at arm's detectable effect and, for the undecided, the seeds a
    /// one-look checklist would need; returns the sd pooled over the arms.
    fn power_figures(
        &self,
        bounds: &[Boundary],
        arms: &[Vec<f64>],
        out: &mut [Decision],
        resolution: f64,
    ) -> Option<f64> {
        let used: Vec<&[f64]> = arms.iter().zip(out.iter()).map(|(a, d)| &a[..d.seeds]).collect();
        let pooled = pooled_sd(&used).map(|s| s.max(resolution));
        let a = self.alpha / self.comparisons as f64;
        let mut factors = std::collections::HashMap::new();
        for (d, x) in out.iter_mut().zip(&used).filter(|(d, _)| d.look > 0) {
            d.pooled_sd = x.len() < OWN_SD_SEEDS;
            let sd = if d.pooled_sd {
                pooled
            } else {
                Some(sample_std(x).max(resolution))
            };
            let b = &bounds[d.look - 1];
            d.detectable = sd.zip(b.critical(self.comparisons)).map(|(s, c)| mde(c, b.n) * s);
            if d.verdict == Verdict::Undecided {
                d.seeds_needed = sd.and_then(|s| self.seeds_needed(s, a, &mut factors));
            }
        }
        pooled
    }

    /// Seeds (up to 1000) a one-look checklist at level `a = alpha / K` would need to find an
    /// effect of the margin with 80% power, at standard deviation `sd` (docs/checklist-statistics.md,
    /// "Power": the normal approximation, then t quantiles until it settles). `factors` keeps
    /// the detectable effect per unit sd of each seed count computed so far.
    fn seeds_needed(&self, sd: f64, a: f64, factors: &mut std::collections::HashMap<usize, f64>) -> Option<usize> {
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
}

/// The default equivalence margin for a validation split of `val_images` images (0: unknown):
/// 0.5 pp, or two images where that is larger, since a smaller difference is within the
/// accuracy's resolution.
pub fn default_margin(val_images: usize) -> f64 {
    let two_images = if val_images > 0 { 2.0 / val_images as f64 } else { 0.0 };
    two_images.max(0.005)
}

/// The effect per unit sd that a test with critical value `c` on `n` seeds finds with 80%
/// power: `(c + t(0.8, n - 1)) / sqrt(n)`.
fn mde(c: f64, n: usize) -> f64 {
    let df = n.saturating_sub(1).max(1) as f64;
    (c + t_upper_quantile(1.0 - POWER, df)) / (n as f64).sqrt()
}

/// The minimum detectable effect with 80% power of a two-sided t test at level `a` on `n`
/// paired seeds with standard deviation `sd`: `(t(n-1, 1 - a/2) + t(n-1, 0.8)) sd / sqrt(n)`
/// (docs/checklist-statistics.md, "Power").
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
            first: 4,
            max,
            round: 2,
            alpha: 0.05,
            margin: 0.005,
            comparisons: 14,
            critical: Vec::new(),
        }
    }

    #[test]
    fn looks_and_spending_add_up_to_alpha_and_nothing_is_spent_below_4_seeds() {
        let d = design(10);
        assert_eq!(d.looks(), vec![4, 6, 8, 10]);
        // A(t) = 0.05 t^3: 0.05 * 0.4^3 = 0.0032 at the first look.
        assert!((d.spending(0.4) - 0.0032).abs() < 1e-15, "{}", d.spending(0.4));
        let spent = d.spent();
        assert!((spent[0] - 0.0032).abs() < 1e-15);
        assert!((spent[1] - (d.spending(0.6) - d.spending(0.4))).abs() < 1e-15);
        let total: f64 = spent.iter().sum();
        assert!((total - 0.05).abs() < 1e-15, "{total}");
        // Looks at 3, 6, 9, 10 seeds: the 3-seed look spends nothing, the 6-seed look A(0.6).
        let three = Design {
            first: 3,
            round: 3,
            ..design(10)
        };
        let spent = three.spent();
        assert_eq!(spent[0], 0.0);
        assert!((spent[1] - three.spending(0.6)).abs() < 1e-15);
        // A one-look design at 3 seeds spends everything there.
        assert_eq!(Design { first: 3, ..design(3) }.spent(), vec![0.05]);
    }

    #[test]
    fn one_look_by_hand() {
        // 4 differences 0.02, 0.03, 0.04, 0.03: mean 0.03, sd 0.008165, se sd/2; one variant,
        // one look (max 4) spends all of alpha: helps/hurts interval 0.03 +- t(0.975, 3) se at
        // 95%, equivalence interval 0.03 +- t(0.95, 3) se at 90%.
        let d = Design {
            max: 4,
            comparisons: 1,
            ..design(4)
        };
        let x = vec![0.02, 0.03, 0.04, 0.03];
        let (out, pooled) = d.decide(std::slice::from_ref(&x), &[false], 1.0 / 1000.0);
        let se = sample_std(&x) / 2.0;
        let (lo, hi) = out[0].ci.unwrap();
        assert!(
            (lo - (0.03 - 3.182_446_3 * se)).abs() < 1e-7 && (hi - (0.03 + 3.182_446_3 * se)).abs() < 1e-7,
            "{lo} {hi}"
        );
        let (elo, _) = out[0].eq_ci.unwrap();
        assert!((elo - (0.03 - 2.353_363_4 * se)).abs() < 1e-7, "{elo}");
        assert!((out[0].ci_level.unwrap() - 0.95).abs() < 1e-9);
        assert!((out[0].eq_level.unwrap() - 0.90).abs() < 1e-12);
        assert_eq!(
            (out[0].verdict, out[0].size),
            (Verdict::Helps, Some(Size::AtLeastMargin))
        );
        assert_eq!(out[0].deciding(), Some(((lo, hi), out[0].ci_level.unwrap())));
        assert_eq!((out[0].seeds, out[0].look, out[0].needs), (4, 1, 0));
        // 80% power at 4 seeds: (t(0.975, 3) + t(0.8, 3)) sd / 2, t(0.8, 3) = 0.978472.
        assert!((pooled.unwrap() - sample_std(&x)).abs() < 1e-12);
        let want = (3.182_446_3 + 0.978_472) * sample_std(&x) / 2.0;
        assert!(
            (out[0].detectable.unwrap() - want).abs() < 1e-7,
            "{:?}",
            out[0].detectable
        );
    }

    /// Holm: a clear effect's rejection lowers the bar for the others at the same look; an arm
    /// that stops as equivalent frees nothing.
    #[test]
    fn a_rejection_frees_its_error_for_the_others_and_equivalence_frees_none() {
        let d = Design { first: 6, ..design(6) };
        let b = d.boundaries();
        let (c14, c13) = (b.0[0].critical(14).unwrap(), b.0[0].critical(13).unwrap());
        assert!(c13 < c14, "{c13} {c14}");
        // An arm with t between the two boundaries: open alone, helps beside a clear effect.
        let sd_pattern = [1.0, -1.0, 1.0, -1.0, 0.5, -0.5];
        let se = sample_std(&sd_pattern) / 6f64.sqrt();
        let t = 0.5 * (c13 + c14);
        let between: Vec<f64> = sd_pattern.iter().map(|x| (x + t * se) / 100.0).collect();
        let clear: Vec<f64> = sd_pattern.iter().map(|x| (x + 100.0) / 100.0).collect();
        let quiet = vec![0.0; 6];
        let (alone, _) = d.decide(&[between.clone(), quiet.clone()], &[false, false], 1e-6);
        assert_eq!(alone[0].verdict, Verdict::Undecided, "{:?}", alone[0]);
        assert_eq!(alone[1].verdict, Verdict::Equivalent);
        let (with, _) = d.decide(&[between, quiet, clear], &[false; 3], 1e-6);
        assert_eq!(with[2].verdict, Verdict::Helps);
        assert_eq!(with[0].verdict, Verdict::Helps, "{:?}", with[0]);
        let level = with[0].ci_level.unwrap();
        assert!((level - (1.0 - 2.0 * (1.0 - t_cdf(c13, 5.0)))).abs() < 1e-12, "{level}");
    }

    #[test]
    fn rounds_ask_for_seeds_until_decided_and_a_look_waits_for_every_open_arm() {
        let d = design(6);
        // Nothing run yet: every arm needs the first round.
        let (out, _) = d.decide(&[vec![], vec![]], &[false, false], 0.001);
        assert!(out.iter().all(|o| o.needs == 4 && o.verdict == Verdict::Incomplete));
        // One arm has its 4 seeds, the other 2: no look yet, both wait for 4.
        let (out, _) = d.decide(&[vec![0.0; 4], vec![0.0; 2]], &[false, false], 0.001);
        assert!(out.iter().all(|o| o.needs == 4 && o.look == 0), "{out:?}");
        // Noisy arms at 4 seeds: both need 6.
        let arms = [vec![0.01, -0.01, 0.004, 0.0], vec![0.01, -0.01, 0.004, 0.002]];
        let (out, _) = d.decide(&arms, &[false, false], 0.001);
        assert_eq!((out[0].verdict, out[0].needs, out[0].look), (Verdict::Incomplete, 6, 1));
        assert_eq!((out[1].verdict, out[1].needs), (Verdict::Incomplete, 6));
        // Tight differences: equivalent at the first look, which spends 0.05 (4/6)^3.
        let tight = vec![0.0, 0.0005, -0.0005, 0.0, 0.0005, -0.0005];
        let (out, _) = d.decide(&[tight], &[false], 0.001);
        assert_eq!((out[0].verdict, out[0].look), (Verdict::Equivalent, 1));
        assert_eq!(out[0].deciding().map(|(ci, _)| ci), out[0].eq_ci);
        // A stopped arm (diverged) takes no part, needs nothing, and does not hold up the look.
        let (out, _) = d.decide(&[vec![], vec![0.0; 6]], &[true, false], 0.001);
        assert_eq!((out[0].needs, out[1].verdict), (0, Verdict::Equivalent));
    }

    #[test]
    fn two_seeds_give_no_verdict_and_sizes_say_how_large() {
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
        // +0.2 pp, sd 0.01 pp, one look at 10 seeds: helps, the whole interval inside +-0.5 pp.
        let d = Design {
            first: 10,
            ..design(10)
        };
        let small: Vec<f64> = (0..10).map(|i| 0.002 + if i % 2 == 0 { 1e-4 } else { -1e-4 }).collect();
        let (out, _) = d.decide(&[small], &[false], 1e-5);
        assert_eq!((out[0].verdict, out[0].size), (Verdict::Helps, Some(Size::BelowMargin)));
        assert_eq!(Size::of((0.006, 0.01), 0.005), Size::AtLeastMargin);
        assert_eq!(Size::of((-0.02, -0.005), 0.005), Size::AtLeastMargin);
        assert_eq!(Size::of((0.001, 0.01), 0.005), Size::Unclear);
        assert_eq!(Size::of((-0.004, -0.001), 0.005), Size::BelowMargin);
    }

    #[test]
    fn power_figures_use_an_arms_own_sd_from_6_seeds_on() {
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
        // One look: the exact t quantile at alpha / 14.
        let want = detectable(sample_std(&quiet), 6, 0.05 / 14.0);
        assert!((out[0].detectable.unwrap() - want).abs() < 1e-9);
    }

    /// A tiny alpha passes validation; its levels lie far beyond `1 - p`'s float resolution and
    /// once made the t quantile panic after the first round (and every report after it).
    #[test]
    fn a_tiny_alpha_gives_finite_intervals_and_no_panic() {
        let d = Design {
            alpha: 1e-15,
            ..design(10)
        };
        let arms = vec![vec![0.01, 0.02, 0.015, 0.01], vec![0.0, 0.001, -0.001, 0.0]];
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

    #[test]
    fn a_design_made_from_a_recipe_carries_its_calibrated_table() {
        let cfg = ChecklistConfig {
            seeds: 4,
            max_seeds: 6,
            round_seeds: 2,
            ..Default::default()
        };
        let d = Design::new(&cfg, 0, 14);
        assert_eq!((d.critical.len(), d.critical[0].len()), (14, 2));
        let b = d.boundaries();
        assert_eq!(b.0[1].critical(14), d.critical[13][1]);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Design>(&json).unwrap(), d);
    }
}
