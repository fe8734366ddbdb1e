//! Analysis: from the trials' run directories to per-arm statistics and verdicts.
//!
//! The metric is the final validation top-1 accuracy (of the EMA weights when a trial keeps
//! them). Each variant is compared with the baseline seed by seed (same seed = same
//! initialisation, split, data order and augmentation draws), so the differences are paired:
//! `d_s = acc_variant(s) - acc_baseline(s)`. The seeds are spent in rounds and the verdicts
//! (`helps`, `hurts`, `equivalent`, `undecided`) come from the sequential design of
//! [`super::sequential`]; with 5 or more seeds a percentile bootstrap interval of `mean(d)` is
//! given beside the design's corrected interval.
use super::design_record::Record;
use super::outcome::{SeedOutcome, outcome};
use super::plan::{Arm, Trial, Variant};
use super::sequential::{Decision, Design};
use super::tuning::{ArmTuning, tuning_summary};
use darkmagic_base::recipe::ChecklistConfig;
use darkmagic_base::rng::Rng;
use darkmagic_base::rundir::Status;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use super::sequential::Verdict;
pub use darkmagic_base::stats::{mean, sample_std};

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
    /// Mean paired difference to the baseline over every paired seed.
    pub diff: Option<f64>,
    /// The interval that decided the verdict (the equivalence interval for `equivalent`, the
    /// helps/hurts interval otherwise) at the arm's last look, and its confidence level.
    pub ci: Option<(f64, f64)>,
    #[serde(default)]
    pub ci_level: Option<f64>,
    pub bootstrap_ci: Option<(f64, f64)>,
    pub verdict: Verdict,
    /// The sequential design's standing of the arm: look, seeds used, intervals, the effect it
    /// could detect, the seeds a decision would need. None for the baseline.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision: Option<Decision>,
    /// The arm's worst paired seed (variants with 2 or more paired seeds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub worst_seed: Option<WorstSeed>,
}

/// An arm's lowest paired difference, and whether it lies so far below the arm's other seeds
/// that the arm looks unstable: a run that goes wrong now and then, which no verdict on 4 to 10
/// seeds can see in the mean (docs/checklist-statistics.md, "The honest limit").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstSeed {
    pub seed: u64,
    /// Its paired difference against the baseline.
    pub diff: f64,
    /// How far it lies below the mean of the arm's other paired differences.
    pub below_others: f64,
    /// `below_others` exceeds [`UNSTABLE_SDS`] standard deviations of the paired differences
    /// pooled over the arms.
    pub unstable: bool,
}

/// Pooled standard deviations below its other seeds that mark an arm's worst seed unstable. For
/// normal noise the lowest of 6 seeds lies that far below the others' mean about once in a
/// thousand arms; a seed that lost several pp where the others scatter by 0.3 does.
pub const UNSTABLE_SDS: f64 = 4.0;

/// The worst of an arm's paired `(seed, difference)`s against the others, judged against the
/// pooled sd (`None` with fewer than 2 pairs).
pub fn worst_seed(pairs: &[(u64, f64)], pooled_sd: Option<f64>) -> Option<WorstSeed> {
    let (i, &(seed, diff)) = pairs.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1))?;
    let others: Vec<f64> = pairs
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, p)| p.1)
        .collect();
    if others.is_empty() {
        return None;
    }
    let below_others = mean(&others) - diff;
    Some(WorstSeed {
        seed,
        diff,
        below_others,
        unstable: pooled_sd.is_some_and(|sd| below_others > UNSTABLE_SDS * sd),
    })
}

/// The sequential design a checklist ran with, and what it spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesignSummary {
    /// Family-wise error of helps/hurts claims.
    pub alpha: f64,
    /// Equivalence margin (fraction; 0.005 = 0.5 pp).
    pub margin: f64,
    /// Seeds at each look.
    pub looks: Vec<usize>,
    /// Error spent at each look (they add up to `alpha`).
    #[serde(default)]
    pub spent: Vec<f64>,
    /// Variants the helps/hurts error is split over (every planned variant: Holm starts at alpha / K).
    #[serde(default)]
    pub comparisons: usize,
    /// The designs replaced by `--redesign`, oldest first, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
    /// The design was fixed at the first look (`design.json`); false before it.
    #[serde(default)]
    pub fixed: bool,
    /// Standard deviation of the paired differences pooled over the variants (fraction); the
    /// power figures use it.
    #[serde(default)]
    pub pooled_sd: Option<f64>,
    /// Looks reached so far (rounds run).
    pub rounds: usize,
    /// Training runs that finished or failed.
    pub runs: usize,
    /// Training runs of the same arms with every one at `max_seeds`.
    pub runs_at_max_seeds: usize,
}

/// The whole checklist's statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub metric: String,
    /// What each arm's tuning runs scored and chose (`checklist.tune`); empty without tuning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuning: Vec<ArmTuning>,
    pub baseline: ArmSummary,
    /// Variants sorted by mean difference, best first.
    pub trials: Vec<ArmSummary>,
    /// The variants the combined recipe takes, one per factor.
    pub combined_variants: Vec<String>,
    pub combined: Option<ArmSummary>,
    /// The epochs of the combined recipe's confirmation when `checklist.confirm_epochs` set
    /// them; None: it trained as long as the variants' trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_epochs: Option<usize>,
    /// The baseline on the confirmation's fresh seeds at `confirm_epochs` (not in `baseline`,
    /// whose seeds trained as long as the variants').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_baseline: Option<ArmSummary>,
    /// The combined recipe's effect against the sum of its parts' effects (None when they
    /// trained at different lengths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction: Option<Interaction>,
    /// The combined recipe against the baseline on the test split (None without the combined
    /// recipe's trials or test accuracies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_test: Option<TestSplit>,
    pub design: DesignSummary,
    /// What the verdicts cannot say on this data (e.g. no headroom to help by the margin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Summary {
    /// Every arm with seeds of its own: the baseline, the variants, the combined recipe and the
    /// baseline of its confirmation at `confirm_epochs`.
    pub fn arms(&self) -> impl Iterator<Item = &ArmSummary> {
        std::iter::once(&self.baseline)
            .chain(&self.trials)
            .chain(&self.combined)
            .chain(&self.confirm_baseline)
    }
}

/// The article's promise, an upgraded recipe that wins on held-out data, measured where no
/// choice of the checklist looked: the combined recipe against the baseline on the test split,
/// on the fresh seeds of its confirmation (the variants were judged, and the combined recipe
/// built, on other seeds and on the validation split).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSplit {
    /// Fresh seeds on which both have a test accuracy.
    pub seeds: usize,
    /// Mean paired difference of the test accuracy, combined minus baseline.
    pub diff: f64,
    /// Its two-sided Student-t interval at [`TEST_LEVEL`], the differences' sd floored at the
    /// test accuracy's resolution (one image); None below 2 seeds.
    pub ci: Option<(f64, f64)>,
}

/// The level of [`TestSplit::ci`]: one comparison, so no multiplicity to correct for. Its
/// coverage is measured by `simulation::t_interval_coverage` (docs/checklist-statistics.md).
pub const TEST_LEVEL: f64 = 0.95;

/// The combined recipe against the baseline on the test split, seed by seed (see [`TestSplit`]).
fn combined_test(combined: &ArmSummary, baseline: &[SeedOutcome]) -> Option<TestSplit> {
    let diffs: Vec<f64> = combined
        .seeds
        .iter()
        .filter_map(|s| Some(s.test_acc? - baseline.iter().find(|b| b.seed == s.seed)?.test_acc?))
        .collect();
    let images = combined.seeds.iter().filter_map(|s| s.test_images).min();
    let resolution = images.filter(|&n| n > 0).map_or(0.0, |n| 1.0 / n as f64);
    (!diffs.is_empty()).then(|| TestSplit {
        seeds: diffs.len(),
        diff: darkmagic_base::stats::mean(&diffs),
        ci: darkmagic_base::stats::t_interval(&diffs, TEST_LEVEL, resolution),
    })
}

/// The article assumes the tricks add up. The combined recipe's mean difference on its own
/// (fresh) seeds against the sum of its parts' mean differences on the seeds that selected them.
/// The parts were selected for being large on those seeds, so their sum is biased upward and
/// `combined - parts` leans negative even when the effects add exactly: an audit measured a 95%
/// interval on it calling "interfere" 6-24% of the time where effects truly add. So no
/// interval is given, only the figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// The combined recipe's mean difference.
    pub combined: f64,
    /// The sum of the parts' mean differences, over the seeds every part ran.
    pub parts: f64,
    /// `combined - parts`.
    pub estimate: f64,
    pub combined_seeds: usize,
    pub parts_seeds: usize,
}

/// What is wrong with a trial folder that holds a finished run but no `trial.json`.
pub(crate) const MISSING_TRIAL_RECORD: &str = "missing beside a finished result.json: the trial's record is incomplete; remove the trial's folder to run it again";

/// Reads every `trials/*/seed-*/trial.json` under `root`, sorted by directory. A trial's run
/// dir is where its `trial.json` lies, whatever the file says, and must resolve inside `root`
/// (no symbolic link out of it): a report reads and embeds nothing from elsewhere. A folder
/// with a `result.json` and no `trial.json` is an error (it would be judged without).
pub fn read_trials(root: &Path) -> crate::Result<Vec<Trial>> {
    let mut trials = Vec::new();
    let dir = root.join("trials");
    let Ok(arms) = std::fs::read_dir(&dir) else {
        return Ok(trials);
    };
    let seeds: Vec<_> = arms
        .flatten()
        .flat_map(|a| std::fs::read_dir(a.path()).into_iter().flatten().flatten())
        .map(|s| s.path())
        .collect();
    // A finished run without its trial.json would be in no analysis: judged without it.
    if let Some(s) = seeds
        .iter()
        .find(|s| !s.join("trial.json").exists() && s.join(darkmagic_base::rundir::RESULT).exists())
    {
        return Err(crate::Error::RunDir {
            path: s.join("trial.json"),
            message: MISSING_TRIAL_RECORD.into(),
        });
    }
    let mut paths: Vec<_> = seeds
        .into_iter()
        .map(|s| s.join("trial.json"))
        .filter(|p| p.exists())
        .collect();
    paths.sort();
    let real_root = root.canonicalize().map_err(|e| crate::Error::io(root, e))?;
    let first = first_seed(root)?;
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
        let bytes = darkmagic_base::files::read_regular(&p, darkmagic_base::rundir::MAX_RECORD_BYTES)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut trial: Trial = serde_json::from_str(&text).map_err(|e| crate::Error::RunDir {
            path: p.clone(),
            message: e.to_string(),
        })?;
        // Indices size the analysis' tables: bound them as the recipe bounds what they index.
        let (seeds, tunes) = (
            darkmagic_base::recipe::MAX_SEEDS,
            darkmagic_base::recipe::MAX_TUNE_CANDIDATES,
        );
        if trial.seed_index >= seeds || trial.tune.is_some_and(|k| k >= tunes) {
            return Err(crate::Error::RunDir {
                path: p.clone(),
                message: format!("seed_index must be below {seeds} and tune below {tunes}"),
            });
        }
        trial.dir = dir.strip_prefix(root).expect("found under root").to_path_buf();
        if let Some(first) = first {
            check_identity(&trial, &trial.dir, first).map_err(|message| crate::Error::RunDir {
                path: p.clone(),
                message: format!("{message}: restore the record, or remove the trial's folder to run it again"),
            })?;
        }
        // Each (arm, seed, tuning candidate) once: a copied trial folder would count a seed twice.
        let key = |t: &Trial| (t.arm.label(), t.seed_index, t.tune);
        if let Some(other) = trials.iter().find(|t| key(t) == key(&trial)) {
            return Err(crate::Error::RunDir {
                path: p.clone(),
                message: format!(
                    "records the same trial ({}, seed index {}) as {}: each trial is recorded once (remove the copy)",
                    trial.arm.label(),
                    trial.seed_index,
                    other.dir.display()
                ),
            });
        }
        trials.push(trial);
    }
    Ok(trials)
}

/// The paired differences of `seeds` against `baseline` in seed order, up to the first seed
/// that either lacks: the looks judge the first `n` seeds of every arm.
pub fn paired_prefix(seeds: &[SeedOutcome], baseline: &[SeedOutcome]) -> Vec<f64> {
    let mut out = Vec::new();
    for s in seeds {
        let base = baseline.iter().find(|x| x.seed == s.seed).and_then(|x| x.val_acc);
        match (s.val_acc, base) {
            (Some(v), Some(b)) => out.push(v - b),
            _ => break,
        }
    }
    out
}

/// Every seed of `seeds` that the baseline also finished, with its difference against the
/// baseline's same seed (unlike [`paired_prefix`], not stopped by a gap).
fn paired_by_seed(seeds: &[SeedOutcome], baseline: &[SeedOutcome]) -> Vec<(u64, f64)> {
    seeds
        .iter()
        .filter_map(|s| {
            Some((
                s.seed,
                s.val_acc? - baseline.iter().find(|x| x.seed == s.seed)?.val_acc?,
            ))
        })
        .collect()
}

/// `diverged`, `stopped` or `failed` when a seed of the arm ended so: the arm takes no part in
/// the looks.
fn status_verdict(seeds: &[SeedOutcome]) -> Option<Verdict> {
    if seeds.iter().any(|s| s.status == Some(Status::Diverged)) {
        Some(Verdict::Diverged)
    } else if seeds.iter().any(|s| s.status == Some(Status::Stopped)) {
        Some(Verdict::Stopped)
    } else if seeds.iter().any(|s| s.status == Some(Status::Failed)) {
        Some(Verdict::Failed)
    } else {
        None
    }
}

/// Statistics of one arm against the baseline's seeds (`None` for the baseline itself), with
/// its standing in the sequential design.
pub fn summarize_arm(
    arm: &Arm,
    seeds: Vec<SeedOutcome>,
    baseline: Option<&[SeedOutcome]>,
    decision: Option<Decision>,
) -> ArmSummary {
    let accs: Vec<f64> = seeds.iter().filter_map(|s| s.val_acc).collect();
    let diffs: Vec<f64> = baseline
        .map(|b| paired_by_seed(&seeds, b).into_iter().map(|(_, d)| d).collect())
        .unwrap_or_default();
    let verdict = match (status_verdict(&seeds), &decision) {
        (Some(v), _) => v,
        (None, Some(d)) => d.verdict,
        (None, None) => Verdict::Baseline,
    };
    let (factor, variant) = match arm {
        Arm::Variant(v) => (Some(v.factor.clone()), Some(v.name.clone())),
        _ => (None, None),
    };
    let deciding = decision.as_ref().and_then(Decision::deciding);
    ArmSummary {
        label: arm.label(),
        factor,
        variant,
        overrides: arm.overrides(),
        seeds,
        mean: (!accs.is_empty()).then(|| mean(&accs)),
        std: (!accs.is_empty()).then(|| sample_std(&accs)),
        diff: (!diffs.is_empty()).then(|| mean(&diffs)),
        ci: deciding.map(|(ci, _)| ci),
        ci_level: deciding.map(|(_, level)| level),
        bootstrap_ci: bootstrap_interval(&diffs),
        verdict,
        decision,
        worst_seed: None,
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

/// The `[checklist]` section the checklist in `root` runs with (`baseline.toml`), or the
/// defaults for a directory without one. Only that section is read: the rest of the recipe may
/// name files of another machine (a report rebuilt elsewhere). A file that cannot be read or a
/// section that does not parse is an error naming it: judging with the default alpha and margin
/// instead would change the verdicts without a word.
fn checklist_config(root: &Path) -> crate::Result<ChecklistConfig> {
    let Some((table, bad)) = baseline_table(root)? else {
        return Ok(ChecklistConfig::default());
    };
    match table.get("checklist") {
        None => Ok(ChecklistConfig::default()),
        Some(c) => c
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| bad(format!("[checklist]: {e}"))),
    }
}

/// An error about `baseline.toml`, from its message.
type BaselineError = Box<dyn Fn(String) -> crate::Error>;

/// The checklist's `baseline.toml` as a table, with a maker of errors that name it; None when
/// the checklist has none (records from before it was written).
fn baseline_table(root: &Path) -> crate::Result<Option<(toml::Table, BaselineError)>> {
    let path = root.join(super::BASELINE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let named = path.clone();
    let bad: BaselineError = Box::new(move |message: String| crate::Error::RunDir {
        path: named.clone(),
        message: format!("{message}; the checklist's settings are read from it"),
    });
    let bytes = darkmagic_base::files::read_regular(&path, darkmagic_base::rundir::MAX_RECORD_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
    let table = text.parse::<toml::Table>().map_err(|e| bad(e.to_string()))?;
    Ok(Some((table, bad)))
}

/// The checklist's first seed (`seed` in `baseline.toml`; 0, the recipe's default, when unset).
fn first_seed(root: &Path) -> crate::Result<Option<u64>> {
    let Some((table, bad)) = baseline_table(root)? else {
        return Ok(None);
    };
    match table.get("seed") {
        None => Ok(Some(0)),
        Some(v) => v
            .as_integer()
            .and_then(|s| u64::try_from(s).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("seed = {v}: expected a non-negative integer"))),
    }
}

/// A trial's record names where it belongs: its folder and its seed follow from its arm, its
/// seed index and tuning candidate, and the checklist's first seed. An edited or moved record
/// would pair one seed's run with another's.
fn check_identity(trial: &Trial, dir: &Path, first: u64) -> Result<(), String> {
    let expected = match trial.tune {
        Some(c) => Trial::tuning(trial.arm.clone(), first, c, Default::default(), trial.seed_index),
        None => Trial::new(trial.arm.clone(), first, trial.seed_index),
    };
    if dir != expected.dir {
        return Err(format!(
            "records `{}` seed index {}, which belongs in {}",
            trial.arm.label(),
            trial.seed_index,
            expected.dir.display()
        ));
    }
    if trial.seed != expected.seed {
        return Err(format!(
            "seed is {}, but seed index {} of a checklist whose first seed is {first} trains seed {}",
            trial.seed, trial.seed_index, expected.seed
        ));
    }
    Ok(())
}

/// The smallest positive difference between two of `values`, 0 with fewer than two distinct
/// ones: the resolution of a metric whose validation-set size is unknown (an external
/// trainer's). Accuracies on n images are multiples of 1/n, so this is at least 1/n: flooring
/// standard deviations with it errs on the wide side.
pub fn smallest_gap(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let gap = v
        .windows(2)
        .map(|w| w[1] - w[0])
        // Closer values are equal but for float32 rounding (timm computes accuracy in float32).
        .filter(|&d| d > 1e-6)
        .fold(f64::INFINITY, f64::min);
    if gap.is_finite() { gap } else { 0.0 }
}

/// What the checklist compares: `final_val_acc`, or where an external trainer's metric comes from.
fn metric_name(root: &Path) -> String {
    let recipe = darkmagic_base::recipe::Recipe::load(Some(&root.join(super::BASELINE)), &[]).ok();
    match recipe.and_then(|r| r.external) {
        Some(e) => crate::external::describe(&e.metric),
        None => "final_val_acc".into(),
    }
}

/// The accuracy's resolution: 1 / validation images where known, else the smallest gap between
/// the values.
fn resolution(seeds: &[&SeedOutcome]) -> f64 {
    let known = seeds
        .iter()
        .filter(|s| s.val_images > 0)
        .map(|s| 1.0 / s.val_images as f64)
        .fold(0.0, f64::max);
    if known > 0.0 {
        known
    } else {
        smallest_gap(seeds.iter().filter_map(|s| s.val_acc))
    }
}

/// The sequential design of the checklist in `root` and the labels of the variants it plans:
/// the ones fixed at its first look (`design.json`), or before it the `[checklist]` section's
/// design over the plan of `baseline.toml` (the arms found, where it cannot be read). `K`, the
/// number of comparisons, counts every planned variant, run yet or not.
fn design_of(
    root: &Path,
    record: Option<Record>,
    val_images: usize,
    found: Vec<String>,
) -> crate::Result<(Design, bool, Vec<String>)> {
    let planned = darkmagic_base::recipe::Recipe::load(Some(&root.join(super::BASELINE)), &[])
        .and_then(|r| super::plan::variants(&r))
        .map(|vs| vs.iter().map(Variant::label).collect::<Vec<_>>());
    if let Some(r) = record.filter(|r| !r.retired) {
        super::design_record::check_margin(root, &r, val_images)?;
        super::design_record::check_unsealed(root, &r)?;
        // A record edited with its digest removed passes the two checks above when edited
        // consistently: it must also hold the settings the checklist ran with.
        if let (Some(_), Ok(planned)) = (baseline_table(root)?, &planned) {
            let source = root.join(super::BASELINE);
            super::design_record::check_against_baseline(root, &r, &checklist_config(root)?, planned, &source)?;
        }
        return Ok((r.design, true, r.variants));
    }
    let mut labels = planned.unwrap_or_default();
    labels.extend(found.into_iter().filter(|f| !labels.contains(f)).collect::<Vec<_>>());
    let design = Design::new(&checklist_config(root)?, val_images, labels.len());
    Ok((design, false, labels))
}

/// The designs a checklist's record replaced (`--redesign`), in words.
fn replaced_designs(record: Option<&Record>) -> Vec<String> {
    let looks = |d: &Design| d.looks().iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    record
        .map(Record::superseded)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            format!(
                "looks at {} seeds, alpha {}, {} variants",
                looks(d),
                d.alpha,
                d.comparisons
            )
        })
        .collect()
}

/// Results are judged only with settings a record holds: the design fixed at the first look
/// (`design.json`, not retired) or the settings the checklist last ran with (`baseline.toml`).
/// Without either, while trials have results, the alpha, margin and plan that judged them are
/// unknown, and judging them with the defaults could reverse a verdict: refused, naming both.
pub(crate) fn require_settings_record(root: &Path, trials: &[Trial]) -> crate::Result<()> {
    let recorded = super::design_record::read(root)?.is_some_and(|r| !r.retired)
        || std::fs::symlink_metadata(root.join(super::BASELINE)).is_ok();
    let results = trials
        .iter()
        .any(|t| root.join(&t.dir).join(darkmagic_base::rundir::RESULT).exists());
    if recorded || !results {
        return Ok(());
    }
    Err(crate::Error::RunDir {
        path: root.join(super::BASELINE),
        message: format!(
            "is missing, and so is {}, while trials here have results: the settings that judged them are \
             unknown. Restore them, fix a new design over these trials with --redesign, or use another --out directory",
            super::design_record::FILE
        ),
    })
}

/// The sizes of the held-out splits, which every trial of a checklist shares (one data set, one
/// split): the first trial's that records each, to hold the others to.
#[derive(Default)]
struct SharedSplits {
    val: Option<(usize, std::path::PathBuf)>,
    test: Option<(usize, std::path::PathBuf)>,
}

impl SharedSplits {
    /// Refuses `o` (trial `t`'s outcome) when it counts another split size than an earlier
    /// trial did (failed runs, and records from before the test count, record none).
    fn check(&mut self, root: &Path, t: &Trial, o: &SeedOutcome) -> crate::Result<()> {
        let counts = [
            ("val_images", &mut self.val, (o.val_images > 0).then_some(o.val_images)),
            ("test_images", &mut self.test, o.test_images),
        ];
        for (field, first, n) in counts {
            match (first.as_ref(), n) {
                (Some((m, dir)), Some(n)) if n != *m => {
                    return Err(crate::Error::RunDir {
                        path: root.join(&t.dir).join(darkmagic_base::rundir::RESULT),
                        message: format!(
                            "{field} = {n}, where {} counts {m}: the checklist's trials share one data set and split, \
                             so one of the records was edited or is from another run",
                            dir.display()
                        ),
                    });
                }
                (None, Some(n)) => *first = Some((n, t.dir.clone())),
                _ => {}
            }
        }
        Ok(())
    }
}

/// An arm's seeds ran with the values its tuning chose (`Trial::tuned`): where the tuning runs
/// here choose otherwise, or choose nothing, one of them was deleted or edited after the seeds
/// ran, and the report would show a choice the seeds never trained with.
fn check_tuned_seeds(root: &Path, trials: &[&Trial], tuning: &[ArmTuning]) -> crate::Result<()> {
    for t in trials.iter().filter(|t| !t.tuned.is_empty()) {
        let chosen = tuning
            .iter()
            .find(|a| a.label == t.arm.label())
            .and_then(|a| Some(&a.candidates[a.chosen?].values));
        if chosen != Some(&t.tuned) {
            let show = |v: &toml::Table| {
                v.iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(crate::Error::RunDir {
                path: root.join(&t.dir).join("trial.json"),
                message: format!(
                    "ran with {}, but the tuning runs here choose {}: a tuning run of `{}` was deleted or edited after \
                     its seeds ran; restore it, or use another --out directory",
                    show(&t.tuned),
                    chosen.map_or("nothing (some are missing or unfinished)".into(), show),
                    t.arm.label()
                ),
            });
        }
    }
    Ok(())
}

/// Whether any trial in `root` has a result a verdict can use (one that did not fail).
pub(crate) fn any_judged(root: &Path) -> crate::Result<bool> {
    for t in read_trials(root)? {
        let result = darkmagic_base::rundir::RunDir::open(&root.join(&t.dir)).read_result()?;
        if result.is_some_and(|r| r.status != Status::Failed) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `report` reads results only beside the `baseline.toml` they were run from: without it the
/// trials' recipes cannot be held to their arms (`trial_problem`), so an edited trial would be
/// judged unseen. A rerun of the checklist checks them against its own recipe and writes the file
/// again.
pub fn require_baseline_record(root: &Path, summary: &Summary) -> crate::Result<()> {
    if summary.design.runs == 0 || std::fs::symlink_metadata(root.join(super::BASELINE)).is_ok() {
        return Ok(());
    }
    Err(crate::Error::RunDir {
        path: root.join(super::BASELINE),
        message: "is missing while trials here have results: their recipes cannot be checked against the \
                  checklist's settings. Restore it, or rerun the checklist's command, which checks every trial \
                  against its recipe and writes the file again"
            .into(),
    })
}

/// A trial that only a round after the first look plans (a variant's or the baseline's seed
/// index at or past `checklist.seeds`, or the combined recipe's): its folder proves that a look
/// fixed the design (the design is written at each look before the next round is planned), even
/// where `design.json` and `summary.json` are both gone. None where every trial is of the first
/// round.
pub(crate) fn later_round_trial(root: &Path) -> crate::Result<Option<std::path::PathBuf>> {
    let first = checklist_config(root)?.seeds;
    Ok(read_trials(root)?
        .into_iter()
        .find(|t| t.tune.is_none() && (t.seed_index >= first || matches!(t.arm, Arm::Combined { .. })))
        .map(|t| root.join(t.dir)))
}

/// Every trial started under the settings that judge it: the digest each records
/// (`Trial::settings`) must be that of `baseline.toml`'s `[checklist]` section over the plan the
/// design fixed (`design.json`'s variants; before the first look, the plan of `baseline.toml`).
/// The two records edited together after the trials ran, consistently, would otherwise judge
/// the trials under settings they never had. Trials from before the digest are not held to it.
/// `plan`: `baseline.toml`'s, None where it cannot be read (named where the trials are checked).
fn check_settings(
    root: &Path,
    trials: &[Trial],
    config: &ChecklistConfig,
    plan: Option<&[Variant]>,
) -> crate::Result<()> {
    if baseline_table(root)?.is_none() {
        return Ok(()); // refused elsewhere where it matters (`require_baseline_record`)
    }
    let labels = match super::design_record::read(root)?.filter(|r| !r.retired) {
        Some(r) => r.variants,
        None => match plan {
            Some(plan) => plan.iter().map(Variant::label).collect(),
            None => return Ok(()),
        },
    };
    let now = super::design_record::settings_digest(config, &labels);
    // Only trials with a result a verdict uses: the others are stamped again when they run.
    let mut stale = None;
    for t in trials {
        let Some(then) = t.settings.as_ref().filter(|s| **s != now) else {
            continue;
        };
        let result = darkmagic_base::rundir::RunDir::open(&root.join(&t.dir)).read_result()?;
        if result.is_some_and(|r| r.status != Status::Failed) {
            stale = Some((t, then));
            break;
        }
    }
    let Some((t, then)) = stale else {
        return Ok(());
    };
    Err(crate::Error::RunDir {
        path: root.join(&t.dir).join("trial.json"),
        message: format!(
            "was started under other checklist settings (digest {then}) than {} and {} hold now (digest {now}: \
             checklist.seeds, max_seeds, round_seeds, alpha, margin and the plan): they were edited after the trial \
             ran. Restore them, or fix a new design over these trials with `darkmagic checklist --redesign`",
            super::BASELINE,
            super::design_record::FILE
        ),
    })
}

/// Summarises every trial found under `root`, judging the variants (and the combined recipe)
/// with the checklist's sequential design.
pub fn analyze(root: &Path) -> crate::Result<Summary> {
    let all = read_trials(root)?;
    require_settings_record(root, &all)?;
    let (tuning, trials): (Vec<&Trial>, Vec<&Trial>) = all.iter().partition(|t| t.tune.is_some());
    let config = checklist_config(root)?;
    let baseline = darkmagic_base::recipe::Recipe::load(Some(&root.join(super::BASELINE)), &[]).ok();
    let plan = baseline.as_ref().and_then(|b| super::plan::variants(b).ok());
    check_settings(root, &all, &config, plan.as_deref())?;
    // Every trial held to its definition, as a resume holds it (`trial_problem`); tuning runs
    // also to the tuning seeds `checklist.tune.seeds` plans.
    for t in &all {
        // (An arm that is not planned is named below, against the design that judges it.)
        let planned = |plan: &Vec<Variant>| match &t.arm {
            Arm::Variant(_) => plan.iter().any(|p| p.label() == t.arm.label()),
            _ => true,
        };
        let problem = match (&baseline, plan.as_ref().filter(|p| planned(p))) {
            _ if t.tune.is_some() && t.seed_index >= config.tune.seeds => Some((
                "trial.json",
                format!(
                    "tuning seed index {}, where checklist.tune.seeds plans {}",
                    t.seed_index, config.tune.seeds
                ),
            )),
            (Some(b), Some(plan)) => super::trial_problem(root, b, plan, t)?,
            _ => None,
        };
        if let Some((file, what)) = problem {
            return Err(crate::Error::RunDir {
                path: root.join(&t.dir).join(file),
                message: format!("{what} (checked against {}, the checklist's settings)", super::BASELINE),
            });
        }
    }
    let tuning = tuning_summary(root, &tuning, config.tune.seeds)?;
    check_tuned_seeds(root, &trials, &tuning)?;
    let mut arms: Vec<(Arm, Vec<SeedOutcome>)> = Vec::new();
    // The combined recipe's confirmation at its own length (`checklist.confirm_epochs`): its
    // baseline seeds pair with the combined recipe only, never with the variants' trials.
    let confirm_epochs = trials.iter().filter_map(|t| t.epochs).max();
    let confirm_seeds: Vec<u64> = trials
        .iter()
        .filter(|t| t.arm == Arm::Baseline && t.epochs.is_some())
        .map(|t| t.seed)
        .collect();
    let mut shared = SharedSplits::default();
    for t in trials {
        let o = outcome(root, t)?;
        shared.check(root, t, &o)?;
        match arms.iter_mut().find(|(a, _)| a.label() == t.arm.label()) {
            // One arm, one recipe: the combined recipe's seeds must record the same overrides
            // (a variant's are held to the plan).
            Some((a, _)) if *a != t.arm => {
                return Err(crate::Error::RunDir {
                    path: root.join(&t.dir).join("trial.json"),
                    message: format!(
                        "records other overrides for `{}` than its other seeds ({}, where they record {}): the \
                         record was edited; restore it, or remove the trial's folder",
                        t.arm.label(),
                        super::values(&t.arm.overrides()),
                        super::values(&a.overrides())
                    ),
                });
            }
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
    let all_seeds: Vec<&SeedOutcome> = arms.iter().flat_map(|(_, s)| s).collect();
    let runs = all_seeds.iter().filter(|s| s.status.is_some()).count();
    let resolution = resolution(&all_seeds);
    let val_images = all_seeds
        .iter()
        .map(|s| s.val_images)
        .filter(|&n| n > 0)
        .min()
        .unwrap_or(0);
    let labels: Vec<String> = arms
        .iter()
        .filter(|(a, _)| matches!(a, Arm::Variant(_)))
        .map(|(a, _)| a.label())
        .collect();
    let record = super::design_record::read(root)?;
    let replaced = replaced_designs(record.as_ref());
    let (design, fixed, planned) = design_of(root, record, val_images, labels.clone())?;
    // A variant the fixed design plans has had its first round: one without a trial folder
    // (deleted, or not yet run after a --redesign) is listed with no seeds, never left out.
    if fixed && let Some(plan) = &plan {
        let missing = plan
            .iter()
            .filter(|v| planned.contains(&v.label()) && !labels.contains(&v.label()));
        arms.extend(
            missing
                .map(|v| (Arm::Variant(v.clone()), Vec::new()))
                .collect::<Vec<_>>(),
        );
    }
    let variant_arms: Vec<&(Arm, Vec<SeedOutcome>)> =
        arms.iter().filter(|(a, _)| matches!(a, Arm::Variant(_))).collect();
    if let Some(stray) = labels.iter().find(|l| fixed && !planned.contains(l)) {
        // Its error was never planned for: judging it would spend error the design does not have.
        let trial = all
            .iter()
            .find(|t| t.arm.label() == *stray)
            .expect("a found arm has a trial");
        return Err(crate::Error::RunDir {
            path: root.join(&trial.dir).join("trial.json"),
            message: format!(
                "`{stray}` is not among the {} variants design.json planned; remove its folder, or fix a design over \
                 it with `darkmagic checklist --redesign`",
                planned.len()
            ),
        });
    }
    // Each arm's seeds are those the design plans: a variant's indices 0 to max - 1, the
    // combined recipe's the fresh ones after them (max to 2 max - 1), the baseline's both. A
    // trial copied to another index would add a seed no look planned (a combined trial among the
    // variants' seeds had the checklist train new seeds without end).
    let planned_range = |arm: &Arm| match arm {
        Arm::Variant(_) => 0..design.max,
        Arm::Combined { .. } => design.max..2 * design.max,
        Arm::Baseline => 0..2 * design.max,
    };
    if let Some(t) = all
        .iter()
        .find(|t| fixed && t.tune.is_none() && !planned_range(&t.arm).contains(&t.seed_index))
    {
        let range = planned_range(&t.arm);
        return Err(crate::Error::RunDir {
            path: root.join(&t.dir).join("trial.json"),
            message: format!(
                "seed index {} of `{}`: the design plans its seeds at indices {} to {}; remove its folder",
                t.seed_index,
                t.arm.label(),
                range.start,
                range.end - 1
            ),
        });
    }
    // Planned variants without a trial yet hold up the look like the others (Holm's levels
    // depend on every open variant): `absent` empty arms join the group's.
    let judge = |design: &Design, group: &[&(Arm, Vec<SeedOutcome>)], absent: usize| {
        let mut diffs: Vec<Vec<f64>> = group.iter().map(|(_, s)| paired_prefix(s, &base_seeds)).collect();
        let mut stopped: Vec<bool> = group.iter().map(|(_, s)| status_verdict(s).is_some()).collect();
        diffs.extend(std::iter::repeat_n(Vec::new(), absent));
        stopped.extend(std::iter::repeat_n(false, absent));
        let (mut decisions, pooled) = design.decide(&diffs, &stopped, resolution);
        decisions.truncate(group.len());
        let arms = group
            .iter()
            .zip(decisions)
            .map(|((arm, seeds), d)| summarize_arm(arm, seeds.clone(), Some(&base_seeds), Some(d)))
            .collect::<Vec<ArmSummary>>();
        (arms, pooled)
    };
    let absent = planned
        .iter()
        .filter(|p| !variant_arms.iter().any(|(a, _)| a.label() == **p))
        .count();
    let (mut summaries, pooled_sd) = judge(&design, &variant_arms, absent);
    for a in &mut summaries {
        a.worst_seed = worst_seed(&paired_by_seed(&a.seeds, &base_seeds), pooled_sd);
    }
    let combined_arm: Vec<&(Arm, Vec<SeedOutcome>)> =
        arms.iter().filter(|(a, _)| matches!(a, Arm::Combined { .. })).collect();
    let confirmation = Design {
        comparisons: 1,
        ..design.clone()
    };
    let combined = judge(&confirmation, &combined_arm, 0).0.pop();
    let variants: Vec<Variant> = variant_arms
        .iter()
        .filter_map(|(a, _)| match a {
            Arm::Variant(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    summaries.sort_by(|a, b| {
        b.diff
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.diff.unwrap_or(f64::NEG_INFINITY))
            .then(a.label.cmp(&b.label))
    });
    let combined_variants: Vec<String> = winners(&summaries, &variants).iter().map(Variant::label).collect();
    // Parts and whole at different lengths do not measure additivity.
    let interaction = combined.as_ref().filter(|_| confirm_epochs.is_none()).and_then(|c| {
        let parts: Vec<&ArmSummary> = summaries
            .iter()
            .filter(|a| combined_variants.contains(&a.label))
            .collect();
        interaction(c, &parts, &base_seeds)
    });
    let combined_test = combined.as_ref().and_then(|c| combined_test(c, &base_seeds));
    let judged = summaries.iter().chain(&combined).filter_map(|a| a.decision.as_ref());
    let design_summary = DesignSummary {
        alpha: design.alpha,
        margin: design.margin,
        rounds: judged.map(|d| d.look).max().unwrap_or(0),
        runs,
        // Every arm at max_seeds, and the baseline again on the combined recipe's fresh seeds.
        runs_at_max_seeds: (arms.len() + usize::from(combined.is_some())) * design.max,
        looks: design.looks(),
        spent: design.spent(),
        comparisons: design.comparisons,
        replaced,
        fixed,
        pooled_sd,
    };
    let (confirming, short): (Vec<SeedOutcome>, Vec<SeedOutcome>) = base_seeds
        .iter()
        .cloned()
        .partition(|s| confirm_seeds.contains(&s.seed));
    let baseline = summarize_arm(&Arm::Baseline, short, None, None);
    let confirm_baseline = confirm_epochs.map(|e| ArmSummary {
        label: format!("baseline at {e} epochs"),
        ..summarize_arm(&Arm::Baseline, confirming, None, None)
    });
    let metric = metric_name(root);
    let notes = headroom_note(&baseline, design.margin, &metric)
        .into_iter()
        .chain(pending_note(root, &all))
        .chain(lost_combined_note(&all, design.max))
        .collect();
    Ok(Summary {
        metric,
        tuning,
        baseline,
        trials: summaries,
        combined_variants,
        combined,
        confirm_epochs,
        confirm_baseline,
        interaction,
        combined_test,
        design: design_summary,
        notes,
    })
}

/// A note naming the trials that have no result: running, not run yet, or their `result.json`
/// deleted (a rerun trains them again); so that a seed missing from a verdict is never unnamed.
fn pending_note(root: &Path, trials: &[Trial]) -> Option<String> {
    let pending: Vec<String> = trials
        .iter()
        .filter(|t| std::fs::symlink_metadata(root.join(&t.dir).join(darkmagic_base::rundir::RESULT)).is_err())
        .map(|t| t.dir.display().to_string())
        .collect();
    let (first, more) = pending.split_at(pending.len().min(10));
    (!pending.is_empty()).then(|| {
        format!(
            "{} trial(s) have no result and are left out of the verdicts: {}{} (running, not run yet, or their \
             result.json was deleted; rerunning the checklist trains them).",
            pending.len(),
            first.join(", "),
            if more.is_empty() {
                String::new()
            } else {
                format!(" and {} more", more.len())
            }
        )
    })
}

/// A note when the baseline has trials on the fresh seeds (indices from `max` on), which run
/// only beside the combined recipe's confirmation, and the combined recipe has none: its folder
/// was deleted (a rerun trains it again).
fn lost_combined_note(trials: &[Trial], max: usize) -> Option<String> {
    let fresh: Vec<String> = trials
        .iter()
        .filter(|t| t.arm == Arm::Baseline && t.tune.is_none() && t.seed_index >= max)
        .map(|t| t.dir.display().to_string())
        .collect();
    let combined = trials.iter().any(|t| matches!(t.arm, Arm::Combined { .. }));
    (!fresh.is_empty() && !combined).then(|| {
        format!(
            "The baseline's trials on the fresh seeds ({}) ran beside a combined recipe whose trials are not here \
             (trials/combined deleted?): its confirmation is missing; rerunning the checklist trains it again.",
            fresh.join(", ")
        )
    })
}

/// A note when the baseline's accuracy is closer to 100% than the margin: no variant can help
/// by the margin there.
fn headroom_note(baseline: &ArmSummary, margin: f64, metric: &str) -> Option<String> {
    let room = 1.0 - baseline.mean?;
    (metric == "final_val_acc" && room < margin).then(|| {
        format!(
            "The baseline's mean accuracy, {:.2}%, leaves {:.2} pp to 100%, less than the margin ({:.2} pp): \
             no variant can help by the margin on this data, so 'helps' can only be 'by less than the margin' here, \
             and 'equivalent' only says that no variant hurts by the margin (its upper side holds by construction).",
            100.0 * baseline.mean.unwrap_or_default(),
            100.0 * room,
            100.0 * margin
        )
    })
}

/// The combined recipe's difference on its seeds against the sum of its parts' differences on
/// the first seeds every part ran (summed seed by seed, so the parts' shared baseline is
/// accounted for). None without a seed on each side.
fn interaction(combined: &ArmSummary, parts: &[&ArmSummary], baseline: &[SeedOutcome]) -> Option<Interaction> {
    let dc = paired_prefix(&combined.seeds, baseline);
    let per_part: Vec<Vec<f64>> = parts.iter().map(|p| paired_prefix(&p.seeds, baseline)).collect();
    let n = per_part.iter().map(Vec::len).min()?;
    if dc.is_empty() || n == 0 {
        return None;
    }
    let sums: Vec<f64> = (0..n).map(|i| per_part.iter().map(|d| d[i]).sum()).collect();
    let (c, p) = (mean(&dc), mean(&sums));
    Some(Interaction {
        combined: c,
        parts: p,
        estimate: c - p,
        combined_seeds: dc.len(),
        parts_seeds: n,
    })
}

#[cfg(test)]
mod tests;
