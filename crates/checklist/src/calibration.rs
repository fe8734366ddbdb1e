//! Critical values of the helps/hurts tests, calibrated once per design by simulation.
//!
//! A variant is tested at every look on the t statistic of its paired differences,
//! `t_l = mean / (sd / sqrt(n_l))` on the first `n_l` seeds. The looks reuse seeds, so the `t_l`
//! of one variant are correlated, and a bound that treats each look as a separate test (the union
//! bound) wastes error. Group-sequential boundaries spend exactly the planned error at each look:
//! at level `a` (a variant's share of alpha), look `l` gets the critical value `c_l` with
//!
//! ```text
//! P(|t_1| <= c_1, ..., |t_{l-1}| <= c_{l-1}, |t_l| > c_l) = a_l
//! ```
//!
//! where `a_l` is the error the spending function allots to look `l` (Jennison and Turnbull,
//! *Group Sequential Methods*, 2000, ch. 7). Under normal seed noise the `t_l` are scale-free, so
//! their joint law depends on the look sizes alone: one simulation of standard normal seeds
//! serves every noise level. The first look that spends error gets the exact t quantile
//! `t(1 - a_1 / 2, n_1 - 1)`; each later look the quantile among simulated paths that crossed no
//! earlier boundary, calibrated to spend [`SAFETY`] of its error so that the simulation's own
//! error cannot push the spent error past `a_l`.
//!
//! Holm's step-down (group-sequential Holm, Maurer and Bretz 2013) needs the boundaries at each
//! level `alpha / m`, `m = 1..K`: a table of `K` rows, one per level, one value per look. The
//! table is computed with a fixed seed ([`SEED`]) and stored in `design.json`, so the rule the
//! checklist applies and the simulation that checks it (`simulation.rs`) use the same numbers.
use darkmagic_base::rng::Rng;
use darkmagic_base::stats::t_upper_quantile;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Simulated paths (sequences of seeds) per calibration.
pub const PATHS: usize = 1 << 20;
/// The calibration's random seed.
pub const SEED: u64 = 20_261_206;
/// Share of its error a simulated look is calibrated to spend. At `2^20` paths a look that may
/// spend 0.003 crosses about 3,100 times, a Monte Carlo error of 1.8%: 0.95 leaves about three
/// standard errors of room.
pub const SAFETY: f64 = 0.95;
/// Paths drawn from one keyed random stream (the calibration is the same on any thread count).
const CHUNK: usize = 1 << 14;

/// One level's critical values: one per look, None where the look spends nothing.
pub type Row = Vec<Option<f64>>;

/// The critical values for levels `alpha / m`, `m = 1..=k` (row `m - 1`), of a design whose
/// looks are at `looks` seeds and spend `spent[l]` of alpha each (adding up to alpha): look `l`
/// at level `alpha / m` spends `spent[l] / m`. Rows grow with `m` at every look (a smaller level
/// never has a smaller critical value), which Holm's step-down needs. Memoised per design.
pub fn table(looks: &[usize], spent: &[f64], k: usize) -> Arc<Vec<Row>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<Row>>>>> = OnceLock::new();
    let key = format!("{looks:?}{spent:?}{k}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().expect("calibration cache").get(&key) {
        return t.clone();
    }
    let t = Arc::new(compute(looks, spent, k));
    cache.lock().expect("calibration cache").insert(key, t.clone());
    t
}

/// [`table`] without the cache.
fn compute(looks: &[usize], spent: &[f64], k: usize) -> Vec<Row> {
    let stats = simulate(looks);
    let mut rows: Vec<Row> = (1..=k.max(1)).map(|m| row(looks, spent, m as f64, &stats)).collect();
    for m in 1..rows.len() {
        let (lower, upper) = rows.split_at_mut(m);
        for (c, prev) in upper[0].iter_mut().zip(&lower[m - 1]) {
            if let (Some(c), Some(p)) = (c.as_mut(), prev) {
                *c = c.max(*p);
            }
        }
    }
    rows
}

/// `|t_l|` of every simulated path at every look: `stats[l][path]`, standard normal seeds.
fn simulate(looks: &[usize]) -> Vec<Vec<f32>> {
    let max = looks.iter().copied().max().unwrap_or(0);
    let chunks: Vec<Vec<Vec<f32>>> = (0..PATHS / CHUNK)
        .into_par_iter()
        .map(|c| {
            let mut rng = Rng::keyed(SEED, c as u64, max as u64);
            let mut out = vec![Vec::with_capacity(CHUNK); looks.len()];
            for _ in 0..CHUNK {
                let (mut sum, mut sq, mut n) = (0.0, 0.0, 0);
                for (l, &at) in looks.iter().enumerate() {
                    while n < at {
                        let x = rng.normal();
                        (sum, sq, n) = (sum + x, sq + x * x, n + 1);
                    }
                    out[l].push(abs_t(sum, sq, n) as f32);
                }
            }
            out
        })
        .collect();
    (0..looks.len())
        .map(|l| chunks.iter().flat_map(|c| c[l].iter().copied()).collect())
        .collect()
}

/// `|mean / (sd / sqrt n)|` from the sum and sum of squares of `n` values (0 below 2 values).
fn abs_t(sum: f64, sq: f64, n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let nf = n as f64;
    let var = ((sq - sum * sum / nf) / (nf - 1.0)).max(f64::MIN_POSITIVE);
    (sum / nf).abs() / (var / nf).sqrt()
}

/// The critical values at level `alpha / m`.
fn row(looks: &[usize], spent: &[f64], m: f64, stats: &[Vec<f32>]) -> Row {
    let mut alive = vec![true; PATHS];
    let mut any_before = false;
    looks
        .iter()
        .zip(spent)
        .zip(stats)
        .map(|((&n, &s), t)| {
            let a = s / m;
            if a <= 0.0 || n < 2 {
                return None;
            }
            let c = if any_before {
                survivor_quantile(t, &alive, SAFETY * a)
            } else {
                t_upper_quantile(a / 2.0, (n - 1) as f64)
            };
            any_before = true;
            for (alive, &t) in alive.iter_mut().zip(t) {
                *alive &= f64::from(t) <= c;
            }
            Some(c)
        })
        .collect()
}

/// The value `c` such that a share `p` of all paths is alive and has `|t| > c`.
fn survivor_quantile(t: &[f32], alive: &[bool], p: f64) -> f64 {
    let mut v: Vec<f32> = t.iter().zip(alive).filter(|(_, a)| **a).map(|(t, _)| *t).collect();
    let hits = (p * t.len() as f64).floor() as usize;
    if hits >= v.len() {
        return 0.0;
    }
    let (_, c, _) = v.select_nth_unstable_by(hits, |a, b| b.total_cmp(a));
    f64::from(*c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_spending_look_is_the_exact_t_quantile_and_a_look_that_spends_nothing_has_none() {
        let t = table(&[3, 4, 6], &[0.0, 0.01, 0.04], 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0][0], None);
        let exact = t_upper_quantile(0.005, 3.0);
        assert!((t[0][1].unwrap() - exact).abs() < 1e-12);
        assert!((t[1][1].unwrap() - t_upper_quantile(0.0025, 3.0)).abs() < 1e-12);
    }

    /// The calibrated boundaries spend what the design planned: fresh simulated paths (another
    /// seed) crossing at each look, at 0.05 spread over looks at 4 and 6 seeds.
    #[test]
    fn fresh_paths_cross_each_look_at_the_planned_rate() {
        let looks = [4, 6];
        let spent = [0.01, 0.04];
        let t = table(&looks, &spent, 1);
        let (c1, c2) = (t[0][0].unwrap(), t[0][1].unwrap());
        let n = 400_000;
        let mut rng = Rng::keyed(SEED + 1, 0, 0);
        let (mut first, mut second) = (0usize, 0usize);
        for _ in 0..n {
            let x: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            let t = |k: usize| abs_t(x[..k].iter().sum(), x[..k].iter().map(|v| v * v).sum(), k);
            if t(4) > c1 {
                first += 1;
            } else if t(6) > c2 {
                second += 1;
            }
        }
        let se = |p: f64| (p * (1.0 - p) / n as f64).sqrt();
        let (p1, p2) = (first as f64 / n as f64, second as f64 / n as f64);
        assert!((p1 - 0.01).abs() < 4.0 * se(0.01), "look 1 {p1}");
        // Calibrated to 0.95 of 0.04: 0.038, within the simulations' errors.
        assert!((p2 - SAFETY * 0.04).abs() < 4.0 * se(0.04) + 0.002, "look 2 {p2}");
        assert!(p2 <= 0.04, "look 2 {p2}");
        // The exact boundary beats the union bound's t(1 - 0.04 / 2, 5) at the second look.
        assert!(c2 < t_upper_quantile(0.02, 5.0), "{c2}");
    }

    #[test]
    fn rows_grow_with_the_number_of_open_hypotheses() {
        let t = table(&[4, 6, 8], &[0.005, 0.015, 0.03], 14);
        for l in 0..3 {
            let col: Vec<f64> = t.iter().map(|r| r[l].unwrap()).collect();
            assert!(col.windows(2).all(|w| w[0] <= w[1]), "look {l}: {col:?}");
        }
    }
}
