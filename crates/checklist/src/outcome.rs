//! One trial's outcome as its run directory records it: status, the accuracies a verdict uses,
//! and why a run that did not complete ended.
use super::plan::Trial;
use darkmagic_base::rundir::{self, RunDir, RunResult, Status};
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
    /// Test images the run counted (None without the count, as in records from before it);
    /// held across trials by the analysis, not reported.
    #[serde(skip)]
    pub test_images: Option<usize>,
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

/// Whether a run of darkmagic's trainer that ended with `status` after `epochs` of the
/// `planned` could have: a completed run trains them all; a diverged one stops inside an epoch
/// before the last (the epoch it diverged in is not recorded); a stopped one stops after an
/// epoch from half the run on, and only with a reference run to stop against
/// (`train.stop_reference`).
fn possible_length(status: Status, epochs: usize, planned: usize, stop_reference: bool) -> bool {
    match status {
        Status::Completed => epochs == planned,
        Status::Diverged => epochs < planned,
        Status::Stopped => stop_reference && 2 * epochs >= planned && epochs <= planned,
        Status::Failed => true,
    }
}

/// A run of darkmagic's trainer that completed, diverged or stopped trained as many epochs of
/// its `recipe.toml` as that status allows ([`possible_length`]), recorded each in
/// `metrics.jsonl` (epoch n on line n), and summarised them in `result.json` (its final, best
/// and EMA/TTA validation accuracies those of the epochs', as `RunResult::from_metrics`
/// computes them; test accuracies only when it completed): records that disagree were edited,
/// or belong to another run. (An unreadable recipe is named where the trial is resumed.)
fn check_epochs(dir: &RunDir, result: &RunResult) -> crate::Result<()> {
    let recipe = darkmagic_base::recipe::Recipe::load_record(&dir.file(rundir::RECIPE)).ok();
    let metrics = dir.read_metrics()?;
    let planned = recipe.as_ref().map_or(result.epochs, |r| r.train.epochs);
    let stop_reference = recipe.as_ref().is_none_or(|r| r.train.stop_reference.is_some());
    let edited = |file: &str, message: String| {
        Err(crate::Error::RunDir {
            path: dir.file(file),
            message: format!("{message}: the records disagree (edited, or from another run)"),
        })
    };
    let status = result.status.name();
    if !possible_length(result.status, result.epochs, planned, stop_reference) || result.epochs != metrics.len() {
        return edited(
            rundir::RESULT,
            format!(
                "epochs = {} in a {status} run whose recipe.toml trains {planned}{} and whose metrics.jsonl records {}",
                result.epochs,
                match (result.status, stop_reference) {
                    (Status::Stopped, false) => " with no train.stop_reference to stop against",
                    _ => "",
                },
                metrics.len()
            ),
        );
    }
    let tested = [
        result.test_acc,
        result.test_acc_tta,
        result.test_acc_ema,
        result.test_top5,
    ];
    if result.status != Status::Completed && tested.iter().any(Option::is_some) {
        return edited(
            rundir::RESULT,
            format!("a test accuracy in a {status} run: only a run that completes is tested"),
        );
    }
    if let Some((line, m)) = metrics.iter().enumerate().find(|(i, m)| m.epoch != i + 1) {
        return edited(
            rundir::METRICS,
            format!(
                "line {}: epoch = {}, where darkmagic records epoch {}",
                line + 1,
                m.epoch,
                line + 1
            ),
        );
    }
    let summary = RunResult::from_metrics(result.status, &metrics, 0.0, String::new(), 0);
    let last = metrics.last();
    let accuracies = [
        ("final_val_acc", result.final_val_acc, summary.final_val_acc),
        ("best_val_acc", result.best_val_acc, summary.best_val_acc),
        (
            "final_val_acc_ema",
            result.final_val_acc_ema,
            last.and_then(|m| m.val_acc_ema),
        ),
        (
            "final_val_acc_tta",
            result.final_val_acc_tta,
            last.and_then(|m| m.val_acc_tta),
        ),
    ];
    let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12,
        (a, b) => a.is_none() && b.is_none(),
    };
    let text = |v: Option<f64>| v.map_or("none".into(), |v| v.to_string());
    if let Some((field, got, want)) = accuracies.into_iter().find(|(_, got, want)| !same(*got, *want)) {
        return edited(
            rundir::RESULT,
            format!(
                "{field} = {}, but metrics.jsonl's epochs give {}",
                text(got),
                text(want)
            ),
        );
    }
    if result.best_epoch != summary.best_epoch {
        let epoch = |e: Option<usize>| e.map_or("none".into(), |e| e.to_string());
        return edited(
            rundir::RESULT,
            format!(
                "best_epoch = {}, but metrics.jsonl's best epoch is {}",
                epoch(result.best_epoch),
                epoch(summary.best_epoch)
            ),
        );
    }
    Ok(())
}

/// A trial's records carry the fields the darkmagic that wrote them writes together: the
/// result's binding to its recipe (`recipe_digest`), the trial's settings digest (`settings`),
/// and from darkmagic's own trainer the test count (`test_images`) and `model.json`'s seal.
/// Records from before them carry none; one present without another was deleted by hand (a
/// record made to look older than it is, to pass the checks those fields make).
fn check_vintage(dir: &RunDir, trial: &Trial, r: &RunResult) -> crate::Result<()> {
    let mut fields = vec![
        (rundir::RESULT, "recipe_digest", r.recipe_digest.is_some()),
        ("trial.json", "settings", trial.settings.is_some()),
    ];
    if r.device != "external" {
        fields.push((rundir::RESULT, "test_images", r.test_images.is_some()));
        if let Some(spec) = dir.read_spec()? {
            fields.push((rundir::MODEL, "digest", spec.digest.is_some()));
        }
    }
    let (Some(has), Some(lacks)) = (fields.iter().find(|f| f.2), fields.iter().find(|f| !f.2)) else {
        return Ok(());
    };
    Err(crate::Error::RunDir {
        path: dir.file(lacks.0),
        message: format!(
            "has no {} while {} has {}: darkmagic writes both, so one was deleted by hand (records from before \
             them carry neither); restore it, or use another --out directory",
            lacks.1, has.0, has.1
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
    if let Some(r) = result.as_ref().filter(|r| r.status != Status::Failed) {
        check_vintage(&dir, trial, r)?;
        if r.device != "external" {
            check_epochs(&dir, r)?;
        }
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
        test_images: result.as_ref().and_then(|r| r.test_images),
        error,
        per_class: Some(trial.dir.join(darkmagic_base::rundir::EVAL).join("val-classes.csv"))
            .filter(|p| root.join(p).is_file()),
    })
}
