//! The checklist: the baseline recipe and one-factor variants, several seeds each, run in
//! parallel, analysed pair by pair, then the combined recipe built and confirmed.
//!
//! Layout of a checklist directory (the run dirs are the only truth; everything else is derived):
//! - `baseline.toml`: the recipe the checklist varies (with its `[checklist]` section),
//! - `trials/<arm>/seed-<k>/`: one run dir per trial, plus `trial.json` (its arm and seed),
//! - `summary.json`, `summary.csv`, `summary.md`, `report.html`: written by `report`,
//! - `checklist.lock`: held while a checklist runs here.
pub mod analysis;
pub mod lock;
pub mod plan;

use crate::data;
use crate::error::{Error, Result};
use crate::executor::{Executor, Job};
use crate::recipe::Recipe;
use crate::train::rundir::{self, RunDir, Status};
use analysis::Summary;
use lock::Lock;
use plan::{Arm, Trial};
use std::path::Path;

pub const BASELINE: &str = "baseline.toml";

/// The first-phase trials: the baseline and every variant, each with every seed.
pub fn trials(baseline: &Recipe) -> Result<Vec<Trial>> {
    let variants = plan::variants(baseline)?;
    let arms = std::iter::once(Arm::Baseline).chain(variants.into_iter().map(Arm::Variant));
    Ok(arms.flat_map(|arm| seeded(arm, baseline)).collect())
}

fn seeded(arm: Arm, baseline: &Recipe) -> Vec<Trial> {
    (0..baseline.checklist.seeds)
        .map(|k| Trial::new(arm.clone(), baseline.seed, k))
        .collect()
}

/// Writes a trial's `recipe.toml` and `trial.json`, unless it already finished. Returns the job
/// to run, or None when the trial is complete (completed or diverged).
fn prepare(root: &Path, baseline: &Recipe, trial: &Trial) -> Result<Option<Job>> {
    let recipe = trial.recipe(baseline)?;
    let dir = RunDir::create(&root.join(&trial.dir))?;
    if let Ok(existing) = Recipe::load(Some(&dir.file(rundir::RECIPE)), &[])
        && !same_run(&existing, &recipe)
    {
        if matches!(trial.arm, Arm::Combined { .. }) {
            // The combined recipe is derived from results; when they changed, start it afresh.
            std::fs::remove_dir_all(&dir.path).map_err(|e| Error::io(&dir.path, e))?;
            return prepare(root, baseline, trial);
        }
        return Err(Error::RunDir {
            path: dir.file(rundir::RECIPE),
            message: "holds a different recipe than this checklist would run; use another directory".into(),
        });
    }
    if let Some(r) = dir.read_result()?
        && matches!(r.status, Status::Completed | Status::Diverged)
    {
        return Ok(None);
    }
    rundir::write_atomic(&dir.file(rundir::RECIPE), recipe.to_toml().as_bytes())?;
    let json = serde_json::to_string_pretty(trial).expect("trial serializes");
    rundir::write_atomic(&dir.file("trial.json"), json.as_bytes())?;
    Ok(Some(Job {
        dir: dir.path.clone(),
        label: format!("{} seed {}", trial.arm.label(), trial.seed_index),
        epochs: recipe.train.epochs,
    }))
}

/// Whether two recipes describe the same training run: they may differ only in where and how
/// fast it runs (`train.threads`, `train.device`), which executors choose.
fn same_run(a: &Recipe, b: &Recipe) -> bool {
    let mut a = a.clone();
    a.train.threads = b.train.threads;
    a.train.device = b.train.device;
    a == *b
}

fn run_trials(root: &Path, baseline: &Recipe, trials: &[Trial], exec: &mut dyn Executor) -> Result<()> {
    let jobs: Vec<Job> = trials
        .iter()
        .map(|t| prepare(root, baseline, t))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if !jobs.is_empty() {
        exec.run_all(&jobs)?;
    }
    Ok(())
}

/// Runs (or resumes) the checklist of `baseline` in `root` and writes the report.
pub fn run(baseline: &Recipe, root: &Path, exec: &mut dyn Executor) -> Result<Summary> {
    let _lock = Lock::acquire(root)?;
    rundir::write_atomic(&root.join(BASELINE), baseline.to_toml().as_bytes())?;
    run_trials(root, baseline, &trials(baseline)?, exec)?;
    let summary = analysis::analyze(root)?;
    if baseline.checklist.combine && !summary.combined_variants.is_empty() {
        let variants = plan::variants(baseline)?
            .into_iter()
            .filter(|v| summary.combined_variants.contains(&v.label()))
            .collect();
        run_trials(root, baseline, &seeded(Arm::Combined { variants }, baseline), exec)?;
    }
    let summary = analysis::analyze(root)?;
    crate::report::write(root, &summary)?;
    Ok(summary)
}

/// What `--dry-run` prints: every trial, what it changes, and the estimated compute.
pub fn describe(baseline: &Recipe, images_per_sec: Option<f64>, parallel: usize) -> Result<String> {
    let trials = trials(baseline)?;
    let dataset = data::load(&baseline.data, baseline.augment.interpolation)?;
    let n_train = dataset.train.len() - (dataset.train.len() as f64 * baseline.data.val_fraction).round() as usize;
    let mut out = String::new();
    let mut total_images = 0f64;
    let mut arms: Vec<&Trial> = trials.iter().filter(|t| t.seed_index == 0).collect();
    arms.dedup_by_key(|t| t.arm.label());
    out.push_str(&format!("{:<36} {:>6} {:>7}  changes\n", "trial", "seeds", "epochs"));
    for t in &arms {
        let r = t.recipe(baseline)?;
        let steps = (n_train / r.train.batch_size).max(1);
        // In floating point: a product of counts can pass usize::MAX.
        total_images += [baseline.checklist.seeds, r.train.epochs, steps, r.train.batch_size]
            .iter()
            .map(|&n| n as f64)
            .product::<f64>();
        let changes: Vec<String> = t.arm.overrides().iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let changes = if changes.is_empty() {
            "(baseline)".to_string()
        } else {
            changes.join(", ")
        };
        out.push_str(&format!(
            "{:<36} {:>6} {:>7}  {changes}\n",
            t.arm.label(),
            baseline.checklist.seeds,
            r.train.epochs
        ));
    }
    out.push_str(&format!(
        "\n{} trials ({} arms x {} seeds), {:.3e} training images",
        trials.len(),
        arms.len(),
        baseline.checklist.seeds,
        total_images
    ));
    if baseline.checklist.combine {
        out.push_str(&format!(
            ", then up to {} confirmation trials of the combined recipe",
            baseline.checklist.seeds
        ));
    }
    out.push('\n');
    if let Some(ips) = images_per_sec {
        let secs = total_images / (ips * parallel as f64);
        out.push_str(&format!(
            "estimated time: {:.1} min at {ips:.0} images/s per trial (measured on the baseline's architecture, random data), {parallel} in parallel\n",
            secs / 60.0
        ));
    }
    Ok(out)
}

/// What `--status` prints: each trial's state as its run dir records it.
pub fn status_text(root: &Path) -> Result<String> {
    let trials = analysis::read_trials(root)?;
    if trials.is_empty() {
        return Err(Error::RunDir {
            path: root.to_path_buf(),
            message: "no checklist trials here".into(),
        });
    }
    let mut out = format!("{:<36} {:>5}  status\n", "trial", "seed");
    let mut counts = std::collections::BTreeMap::new();
    for t in &trials {
        let dir = RunDir {
            path: root.join(&t.dir),
        };
        let epochs = Recipe::load(Some(&dir.file(rundir::RECIPE)), &[]).map_or(0, |r| r.train.epochs);
        let state = match dir.read_result()? {
            Some(r) => format!("{:?}", r.status).to_lowercase(),
            None => match dir.read_metrics()?.len() {
                0 => "pending".to_string(),
                n => format!("running (epoch {n}/{epochs})"),
            },
        };
        *counts
            .entry(state.split(' ').next().unwrap_or_default().to_string())
            .or_insert(0) += 1;
        out.push_str(&format!("{:<36} {:>5}  {state}\n", t.arm.label(), t.seed_index));
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out.push_str(&format!("\n{} trials: {}\n", trials.len(), summary.join(", ")));
    Ok(out)
}
