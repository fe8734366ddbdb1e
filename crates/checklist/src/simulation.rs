//! Simulated checklists, decided by the product's own [`Design::verdicts`], round by round as
//! `checklist::run` spends seeds: the error rates docs/checklist-statistics.md promises are
//! measured here, including where they are hardest to hold (every variant null, variants that
//! share the baseline's seed draw, one noisy variant, accuracies on a grid of 1/N with ties and
//! zero-variance differences, heavy tails). The unit tests run a bounded matrix;
//! `cargo run --release --example verdict_simulation` runs the long one in BENCHMARKS.md.
use super::sequential::{Boundaries, Decision, Design, Verdict};
use darkmagic_base::rng::Rng;

/// How the per-seed noise of an accuracy is drawn (unit variance before scaling).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tails {
    Normal,
    /// Student's t with 3 degrees of freedom, scaled to unit variance.
    StudentT3,
    /// Normal, and a variant's seed loses `loss` pp with probability `p` (a run that goes wrong
    /// now and then), shifted by `+p loss` so the mean stays at the effect: mean-zero noise
    /// that is not symmetric. The baseline's seeds stay normal.
    Skewed {
        p: f64,
        loss: f64,
    },
}

/// A population of checklists: true effects, noise and how accuracies are measured.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// Each variant's true effect on the accuracy, in pp.
    pub effects: Vec<f64>,
    /// Standard deviation of each variant's paired difference, in pp.
    pub noise: Vec<f64>,
    /// The share of a paired difference's variance that comes from the baseline's run of the
    /// seed (common to every variant, so their differences correlate by this much).
    pub shared: f64,
    pub tails: Tails,
    /// Accuracies are counts over this many validation images (multiples of 1/N), or
    /// continuous.
    pub val_images: Option<usize>,
}

impl Scenario {
    /// `effects` with the same noise `sd` (pp) for every variant: independent, normal,
    /// continuous.
    pub fn new(name: &str, effects: &[f64], sd: f64) -> Scenario {
        Scenario {
            name: name.into(),
            effects: effects.to_vec(),
            noise: vec![sd; effects.len()],
            shared: 0.0,
            tails: Tails::Normal,
            val_images: None,
        }
    }
}

/// What a batch of simulated checklists did.
#[derive(Clone, Debug, PartialEq)]
pub struct Rates {
    pub checklists: usize,
    /// Share of checklists with any false helps or hurts: a null variant called either, or a
    /// variant called the opposite of its effect's sign.
    pub any_false: f64,
    /// Variants with an effect of +1 pp or more called `helps` (None: no such variant).
    pub power: Option<f64>,
    /// Variants with an effect in [+0.5, +1) pp called `helps`.
    pub power_half: Option<f64>,
    /// Null variants called `equivalent`.
    pub null_equivalent: Option<f64>,
    /// Variants whose effect is exactly +-margin called `equivalent` (a false equivalence).
    pub margin_equivalent: Option<f64>,
    /// Mean seeds per variant.
    pub mean_seeds: f64,
    /// Each variant's share of checklists in which it was called `helps`.
    pub helps: Vec<f64>,
    /// Share of checklists that built a combined recipe (some variant helped).
    pub combined: f64,
    /// Share of checklists whose combined recipe was falsely confirmed on its fresh seeds
    /// (helps with a true effect at or below 0, or hurts with one at or above).
    pub combined_false: f64,
}

impl Rates {
    /// The Monte Carlo standard error of a rate `p` over `n` trials.
    pub fn se(p: f64, n: usize) -> f64 {
        (p * (1.0 - p) / n as f64).sqrt()
    }
}

/// One seed's noise of unit variance (the normal and t parts of every model).
fn draw(rng: &mut Rng, tails: Tails) -> f64 {
    match tails {
        Tails::Normal | Tails::Skewed { .. } => rng.normal(),
        Tails::StudentT3 => {
            // t = Z / sqrt(chi2_3 / 3), variance 3; chi2_3 = 2 Gamma(3/2).
            let chi2 = 2.0 * rng.gamma(1.5);
            rng.normal() / (chi2 / 3.0).sqrt() / 3f64.sqrt()
        }
    }
}

/// A variant's occasional loss under [`Tails::Skewed`], in pp, mean zero; 0 otherwise.
fn mishap(rng: &mut Rng, tails: Tails) -> f64 {
    match tails {
        Tails::Skewed { p, loss } => p * loss - if rng.uniform() < p { loss } else { 0.0 },
        _ => 0.0,
    }
}

/// The accuracies of one checklist, every seed drawn up front: the baseline's, then each
/// variant's, as fractions (rounded to 1/N when the scenario counts images).
fn accuracies(sc: &Scenario, max: usize, rng: &mut Rng) -> (Vec<f64>, Vec<Vec<f64>>) {
    let common = sc.noise.iter().copied().fold(f64::INFINITY, f64::min);
    let round = |x: f64| sc.val_images.map_or(x, |n| (x * n as f64).round() / n as f64);
    let shared_sd = (sc.shared * common * common).sqrt();
    let base: Vec<f64> = (0..max)
        .map(|_| round(0.9 + shared_sd * draw(rng, sc.tails) / 100.0))
        .collect();
    let variants = sc
        .effects
        .iter()
        .zip(&sc.noise)
        .map(|(e, sd)| {
            let own = (sd * sd - shared_sd * shared_sd).max(0.0).sqrt();
            (0..max)
                .map(|_| {
                    let noise = own * draw(rng, sc.tails) + mishap(rng, sc.tails);
                    round(0.9 + (e + noise) / 100.0)
                })
                .collect()
        })
        .collect();
    (base, variants)
}

/// The power of `design` to call a variant helps at `+margin` and at `+2 margin`, the other
/// variants null, at paired noise `sd` pp (normal): what the dry run plans with.
pub fn planned_power(design: &Design, sd: f64, checklists: usize) -> (f64, f64) {
    let margin = 100.0 * design.margin;
    let mut effects = vec![0.0; design.comparisons.max(2)];
    (effects[0], effects[1]) = (margin, 2.0 * margin);
    let r = run(design, &Scenario::new("planned", &effects, sd), checklists, 11);
    (r.helps[0], r.helps[1])
}

/// Runs `checklists` simulated checklists of `sc` under `design`, seeded by `seed`.
pub fn run(design: &Design, sc: &Scenario, checklists: usize, seed: u64) -> Rates {
    let bounds = design.boundaries();
    let k = sc.effects.len();
    let resolution = sc.val_images.map_or(0.0, |n| 1.0 / n as f64);
    let margin_pp = 100.0 * design.margin;
    let (mut any_false, mut seeds) = (0usize, 0usize);
    // (hits, variants): power at +1 pp, at +0.5 pp, null equivalent, margin equivalent
    let mut counts = [(0usize, 0usize); 4];
    let mut helps = vec![0usize; k];
    let confirm = Design {
        comparisons: 1,
        ..design.clone()
    };
    let confirm_bounds = confirm.boundaries();
    let mut combined = (0usize, 0usize); // (checklists with a combined recipe, falsely confirmed)
    for r in 0..checklists {
        let mut rng = Rng::keyed(seed, r as u64, k as u64);
        let (base, variants) = accuracies(sc, design.max, &mut rng);
        let decisions = replay(design, &bounds, &base, &variants, resolution);
        any_false += usize::from(sc.effects.iter().zip(&decisions).any(|(&e, d)| wrong(e, d.verdict)));
        // The combined recipe: every variant called helps (each its own factor here), its true
        // effect the sum of theirs (the article's additivity), confirmed on fresh seeds as one
        // comparison, as `checklist::run` does.
        let winners: Vec<f64> = sc
            .effects
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| d.verdict == Verdict::Helps)
            .map(|(e, _)| *e)
            .collect();
        if !winners.is_empty() {
            let effect: f64 = winners.iter().sum();
            let fresh = Scenario {
                effects: vec![effect],
                noise: vec![sc.noise.iter().copied().fold(f64::INFINITY, f64::min)],
                ..sc.clone()
            };
            let (cbase, cvar) = accuracies(&fresh, design.max, &mut rng);
            let verdict = replay(&confirm, &confirm_bounds, &cbase, &cvar, resolution)[0].verdict;
            combined.0 += 1;
            combined.1 += usize::from(wrong(effect, verdict));
        }
        for (h, d) in helps.iter_mut().zip(&decisions) {
            *h += usize::from(d.verdict == Verdict::Helps);
        }
        seeds += decisions.iter().map(|d| d.seeds).sum::<usize>();
        for (&e, d) in sc.effects.iter().zip(&decisions) {
            let groups = [
                (e >= 1.0, Verdict::Helps),
                ((0.5..1.0).contains(&e), Verdict::Helps),
                (e == 0.0, Verdict::Equivalent),
                ((e.abs() - margin_pp).abs() < 1e-9, Verdict::Equivalent),
            ];
            for (c, (member, verdict)) in counts.iter_mut().zip(groups) {
                if member {
                    *c = (c.0 + usize::from(d.verdict == verdict), c.1 + 1);
                }
            }
        }
    }
    let rate = |(hits, n): (usize, usize)| (n > 0).then(|| hits as f64 / n as f64);
    Rates {
        checklists,
        any_false: any_false as f64 / checklists as f64,
        power: rate(counts[0]),
        power_half: rate(counts[1]),
        null_equivalent: rate(counts[2]),
        margin_equivalent: rate(counts[3]),
        mean_seeds: seeds as f64 / (checklists * k) as f64,
        helps: helps.iter().map(|&h| h as f64 / checklists as f64).collect(),
        combined: combined.0 as f64 / checklists as f64,
        combined_false: combined.1 as f64 / checklists as f64,
    }
}

/// A false claim: helps for an effect at or below 0, hurts for one at or above.
fn wrong(effect: f64, v: Verdict) -> bool {
    match v {
        Verdict::Helps => effect <= 0.0,
        Verdict::Hurts => effect >= 0.0,
        _ => false,
    }
}

/// The looks of one checklist, round by round as `checklist::run` spends seeds: each arm's
/// paired differences against `base` on as many seeds as the design has asked for so far.
fn replay(design: &Design, bounds: &Boundaries, base: &[f64], variants: &[Vec<f64>], resolution: f64) -> Vec<Decision> {
    let k = variants.len();
    let mut have = vec![0usize; k];
    loop {
        let diffs: Vec<Vec<f64>> = variants
            .iter()
            .zip(&have)
            .map(|(v, &h)| (0..h).map(|s| v[s] - base[s]).collect())
            .collect();
        let out = design.verdicts(bounds, &diffs, &vec![false; k], resolution);
        if out.iter().all(|d| d.needs == 0) {
            return out;
        }
        for (h, d) in have.iter_mut().zip(&out) {
            *h = (*h).max(d.needs);
        }
    }
}

fn scaled(effects: &[f64], by: f64) -> Vec<f64> {
    effects.iter().map(|e| e * by).collect()
}

/// The matrix of hard cases (docs/checklist-statistics.md): 14 variants, margin 0.5 pp, noise
/// `sd` pp. The guarantee is claimed for the symmetric cells ([`Scenario::symmetric`]); the
/// skewed ones measure where it stops holding.
pub fn matrix(sd: f64) -> Vec<Scenario> {
    let null = vec![0.0; 14];
    let mut mixed = vec![1.0, 1.0, -1.0, -1.0, 0.25, 0.25, -0.25, -0.25];
    mixed.extend([0.0; 6]);
    let mut powered = vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5];
    powered.extend([0.0; 8]);
    let mut at_margin = vec![0.5, 0.5, -0.5, -0.5];
    at_margin.extend([0.0; 10]);
    let with = |name: &str, effects: &[f64], f: &dyn Fn(&mut Scenario)| {
        let mut s = Scenario::new(name, effects, sd);
        f(&mut s);
        s
    };
    let skewed = |p: f64, loss: f64| {
        with(
            &format!("all null, skewed (a seed loses {loss} pp with p {p})"),
            &null,
            &|s| s.tails = Tails::Skewed { p, loss },
        )
    };
    vec![
        with("all null", &null, &|_| {}),
        with("mixed", &mixed, &|_| {}),
        with("+1 and +0.5 pp", &powered, &|_| {}),
        with("at the margin", &at_margin, &|_| {}),
        with("all null, shared baseline (rho 0.5)", &null, &|s| s.shared = 0.5),
        with("all null, one variant 5x noisier", &null, &|s| s.noise[0] = 5.0 * sd),
        with("all null, rho 0.5 and one variant 5x noisier", &null, &|s| {
            s.shared = 0.5;
            s.noise[0] = 5.0 * sd;
        }),
        with("all null, 179 images", &null, &|s| s.val_images = Some(179)),
        with("all null, 500 images", &null, &|s| s.val_images = Some(500)),
        with("all null, 10,000 images", &null, &|s| s.val_images = Some(10_000)),
        with("all null, t (3 df)", &null, &|s| s.tails = Tails::StudentT3),
        with("at the margin, t (3 df)", &at_margin, &|s| s.tails = Tails::StudentT3),
        // On 179 images the default margin is two images, 200/179 pp.
        with(
            "at the margin, 179 images",
            &scaled(&at_margin, 200.0 / 179.0 / 0.5),
            &|s| s.val_images = Some(179),
        ),
        skewed(0.05, 1.0),
        skewed(0.1, 2.0),
        skewed(0.2, 4.0),
    ]
}

/// The share of `reps` draws of `n` paired seeds whose Student-t interval at `level` (sd
/// floored at the resolution, as `analysis::combined_test` computes it) holds the true
/// difference, 0: both recipes' accuracies drawn around 90% with paired noise `sd` pp shaped
/// by `tails` (the second recipe's seeds take the skewed mishaps), rounded to 1/`images`
/// where given. The coverage behind the report's test-split interval.
pub fn t_interval_coverage(tails: Tails, sd: f64, images: Option<usize>, n: usize, level: f64, reps: usize) -> f64 {
    let mut rng = Rng::keyed(11, n as u64, images.unwrap_or(0) as u64);
    let round = |x: f64| images.map_or(x, |m| (x * m as f64).round() / m as f64);
    let arm = sd / 2f64.sqrt();
    let resolution = images.map_or(0.0, |m| 1.0 / m as f64);
    let held = (0..reps)
        .filter(|_| {
            let diffs: Vec<f64> = (0..n)
                .map(|_| {
                    let base = round(0.9 + arm * draw(&mut rng, tails) / 100.0);
                    let noise = arm * draw(&mut rng, tails) + mishap(&mut rng, tails);
                    round(0.9 + noise / 100.0) - base
                })
                .collect();
            darkmagic_base::stats::t_interval(&diffs, level, resolution).is_some_and(|(lo, hi)| lo <= 0.0 && hi >= 0.0)
        })
        .count();
    held as f64 / reps as f64
}

impl Scenario {
    /// Whether the seed noise is symmetric about the effect: the cells the guarantee covers.
    pub fn symmetric(&self) -> bool {
        !matches!(self.tails, Tails::Skewed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product's design for `sc` (`Design::new`): the default first look at 4 seeds, +2
    /// per round up to `max`, alpha 0.05, the default margin (0.5 pp, or two images on 179
    /// validation images).
    fn design(sc: &Scenario, max: usize) -> Design {
        let cfg = darkmagic_base::recipe::ChecklistConfig {
            max_seeds: max,
            margin: None,
            ..Default::default()
        };
        Design::new(&cfg, sc.val_images.unwrap_or(0), sc.effects.len())
    }

    /// The guard: every cell of the matrix at the paired noise of the Fashion-MNIST checklist
    /// (0.27 pp) and at 0.5 pp, under the default design and one to 10 seeds, 4,000 checklists
    /// a cell. Family-wise false helps/hurts within alpha + 2 Monte Carlo standard errors in
    /// every symmetric cell; false equivalence at the margin within alpha + 2 SE per variant;
    /// power at +1 pp >= 0.90 under the default design at 0.27 pp.
    #[test]
    fn the_guarantees_hold_in_every_cell_of_the_matrix() {
        const N: usize = 4000;
        let bound = |p: f64, n: usize| 0.05 + 2.0 * Rates::se(0.05, n).max(Rates::se(p, n));
        let default_max = darkmagic_base::recipe::ChecklistConfig::default().max_seeds;
        for max in [default_max, 10] {
            for sd in [0.27, 0.5] {
                for sc in matrix(sd).iter().filter(|sc| sc.symmetric()) {
                    let r = run(&design(sc, max), sc, N, 7);
                    eprintln!("max {max:>2} sd {sd} | {:<45} | {r:?}", sc.name);
                    assert!(
                        r.any_false <= bound(r.any_false, N),
                        "max {max}, sd {sd}, {}: FWER {}",
                        sc.name,
                        r.any_false
                    );
                    assert!(
                        r.combined_false <= bound(r.combined_false, N),
                        "{}: combined {}",
                        sc.name,
                        r.combined_false
                    );
                    if let Some(m) = r.margin_equivalent {
                        let n = N * 4;
                        assert!(m <= bound(m, n), "max {max}, {}: false equivalence {m}", sc.name);
                    }
                    if max == default_max && sd == 0.27 && sc.name == "+1 and +0.5 pp" {
                        let p = r.power.expect("+1 pp variants");
                        assert!(p >= 0.90, "power at +1 pp {p}");
                    }
                }
            }
        }
    }

    /// Skewed mean-zero noise breaks the t interval's premise: the rate is measured and shown
    /// (docs/checklist-statistics.md), and it is worse than alpha, which this test pins so that
    /// the docs cannot silently go stale.
    #[test]
    fn skewed_noise_is_outside_the_guarantee_and_measured() {
        let sc = &matrix(0.27)[matrix(0.27).len() - 2];
        assert!(!sc.symmetric());
        let r = run(&design(sc, 6), sc, 2000, 7);
        assert!(r.any_false > 0.05 + 2.0 * Rates::se(0.05, 2000), "{r:?}");
    }

    /// The report's test-split interval (95%) holds its level in the symmetric hard cases, 2
    /// to 6 seeds: normal and t (3 df) noise, accuracies on grids of 179 and 2,000 images
    /// (ties, differences of s = 0) at the Fashion-MNIST checklist's noise. Skewed noise is
    /// measured, outside the claim, and pinned so the docs cannot go stale.
    #[test]
    fn the_test_split_interval_holds_its_level() {
        let reps = 20_000;
        let floor = 0.95 - 2.0 * Rates::se(0.95, reps);
        for n in [2, 3, 4, 6] {
            for (tails, sd, images) in [
                (Tails::Normal, 1.0, None),
                (Tails::StudentT3, 1.0, None),
                (Tails::Normal, 0.27, Some(179)),
                (Tails::Normal, 0.27, Some(2000)),
                (Tails::StudentT3, 0.27, Some(2000)),
            ] {
                let c = t_interval_coverage(tails, sd, images, n, 0.95, reps);
                assert!(c >= floor, "{tails:?} sd {sd} images {images:?} n {n}: coverage {c}");
            }
        }
        let skewed = t_interval_coverage(Tails::Skewed { p: 0.2, loss: 4.0 }, 0.27, None, 4, 0.95, reps);
        assert!(skewed < floor, "skewed coverage {skewed}");
    }

    #[test]
    fn student_t3_draws_have_unit_variance_and_heavy_tails() {
        let mut rng = Rng::keyed(1, 2, 3);
        let x: Vec<f64> = (0..200_000).map(|_| draw(&mut rng, Tails::StudentT3)).collect();
        let var = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        // The t3 variance estimator converges slowly (infinite fourth moment): a loose check.
        assert!((var - 1.0).abs() < 0.15, "variance {var}");
        // |draw| > 3 is |t3| > 3 sqrt(3); the t3 CDF in closed form, F(t) = 1/2 + (u / (1 + u^2)
        // + atan(u)) / pi with u = t / sqrt(3), gives 2 (1 - F) = 1 - (0.3 + atan 3) 2 / pi =
        // 0.01386, where a normal would give 0.0027.
        let far = x.iter().filter(|v| v.abs() > 3.0).count() as f64 / x.len() as f64;
        let want = 1.0 - 2.0 * (0.3 + 3f64.atan()) / std::f64::consts::PI;
        assert!((far - want).abs() < 0.0015, "{far} vs {want}");
    }
}
