//! One trial's outcome as its run directory records it: status, the accuracies a verdict uses,
//! and why a run that did not complete ended.
use super::plan::Trial;
use darkmagic_base::rundir::{RunDir, Status};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    /// The run's per-class validation accuracy (`eval/val-classes.csv`), relative to the
    /// checklist directory, when the run dir has it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub per_class: Option<std::path::PathBuf>,
}

/// Whether the checklist in `root` runs an external trainer (`[external]` in its
/// `baseline.toml`); None for records from before that file.
fn runs_external(root: &Path) -> crate::Result<Option<bool>> {
    let path = root.join(super::BASELINE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let recipe = darkmagic_base::recipe::Recipe::load(Some(&path), &[]);
    Ok(recipe.ok().map(|r| r.external.is_some()))
}

/// A run of darkmagic's trainer that completed trained the epochs of its `recipe.toml` and
/// recorded each in `metrics.jsonl`: a `result.json` that counts otherwise was edited, or
/// belongs to another run. (An unreadable recipe is named where the trial is resumed.)
fn check_epochs(dir: &RunDir, result: &darkmagic_base::rundir::RunResult) -> crate::Result<()> {
    let recipe = darkmagic_base::recipe::Recipe::load(Some(&dir.file(darkmagic_base::rundir::RECIPE)), &[]);
    let recorded = dir.read_metrics()?.len();
    let planned = recipe.map_or(result.epochs, |r| r.train.epochs);
    if result.epochs == planned && result.epochs == recorded {
        return Ok(());
    }
    Err(crate::Error::RunDir {
        path: dir.file(darkmagic_base::rundir::RESULT),
        message: format!(
            "epochs = {} in a completed run whose recipe.toml trains {planned} and whose metrics.jsonl records \
             {recorded}: the record was edited, or belongs to another run",
            result.epochs
        ),
    })
}

/// The outcome of one trial from its run directory; its accuracies (validation and test) are
/// the test-time-augmented ones when the run recorded them, else the EMA weights' when it kept
/// an EMA. A `result.json` that cannot be read or holds impossible values is an error naming
/// the file and the field: a verdict is never computed with the trial silently left out.
pub fn outcome(root: &Path, trial: &Trial) -> crate::Result<SeedOutcome> {
    let dir = RunDir::open(&root.join(&trial.dir));
    let result = dir.read_result()?;
    // Whose accuracies a completed result holds: darkmagic's (fractions) or a trainer's (any
    // finite number); a failed trial records the device it failed on either way.
    if let (Some(r), Some(external)) = (&result, runs_external(root)?)
        && r.status == Status::Completed
        && (r.device == "external") != external
    {
        let why = match external {
            true => "but the checklist runs an external trainer, whose results say device = \"external\"",
            false => "but the checklist's recipe has no [external] trainer: its accuracies are fractions in [0, 1]",
        };
        return Err(crate::Error::RunDir {
            path: dir.file(darkmagic_base::rundir::RESULT),
            message: format!("device = {:?}, {why}: the record was edited", r.device),
        });
    }
    if let Some(r) = result
        .as_ref()
        .filter(|r| r.status == Status::Completed && r.device != "external")
    {
        check_epochs(&dir, r)?;
    }
    let error = result.as_ref().filter(|r| r.status != Status::Completed).and_then(|r| {
        let log = dir.log_tail();
        r.error.clone().or_else(|| {
            log.lines()
                .find(|l| l.starts_with("diverged at step"))
                .map(String::from)
        })
    });
    Ok(SeedOutcome {
        seed: trial.seed,
        status: result.as_ref().map(|r| r.status),
        val_acc: result
            .as_ref()
            .filter(|r| r.status == Status::Completed)
            .and_then(|r| r.final_val_acc_tta.or(r.final_val_acc_ema).or(r.final_val_acc)),
        test_acc: result
            .as_ref()
            .and_then(|r| r.test_acc_tta.or(r.test_acc_ema).or(r.test_acc)),
        epochs: result.as_ref().map_or(0, |r| r.epochs),
        val_images: result.as_ref().map_or(0, |r| r.val_images),
        error,
        per_class: Some(trial.dir.join(darkmagic_base::rundir::EVAL).join("val-classes.csv"))
            .filter(|p| root.join(p).is_file()),
    })
}
