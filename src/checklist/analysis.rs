//! Analysis: from the trials' run directories to per-arm statistics and verdicts.
//!
//! The metric is the final validation top-1 accuracy (of the EMA weights when a trial keeps them). Each variant is compared with the baseline
//! seed by seed (same seed = same initialisation, split, data order and augmentation draws), so
//! the differences are paired: `d_s = acc_variant(s) - acc_baseline(s)`. The 95% interval is the
//! paired t interval `mean(d) +- t(0.975, n-1) * sd(d) / sqrt(n)`; with 5 or more seeds a
//! percentile bootstrap interval of `mean(d)` is given beside it. The verdict reads the t interval:
//! `helps` if it lies above 0, `hurts` if below, `no_effect` if it straddles 0.
use super::plan::{Arm, Trial, Variant};
use crate::rng::Rng;
use crate::train::rundir::{RunDir, Status};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Two-sided 95% quantiles `t(0.975, df)` of Student's t for df = 1..=30 (standard tables).
const T975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448,
    2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
    2.0452, 2.0423,
];

/// `t(0.975, df)`: the table up to 30 degrees of freedom, then the Cornish-Fisher expansion
/// around the normal quantile 1.959964 (error below 1e-4 there).
pub fn t_quantile_975(df: usize) -> f64 {
    assert!(df >= 1, "t quantile needs at least one degree of freedom");
    if df <= 30 {
        return T975[df - 1];
    }
    let (z, n): (f64, f64) = (1.959_963_985, df as f64);
    z + (z.powi(3) + z) / (4.0 * n) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n - 1 in the denominator); 0 for fewer than 2 values.
pub fn sample_std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// The paired t 95% interval of the mean difference; None for fewer than 2 pairs.
///
/// Accuracies are multiples of `resolution` (1 / validation images), so a few seeds can give
/// identical differences and a zero-width interval; the standard deviation is floored at one
/// resolution step so that such a case does not read as a certain effect.
pub fn t_interval(diffs: &[f64], resolution: f64) -> Option<(f64, f64)> {
    let n = diffs.len();
    if n < 2 {
        return None;
    }
    let half = t_quantile_975(n - 1) * sample_std(diffs).max(resolution) / (n as f64).sqrt();
    let m = mean(diffs);
    Some((m - half, m + half))
}

/// Percentile bootstrap 95% interval of the mean of `diffs` (10 000 resamples, fixed seed, so
/// the same data give the same interval); None for fewer than 5 values.
pub fn bootstrap_interval(diffs: &[f64]) -> Option<(f64, f64)> {
    const B: usize = 10_000;
    let n = diffs.len();
    if n < 5 {
        return None;
    }
    let mut rng = Rng::keyed(0, 0, 0);
    let mut means: Vec<f64> = (0..B)
        .map(|_| (0..n).map(|_| diffs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some((
        means[(0.025 * B as f64) as usize],
        means[(0.975 * B as f64) as usize - 1],
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The reference arm.
    Baseline,
    /// The interval lies above 0.
    Helps,
    /// The interval lies below 0.
    Hurts,
    /// The interval contains 0: no effect detectable at this noise level.
    NoEffect,
    /// Fewer than 2 paired seeds: no interval.
    Inconclusive,
    Diverged,
    Failed,
    /// Some seeds have not finished.
    Incomplete,
}

/// Verdict from a 95% interval of the paired difference.
pub fn verdict_from_interval(ci: Option<(f64, f64)>) -> Verdict {
    match ci {
        None => Verdict::Inconclusive,
        Some((lo, _)) if lo > 0.0 => Verdict::Helps,
        Some((_, hi)) if hi < 0.0 => Verdict::Hurts,
        Some(_) => Verdict::NoEffect,
    }
}

/// One seed of one arm as its run directory records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedOutcome {
    pub seed: u64,
    /// None while the run has not finished.
    pub status: Option<Status>,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
    pub epochs: usize,
    /// Validation images (accuracy resolution is 1 / this); 0 if unknown.
    #[serde(default)]
    pub val_images: usize,
    /// Why a failed or diverged run ended.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Statistics of one arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    pub label: String,
    pub factor: Option<String>,
    pub variant: Option<String>,
    pub overrides: toml::Table,
    pub seeds: Vec<SeedOutcome>,
    /// Mean and sample std of the final validation accuracy over completed seeds.
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Mean paired difference to the baseline and its 95% t interval.
    pub diff: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub bootstrap_ci: Option<(f64, f64)>,
    pub verdict: Verdict,
}

/// The whole checklist's statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub metric: String,
    pub baseline: ArmSummary,
    /// Variants sorted by mean difference, best first.
    pub trials: Vec<ArmSummary>,
    /// The variants the combined recipe takes, one per factor.
    pub combined_variants: Vec<String>,
    pub combined: Option<ArmSummary>,
}

/// Reads every `trials/*/seed-*/trial.json` under `root`, sorted by directory. A trial's run
/// dir is where its `trial.json` lies, whatever the file says, and must resolve inside `root`
/// (no symbolic link out of it): a report reads and embeds nothing from elsewhere.
pub fn read_trials(root: &Path) -> crate::Result<Vec<Trial>> {
    let mut trials = Vec::new();
    let dir = root.join("trials");
    let Ok(arms) = std::fs::read_dir(&dir) else {
        return Ok(trials);
    };
    let mut paths: Vec<_> = arms
        .flatten()
        .flat_map(|a| std::fs::read_dir(a.path()).into_iter().flatten().flatten())
        .map(|s| s.path().join("trial.json"))
        .filter(|p| p.exists())
        .collect();
    paths.sort();
    let real_root = root.canonicalize().map_err(|e| crate::Error::io(root, e))?;
    for p in paths {
        let dir = p.parent().expect("trial.json has a folder");
        let outside = |message: &str| crate::Error::RunDir {
            path: dir.to_path_buf(),
            message: message.into(),
        };
        let real = dir.canonicalize().map_err(|e| crate::Error::io(dir, e))?;
        if !real.starts_with(&real_root) {
            return Err(outside(
                "resolves outside the checklist directory (a symbolic link?); refusing to read it",
            ));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| crate::Error::io(&p, e))?;
        let mut trial: Trial = serde_json::from_str(&text).map_err(|e| crate::Error::RunDir {
            path: p.clone(),
            message: e.to_string(),
        })?;
        trial.dir = dir.strip_prefix(root).expect("found under root").to_path_buf();
        trials.push(trial);
    }
    Ok(trials)
}

/// The outcome of one trial from its run directory.
pub fn outcome(root: &Path, trial: &Trial) -> SeedOutcome {
    let dir = RunDir {
        path: root.join(&trial.dir),
    };
    let result = dir.read_result().ok().flatten();
    let error = result.as_ref().filter(|r| r.status != Status::Completed).and_then(|r| {
        let log = std::fs::read_to_string(dir.file(crate::train::rundir::LOG)).unwrap_or_default();
        r.error.clone().or_else(|| {
            log.lines()
                .find(|l| l.starts_with("diverged at step"))
                .map(String::from)
        })
    });
    SeedOutcome {
        seed: trial.seed,
        status: result.as_ref().map(|r| r.status),
        val_acc: result
            .as_ref()
            .filter(|r| r.status == Status::Completed)
            .and_then(|r| r.final_val_acc),
        test_acc: result.as_ref().and_then(|r| r.test_acc),
        epochs: result.as_ref().map_or(0, |r| r.epochs),
        val_images: result.as_ref().map_or(0, |r| r.val_images),
        error,
    }
}

/// Statistics of one arm against the baseline's seeds (`None` for the baseline itself).
pub fn summarize_arm(arm: &Arm, seeds: Vec<SeedOutcome>, baseline: Option<&[SeedOutcome]>) -> ArmSummary {
    let accs: Vec<f64> = seeds.iter().filter_map(|s| s.val_acc).collect();
    let diffs: Vec<f64> = baseline
        .map(|b| {
            seeds
                .iter()
                .filter_map(|s| {
                    let base = b.iter().find(|x| x.seed == s.seed)?.val_acc?;
                    Some(s.val_acc? - base)
                })
                .collect()
        })
        .unwrap_or_default();
    let resolution = seeds
        .iter()
        .filter(|s| s.val_images > 0)
        .map(|s| 1.0 / s.val_images as f64)
        .fold(0.0, f64::max);
    let ci = t_interval(&diffs, resolution);
    let status_verdict = if seeds.iter().any(|s| s.status == Some(Status::Diverged)) {
        Some(Verdict::Diverged)
    } else if seeds.iter().any(|s| s.status == Some(Status::Failed)) {
        Some(Verdict::Failed)
    } else if seeds.iter().any(|s| s.status.is_none()) {
        Some(Verdict::Incomplete)
    } else {
        None
    };
    let verdict = match (status_verdict, baseline) {
        (Some(v), _) => v,
        (None, None) => Verdict::Baseline,
        (None, Some(_)) => verdict_from_interval(ci),
    };
    let (factor, variant) = match arm {
        Arm::Variant(v) => (Some(v.factor.clone()), Some(v.name.clone())),
        _ => (None, None),
    };
    ArmSummary {
        label: arm.label(),
        factor,
        variant,
        overrides: arm.overrides(),
        seeds,
        mean: (!accs.is_empty()).then(|| mean(&accs)),
        std: (!accs.is_empty()).then(|| sample_std(&accs)),
        diff: (!diffs.is_empty()).then(|| mean(&diffs)),
        ci,
        bootstrap_ci: bootstrap_interval(&diffs),
        verdict,
    }
}

/// For each factor, the helping variant with the largest mean difference.
pub fn winners(trials: &[ArmSummary], variants: &[Variant]) -> Vec<Variant> {
    let mut best: Vec<&ArmSummary> = Vec::new();
    for t in trials.iter().filter(|t| t.verdict == Verdict::Helps) {
        match best.iter_mut().find(|b| b.factor == t.factor) {
            Some(b) if b.diff < t.diff => *b = t,
            Some(_) => {}
            None => best.push(t),
        }
    }
    best.iter()
        .filter_map(|b| variants.iter().find(|v| v.label() == b.label).cloned())
        .collect()
}

/// Summarises every trial found under `root`.
pub fn analyze(root: &Path) -> crate::Result<Summary> {
    let trials = read_trials(root)?;
    let mut arms: Vec<(Arm, Vec<SeedOutcome>)> = Vec::new();
    for t in &trials {
        let o = outcome(root, t);
        match arms.iter_mut().find(|(a, _)| a.label() == t.arm.label()) {
            Some((_, seeds)) => seeds.push(o),
            None => arms.push((t.arm.clone(), vec![o])),
        }
    }
    for (_, seeds) in &mut arms {
        seeds.sort_by_key(|s| s.seed);
    }
    let base_seeds = arms
        .iter()
        .find(|(a, _)| *a == Arm::Baseline)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let baseline = summarize_arm(&Arm::Baseline, base_seeds.clone(), None);
    let mut variants = Vec::new();
    let mut summaries = Vec::new();
    let mut combined = None;
    for (arm, seeds) in arms {
        match &arm {
            Arm::Baseline => {}
            Arm::Variant(v) => {
                variants.push(v.clone());
                summaries.push(summarize_arm(&arm, seeds, Some(&base_seeds)));
            }
            Arm::Combined { .. } => combined = Some(summarize_arm(&arm, seeds, Some(&base_seeds))),
        }
    }
    summaries.sort_by(|a, b| {
        b.diff
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.diff.unwrap_or(f64::NEG_INFINITY))
            .then(a.label.cmp(&b.label))
    });
    let combined_variants = winners(&summaries, &variants).iter().map(Variant::label).collect();
    Ok(Summary {
        metric: "final_val_acc".into(),
        baseline,
        trials: summaries,
        combined_variants,
        combined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    #[test]
    fn paired_t_interval_by_hand() {
        // d = [0.01, 0.02, 0.03]: mean 0.02, sd 0.01, n 3, t(0.975, 2) = 4.3027.
        let (lo, hi) = t_interval(&[0.01, 0.02, 0.03], 0.0).unwrap();
        let half = 4.3027 * 0.01 / 3f64.sqrt();
        close(lo, 0.02 - half, 1e-12);
        close(hi, 0.02 + half, 1e-12);
        assert_eq!(
            verdict_from_interval(Some((lo, hi))),
            Verdict::NoEffect,
            "lo = {lo} < 0"
        );
        // d = [0.02, 0.025, 0.03, 0.022]: mean 0.02425, sd 0.0043493, t(0.975, 3) = 3.1824.
        let (lo, _) = t_interval(&[0.02, 0.025, 0.03, 0.022], 0.0).unwrap();
        close(lo, 0.02425 - 3.1824 * 0.004349329 / 2.0, 1e-8);
        assert_eq!(
            verdict_from_interval(t_interval(&[0.02, 0.025, 0.03, 0.022], 0.0)),
            Verdict::Helps
        );
        assert_eq!(
            verdict_from_interval(t_interval(&[-0.02, -0.025, -0.03], 0.0)),
            Verdict::Hurts
        );
        assert_eq!(t_interval(&[0.1], 0.0), None);
        // Identical differences of one image in 200: sd floored at 1/200, t(0.975, 1) = 12.7062.
        let (lo, hi) = t_interval(&[-0.005, -0.005], 0.005).unwrap();
        close(lo, -0.005 - 12.7062 * 0.005 / 2f64.sqrt(), 1e-12);
        assert_eq!(verdict_from_interval(Some((lo, hi))), Verdict::NoEffect);
        assert_eq!(verdict_from_interval(None), Verdict::Inconclusive);
    }

    #[test]
    fn t_quantiles_table_and_expansion() {
        assert_eq!(t_quantile_975(1), 12.7062);
        assert_eq!(t_quantile_975(10), 2.2281);
        close(t_quantile_975(40), 2.0211, 1e-4);
        close(t_quantile_975(120), 1.9799, 1e-4);
        close(t_quantile_975(100_000), 1.96, 1e-4);
    }

    #[test]
    fn std_and_bootstrap() {
        close(sample_std(&[1.0, 2.0, 3.0, 4.0]), (5.0f64 / 3.0).sqrt(), 1e-12);
        assert_eq!(bootstrap_interval(&[0.1, 0.2]), None);
        let d = [0.01, 0.02, 0.015, 0.03, 0.025, 0.02];
        let (lo, hi) = bootstrap_interval(&d).unwrap();
        assert!(lo > 0.01 && lo < mean(&d) && hi > mean(&d) && hi < 0.03, "{lo} {hi}");
        assert_eq!(bootstrap_interval(&d), Some((lo, hi)), "deterministic");
    }

    fn seed(seed: u64, acc: Option<f64>, status: Status) -> SeedOutcome {
        SeedOutcome {
            seed,
            status: Some(status),
            val_acc: acc,
            test_acc: None,
            epochs: 1,
            val_images: 0,
            error: None,
        }
    }

    #[test]
    fn arm_statistics_are_paired_by_seed() {
        let base = vec![
            seed(0, Some(0.90), Status::Completed),
            seed(1, Some(0.80), Status::Completed),
            seed(2, Some(0.85), Status::Completed),
        ];
        let var = vec![
            seed(2, Some(0.87), Status::Completed),
            seed(0, Some(0.91), Status::Completed),
            seed(1, Some(0.83), Status::Completed),
        ];
        let v = Variant {
            factor: "f".into(),
            name: "x".into(),
            overrides: toml::Table::new(),
        };
        let s = summarize_arm(&Arm::Variant(v.clone()), var, Some(&base));
        close(s.diff.unwrap(), 0.02, 1e-12); // diffs 0.01, 0.03, 0.02
        let half = 4.3027 * 0.01 / 3f64.sqrt();
        close(s.ci.unwrap().0, 0.02 - half, 1e-12);
        close(s.mean.unwrap(), (0.87 + 0.91 + 0.83) / 3.0, 1e-12);
        let diverged = vec![seed(0, None, Status::Diverged), seed(1, Some(0.8), Status::Completed)];
        assert_eq!(
            summarize_arm(&Arm::Variant(v), diverged, Some(&base)).verdict,
            Verdict::Diverged
        );
    }

    #[test]
    fn winners_take_the_best_helping_variant_per_factor() {
        let mk = |factor: &str, name: &str, diff: f64, verdict: Verdict| ArmSummary {
            label: format!("{factor}={name}"),
            factor: Some(factor.into()),
            variant: Some(name.into()),
            overrides: toml::Table::new(),
            seeds: vec![],
            mean: None,
            std: None,
            diff: Some(diff),
            ci: None,
            bootstrap_ci: None,
            verdict,
        };
        let trials = vec![
            mk("a", "1", 0.01, Verdict::Helps),
            mk("a", "2", 0.03, Verdict::Helps),
            mk("b", "1", 0.05, Verdict::NoEffect),
            mk("c", "1", 0.02, Verdict::Helps),
        ];
        let variants: Vec<Variant> = trials
            .iter()
            .map(|t| Variant {
                factor: t.factor.clone().unwrap(),
                name: t.variant.clone().unwrap(),
                overrides: toml::Table::new(),
            })
            .collect();
        let w: Vec<String> = winners(&trials, &variants).iter().map(Variant::label).collect();
        assert_eq!(w, vec!["a=2", "c=1"]);
    }
}
