//! Simulated checklists, decided by the product's own [`Design::decide_with`], round by round as
//! `checklist::run` spends seeds: the error rates docs/checklist-statistics.md promises are
//! measured here, including where they are hardest to hold (every variant null, variants that
//! share the baseline's seed draw, one noisy variant, accuracies on a grid of 1/N with ties and
//! zero-variance differences, heavy tails). The unit tests run a bounded matrix;
//! `cargo run --release --example verdict_simulation` runs the long one in BENCHMARKS.md.
use super::sequential::{Design, Verdict};
use crate::rng::Rng;

/// How the per-seed noise of an accuracy is drawn (unit variance before scaling).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tails {
    Normal,
    /// Student's t with 3 degrees of freedom, scaled to unit variance.
    StudentT3,
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
    /// Null variants called `equivalent`.
    pub null_equivalent: Option<f64>,
    /// Variants whose effect is exactly +-margin called `equivalent` (a false equivalence).
    pub margin_equivalent: Option<f64>,
    /// Mean seeds per variant.
    pub mean_seeds: f64,
}

impl Rates {
    /// The Monte Carlo standard error of a rate `p` over `n` trials.
    pub fn se(p: f64, n: usize) -> f64 {
        (p * (1.0 - p) / n as f64).sqrt()
    }
}

/// One seed's noise of unit variance.
fn draw(rng: &mut Rng, tails: Tails) -> f64 {
    match tails {
        Tails::Normal => rng.normal(),
        Tails::StudentT3 => {
            // t = Z / sqrt(chi2_3 / 3), variance 3; chi2_3 = 2 Gamma(3/2).
            let chi2 = 2.0 * rng.gamma(1.5);
            rng.normal() / (chi2 / 3.0).sqrt() / 3f64.sqrt()
        }
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
                .map(|_| round(0.9 + (e + own * draw(rng, sc.tails)) / 100.0))
                .collect()
        })
        .collect();
    (base, variants)
}

/// Runs `checklists` simulated checklists of `sc` under `design`, seeded by `seed`.
pub fn run(design: &Design, sc: &Scenario, checklists: usize, seed: u64) -> Rates {
    let bounds = design.boundaries();
    let k = sc.effects.len();
    let resolution = sc.val_images.map_or(0.0, |n| 1.0 / n as f64);
    let margin_pp = 100.0 * design.margin;
    let (mut any_false, mut seeds) = (0usize, 0usize);
    let mut counts = [(0usize, 0usize); 3]; // (hits, variants): power, null equivalent, margin equivalent
    for r in 0..checklists {
        let mut rng = Rng::keyed(seed, r as u64, k as u64);
        let (base, variants) = accuracies(sc, design.max, &mut rng);
        let mut have = vec![0usize; k];
        let decisions = loop {
            let diffs: Vec<Vec<f64>> = variants
                .iter()
                .zip(&have)
                .map(|(v, &h)| (0..h).map(|s| v[s] - base[s]).collect())
                .collect();
            let (out, _) = design.decide_with(&bounds, &diffs, &vec![false; k], resolution);
            if out.iter().all(|d| d.needs == 0) {
                break out;
            }
            for (h, d) in have.iter_mut().zip(&out) {
                *h = (*h).max(d.needs);
            }
        };
        let wrong = |e: f64, v: Verdict| match v {
            Verdict::Helps => e <= 0.0,
            Verdict::Hurts => e >= 0.0,
            _ => false,
        };
        any_false += usize::from(sc.effects.iter().zip(&decisions).any(|(&e, d)| wrong(e, d.verdict)));
        seeds += decisions.iter().map(|d| d.seeds).sum::<usize>();
        for (&e, d) in sc.effects.iter().zip(&decisions) {
            let groups = [
                (e >= 1.0, Verdict::Helps),
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
        null_equivalent: rate(counts[1]),
        margin_equivalent: rate(counts[2]),
        mean_seeds: seeds as f64 / (checklists * k) as f64,
    }
}

fn scaled(effects: &[f64], by: f64) -> Vec<f64> {
    effects.iter().map(|e| e * by).collect()
}

/// The matrix of hard cases (docs/checklist-statistics.md), for a design with `first`, `max`
/// seeds: 14 variants, margin 0.5 pp, noise `sd` pp.
pub fn matrix(sd: f64) -> Vec<Scenario> {
    let null = vec![0.0; 14];
    let mut mixed = vec![1.0, 1.0, -1.0, -1.0, 0.25, 0.25, -0.25, -0.25];
    mixed.extend([0.0; 6]);
    let mut at_margin = vec![0.5, 0.5, -0.5, -0.5];
    at_margin.extend([0.0; 10]);
    let with = |name: &str, effects: &[f64], f: &dyn Fn(&mut Scenario)| {
        let mut s = Scenario::new(name, effects, sd);
        f(&mut s);
        s
    };
    vec![
        with("all null", &null, &|_| {}),
        with("mixed", &mixed, &|_| {}),
        with("at the margin", &at_margin, &|_| {}),
        with("all null, shared baseline (rho 0.5)", &null, &|s| s.shared = 0.5),
        with("all null, one variant 5x noisier", &null, &|s| s.noise[0] = 5.0 * sd),
        with("all null, 179 images", &null, &|s| s.val_images = Some(179)),
        with("all null, 10,000 images", &null, &|s| s.val_images = Some(10_000)),
        with("all null, t (3 df)", &null, &|s| s.tails = Tails::StudentT3),
        with("at the margin, t (3 df)", &at_margin, &|s| s.tails = Tails::StudentT3),
        // On 179 images the default margin is two images, 200/179 pp.
        with(
            "at the margin, 179 images",
            &scaled(&at_margin, 200.0 / 179.0 / 0.5),
            &|s| s.val_images = Some(179),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product's design for `sc` (`Design::new`): first look at 3 seeds, +3 per round up to
    /// `max`, alpha 0.05, the default margin (0.5 pp, or two images on 179 validation images).
    fn design(sc: &Scenario, max: usize) -> Design {
        let cfg = crate::recipe::ChecklistConfig {
            seeds: 3,
            max_seeds: max,
            round_seeds: 3,
            alpha: 0.05,
            margin: None,
            ..Default::default()
        };
        Design::new(&cfg, sc.val_images.unwrap_or(0), sc.effects.len())
    }

    /// The bounded matrix: every scenario at noise 0.5 pp (and the all-null case over a sweep
    /// of noise levels around the margin), max 4 and 10 seeds. Family-wise false helps/hurts
    /// within alpha + 2 Monte Carlo standard errors everywhere; false equivalence at the margin
    /// within alpha + 2 SE per variant; power at +1 pp >= 0.90 with 10 seeds.
    #[test]
    fn the_guarantees_hold_in_every_cell_of_the_matrix() {
        const N: usize = 1000;
        let bound = |p: f64, n: usize| 0.05 + 2.0 * Rates::se(0.05, n).max(Rates::se(p, n));
        for max in [4, 10] {
            let mut cells = matrix(0.5);
            for sd in [0.25, 1.0, 2.0] {
                cells.push(Scenario::new(&format!("all null, noise {sd} pp"), &[0.0; 14], sd));
                let mut at_margin = vec![0.5, 0.5, -0.5, -0.5];
                at_margin.extend([0.0; 10]);
                cells.push(Scenario::new(&format!("at the margin, noise {sd} pp"), &at_margin, sd));
            }
            for sc in &cells {
                let r = run(&design(sc, max), sc, N, 7);
                eprintln!("max {max:>2} | {:<40} | {r:?}", sc.name);
                assert!(
                    r.any_false <= bound(r.any_false, N),
                    "max {max}, {}: FWER {}",
                    sc.name,
                    r.any_false
                );
                if let Some(m) = r.margin_equivalent {
                    let n = N * 4;
                    assert!(m <= bound(m, n), "max {max}, {}: false equivalence {m}", sc.name);
                }
                if max == 10 && sc.name == "mixed" {
                    let p = r.power.expect("mixed has +1 pp variants");
                    assert!(p >= 0.90, "power at +1 pp {p}");
                }
            }
        }
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
