//! Sequential seeds: the checklist runs in rounds, and after each round (a *look*) every variant
//! still undecided is tested; decided variants stop, the others get the next round of seeds.
//! Which trials run next is a pure function of the results so far, so a killed checklist resumes
//! from its run dirs and every executor works unchanged. The method and its simulated error
//! rates are in docs/checklist-statistics.md.
//!
//! Looks are at `seeds`, `seeds + round_seeds`, ... seeds, capped at `max_seeds`. At look `l`
//! with `n_l` seeds, of `L` looks:
//! - **helps / hurts**: the paired t interval of the mean difference at level
//!   `1 - alpha_l / m_l` (two-sided), where `m_l` is the number of variants still undecided at
//!   that look (Bonferroni over them, Holm's first step) and `alpha_l = alpha n_l^2 / sum n_j^2`
//!   is the share of `alpha` spent at that look. By the union bound over looks and Bonferroni
//!   within each, the probability of any false helps or hurts among all variants and looks is at
//!   most `alpha` (family-wise, strong control).
//! - **equivalent**: Schuirmann's two one-sided tests at level `alpha` each look (the `1 - 2
//!   alpha` interval lies inside `+-margin`); an equivalence claim is a per-variant claim.
//! - **undecided**: no decision at the last look (`max_seeds`).
//!
//! Standard deviations are floored at the accuracy's resolution (1 / validation images; for an
//! external trainer, whose validation-set size is unknown, the smallest difference between two
//! observed metric values), so that a few identical differences do not read as a certain effect.
use super::analysis::{Verdict, mean, sample_std};
use crate::recipe::ChecklistConfig;
use crate::stats::t_quantile;
use serde::{Deserialize, Serialize};

/// How the seeds of a checklist are spent and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// Seeds of the first round.
    pub first: usize,
    /// The most seeds any arm gets.
    pub max: usize,
    /// Seeds added by each later round.
    pub round: usize,
    /// Family-wise error of helps/hurts claims, and the level of each equivalence test.
    pub alpha: f64,
    /// Equivalence margin, as a fraction (0.005 = 0.5 pp).
    pub margin: f64,
}

/// One arm's standing after the looks its results allow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Helps, hurts, equivalent, undecided (last look passed), or incomplete (waiting for seeds).
    pub verdict: Verdict,
    /// Seeds the last evaluated look used (0 before the first look).
    pub seeds: usize,
    /// The last look evaluated, 1-based (0 before the first).
    pub look: usize,
    /// The corrected interval of the mean difference at that look.
    pub ci: Option<(f64, f64)>,
    /// The equivalence (TOST) interval at that look.
    pub eq_ci: Option<(f64, f64)>,
    /// The smallest effect the corrected interval could have called at the observed noise
    /// (its half-width).
    pub detectable: Option<f64>,
    /// Seeds a decision would need if the observed mean and noise held (None: more than 1000).
    pub seeds_needed: Option<usize>,
    /// Seeds the next round needs for this arm (0 when decided or done).
    pub needs: usize,
}

/// The test of one arm at one look.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Test {
    mean: f64,
    half: f64,
    eq_half: f64,
}

impl Design {
    /// The design of a `[checklist]` section for a validation split of `val_images` images
    /// (0 if unknown): the default margin is 0.5 pp or two validation images, whichever is
    /// larger, since a smaller difference is within the accuracy's resolution.
    pub fn new(cfg: &ChecklistConfig, val_images: usize) -> Design {
        let two_images = if val_images > 0 { 2.0 / val_images as f64 } else { 0.0 };
        Design {
            first: cfg.seeds,
            max: cfg.max_seeds.max(cfg.seeds),
            round: cfg.round_seeds,
            alpha: cfg.alpha,
            margin: cfg.margin.map_or(two_images.max(0.005), |pp| pp / 100.0),
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

    /// The share of `alpha` spent at look `l` (0-based): `alpha n_l^2 / sum_j n_j^2`.
    pub fn alpha_at(&self, l: usize) -> f64 {
        let looks = self.looks();
        let total: f64 = looks.iter().map(|&n| (n * n) as f64).sum();
        self.alpha * (looks[l] * looks[l]) as f64 / total
    }

    /// Tests `diffs` (their first `n` values) at look `l` with `m` variants undecided.
    fn test(&self, diffs: &[f64], l: usize, m: usize, resolution: f64) -> Option<Test> {
        let n = diffs.len();
        if n < 2 {
            return None;
        }
        let se = sample_std(diffs).max(resolution) / (n as f64).sqrt();
        let df = (n - 1) as f64;
        let c = t_quantile(1.0 - self.alpha_at(l) / (2.0 * m as f64), df);
        let ce = t_quantile(1.0 - self.alpha, df);
        Some(Test {
            mean: mean(diffs),
            half: c * se,
            eq_half: ce * se,
        })
    }

    fn verdict(&self, t: &Test) -> Option<Verdict> {
        if t.mean - t.half > 0.0 {
            Some(Verdict::Helps)
        } else if t.mean + t.half < 0.0 {
            Some(Verdict::Hurts)
        } else if t.mean.abs() + t.eq_half < self.margin {
            Some(Verdict::Equivalent)
        } else {
            None
        }
    }

    /// The fewest seeds (up to 1000) at which the final look would decide, if the observed mean
    /// and standard deviation held.
    fn seeds_needed(&self, diffs: &[f64], m: usize, resolution: f64) -> Option<usize> {
        let (d, s) = (mean(diffs).abs(), sample_std(diffs).max(resolution));
        let l = self.looks().len() - 1;
        (diffs.len().max(2)..=1000).find(|&n| {
            let se = s / (n as f64).sqrt();
            let df = (n - 1) as f64;
            let c = t_quantile(1.0 - self.alpha_at(l) / (2.0 * m as f64), df);
            d > c * se || d + t_quantile(1.0 - self.alpha, df) * se < self.margin
        })
    }

    /// Replays the looks over the arms' paired differences (each in seed order, as many as have
    /// finished) and returns each arm's decision. `stopped[k]` marks an arm that ended otherwise
    /// (a diverged or failed seed): it takes no part in the looks.
    pub fn decide(&self, arms: &[Vec<f64>], stopped: &[bool], resolution: f64) -> Vec<Decision> {
        let looks = self.looks();
        let blank = Decision {
            verdict: Verdict::Incomplete,
            seeds: 0,
            look: 0,
            ci: None,
            eq_ci: None,
            detectable: None,
            seeds_needed: None,
            needs: looks[0],
        };
        let mut out: Vec<Decision> = arms.iter().map(|_| blank.clone()).collect();
        let mut open: Vec<usize> = (0..arms.len()).filter(|&k| !stopped[k]).collect();
        for k in (0..arms.len()).filter(|&k| stopped[k]) {
            out[k].needs = 0;
        }
        for (l, &n) in looks.iter().enumerate() {
            let m = open.len();
            if m == 0 || open.iter().any(|&k| arms[k].len() < n) {
                for &k in &open {
                    out[k].needs = n;
                }
                return out;
            }
            let last = l + 1 == looks.len();
            let mut still = Vec::new();
            for &k in &open {
                let diffs = &arms[k][..n];
                let d = &mut out[k];
                let t = self.test(diffs, l, m, resolution);
                (d.seeds, d.look, d.needs) = (n, l + 1, 0);
                d.ci = t.map(|t| (t.mean - t.half, t.mean + t.half));
                d.eq_ci = t.map(|t| (t.mean - t.eq_half, t.mean + t.eq_half));
                d.detectable = t.map(|t| t.half);
                match t.and_then(|t| self.verdict(&t)) {
                    Some(v) => d.verdict = v,
                    None if last => {
                        d.verdict = Verdict::Undecided;
                        d.seeds_needed = self.seeds_needed(diffs, m, resolution);
                    }
                    None => {
                        d.needs = looks[l + 1];
                        still.push(k);
                    }
                }
            }
            open = still;
        }
        out
    }

    /// Seeds the baseline needs: as many as the arm that needs the most (paired differences).
    pub fn baseline_needs(decisions: &[Decision]) -> usize {
        decisions.iter().map(|d| d.needs).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn design(max: usize) -> Design {
        Design {
            first: 3,
            max,
            round: 3,
            alpha: 0.05,
            margin: 0.005,
        }
    }

    #[test]
    fn looks_and_spending() {
        let d = design(10);
        assert_eq!(d.looks(), vec![3, 6, 9, 10]);
        assert_eq!(design(3).looks(), vec![3]);
        // alpha n^2 / (9 + 36 + 81 + 100)
        assert!((d.alpha_at(0) - 0.05 * 9.0 / 226.0).abs() < 1e-15);
        let total: f64 = (0..4).map(|l| d.alpha_at(l)).sum();
        assert!((total - 0.05).abs() < 1e-15);
    }

    #[test]
    fn one_look_by_hand() {
        // 3 differences of 0.02, 0.03, 0.04 (fractions): mean 0.03, sd 0.01, se 0.01/sqrt(3);
        // one variant, one look (max 3): alpha = 0.05, interval 0.03 +- t(0.975, 2) se.
        let d = Design { max: 3, ..design(3) };
        let out = d.decide(&[vec![0.02, 0.03, 0.04]], &[false], 1.0 / 1000.0);
        let half = 4.302_652_7 * 0.01 / 3f64.sqrt();
        let (lo, hi) = out[0].ci.unwrap();
        assert!(
            (lo - (0.03 - half)).abs() < 1e-6 && (hi - (0.03 + half)).abs() < 1e-6,
            "{lo} {hi}"
        );
        assert_eq!(out[0].verdict, Verdict::Helps);
        assert_eq!((out[0].seeds, out[0].look, out[0].needs), (3, 1, 0));
    }

    #[test]
    fn rounds_ask_for_seeds_until_decided() {
        let d = design(10);
        // Nothing run yet: every arm needs the first round.
        let out = d.decide(&[vec![], vec![]], &[false, false], 0.001);
        assert!(out.iter().all(|o| o.needs == 3 && o.verdict == Verdict::Incomplete));
        // Arm 0 clearly equivalent at 3 seeds; arm 1 noisy: needs 6; the baseline needs 6.
        let arms = [vec![0.0, 0.0005, -0.0005], vec![0.01, -0.01, 0.004]];
        let out = d.decide(&arms, &[false, false], 0.001);
        assert_eq!(out[0].verdict, Verdict::Equivalent);
        assert_eq!((out[1].verdict, out[1].needs), (Verdict::Incomplete, 6));
        assert_eq!(Design::baseline_needs(&out), 6);
        // A stopped arm (diverged) takes no part and needs nothing.
        let out = d.decide(&[vec![], vec![0.0; 3]], &[true, false], 0.001);
        assert_eq!((out[0].needs, out[1].verdict), (0, Verdict::Equivalent));
    }

    /// One simulated checklist: variants with `effects` (pp), paired differences with per-seed
    /// noise 0.5 pp, run round by round as the checklist does (each arm sees only the seeds it
    /// asked for); returns the decisions.
    fn simulate(d: &Design, effects: &[f64], run: usize) -> Vec<Decision> {
        let mut rng = Rng::keyed(2026, run as u64, effects.len() as u64);
        let arms: Vec<Vec<f64>> = effects
            .iter()
            .map(|e| (0..d.max).map(|_| (e + 0.5 * rng.normal()) / 100.0).collect())
            .collect();
        let mut have = vec![0usize; effects.len()];
        loop {
            let view: Vec<Vec<f64>> = arms.iter().zip(&have).map(|(a, &h)| a[..h].to_vec()).collect();
            let out = d.decide(&view, &vec![false; effects.len()], 0.0);
            if out.iter().all(|o| o.needs == 0) {
                return out;
            }
            for (h, o) in have.iter_mut().zip(&out) {
                *h = (*h).max(o.needs);
            }
        }
    }

    /// Simulated checklists: 14 variants with effects +-1, +-0.25 and 0 pp, paired differences
    /// with per-seed noise 0.5 pp, seeds 3 then +3 up to 10, margin 0.5 pp. Prints the figures
    /// docs/checklist-statistics.md quotes: `cargo test --release --lib simulated -- --nocapture`.
    #[test]
    fn simulated_checklists_meet_the_error_and_power_targets() {
        const RUNS: usize = 2000;
        let effects = [
            1.0, 1.0, -1.0, -1.0, 0.25, 0.25, -0.25, -0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let d = design(10);
        let (mut any_false, mut helps_1, mut equiv_0, mut seeds) = (0, 0, 0, 0usize);
        let mut runs = 0usize;
        for r in 0..RUNS {
            let out = simulate(&d, &effects, r);
            let null = |k: usize| effects[k] == 0.0;
            any_false +=
                usize::from((0..14).any(|k| null(k) && matches!(out[k].verdict, Verdict::Helps | Verdict::Hurts)));
            helps_1 += (0..14)
                .filter(|&k| effects[k] == 1.0 && out[k].verdict == Verdict::Helps)
                .count();
            equiv_0 += (0..14)
                .filter(|&k| null(k) && out[k].verdict == Verdict::Equivalent)
                .count();
            seeds += out.iter().map(|o| o.seeds).sum::<usize>();
            runs += out.iter().map(|o| o.seeds).sum::<usize>() + out.iter().map(|o| o.seeds).max().unwrap_or(0);
        }
        let fwer = any_false as f64 / RUNS as f64;
        let power = helps_1 as f64 / (2 * RUNS) as f64;
        let equivalent = equiv_0 as f64 / (6 * RUNS) as f64;
        let mean_seeds = seeds as f64 / (14 * RUNS) as f64;
        let compute = runs as f64 / (15 * 10 * RUNS) as f64;
        eprintln!(
            "{RUNS} simulated checklists: family-wise false helps/hurts {fwer:.4}; +1 pp called helps {power:.4}; \
             null called equivalent {equivalent:.4}; mean seeds per variant {mean_seeds:.2}; training runs {compute:.3} of a fixed 10-seed checklist"
        );
        // The worst case for a false equivalence: true effects exactly at the margin.
        let at_margin = [0.5, 0.5, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let false_equivalent = (0..RUNS / 2)
            .map(|r| {
                let out = simulate(&d, &at_margin, r);
                (0..4).filter(|&k| out[k].verdict == Verdict::Equivalent).count()
            })
            .sum::<usize>() as f64
            / (4 * RUNS / 2) as f64;
        eprintln!("variants at exactly +-margin called equivalent: {false_equivalent:.4}");
        assert!(fwer <= 0.05, "family-wise error {fwer}");
        assert!(power >= 0.90, "power at +1 pp {power}");
        assert!(equivalent >= 0.80, "null variants equivalent {equivalent}");
    }
}
