//! One `darkmagic checklist` session around [`crate::run`]: the executor the settings name,
//! the checklist directory's lock, a retired design (`--redesign`), the MLflow tracker that
//! sends trials while they run, the report, and which trials failed. The command line is a thin
//! layer over [`run`]; tests call it too.
use crate::executor::{self, ExecutorKind, Settings};
use crate::mlflow::{self, Tracker};
use crate::{analysis::Summary, lock::Lock};
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::Recipe;
use darkmagic_base::rundir::Status;
use std::path::Path;

/// What a session does besides running the trials.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Fix the design of the current settings over the trials (`--redesign`).
    pub redesign: bool,
    /// Remove the directory's lock first, whoever holds it (`--break-lock`).
    pub break_lock: bool,
    /// The GPUs libtorch sees on this machine, for the local executor's share of trials (the
    /// binary asks libtorch; this crate does not link it).
    pub gpus: usize,
}

/// A session that ran to its end (or, with `--detach`, submitted its round).
pub struct Ended {
    pub summary: Summary,
    /// Trials and tuning runs recorded as failed, as `label seed N` / `label tune K/N`.
    pub failed: Vec<String>,
}

/// Runs (or resumes) the checklist of `baseline` in `out` where `settings` say: takes the
/// directory's lock, starts the MLflow tracker when `checklist.mlflow` names a server, runs the
/// rounds ([`crate::run`]), writes the report, sends the rest to MLflow (a server lost on the
/// way is a warning naming what it lacks) and returns the summary with the trials that failed.
pub fn run(baseline: &Recipe, out: &Path, settings: &Settings, options: Options) -> Result<Ended> {
    settings.check()?;
    let local = settings.local(options.gpus)?;
    if let Some(w) = crate::too_few_seeds(&baseline.checklist) {
        eprintln!("warning: {w}");
    }
    let root = std::path::absolute(out).map_err(|e| Error::io(out, e))?;
    if root.to_str().is_none() {
        // Trials get their run dirs as text (Slurm scripts, Ray job commands, recipe files).
        return Err(Error::flag(
            "--out",
            format!(
                "{} is not valid UTF-8; use a path that is",
                darkmagic_base::error::exact(&root)
            ),
        ));
    }
    if settings.kind == ExecutorKind::Local {
        println!(
            "checklist in {}: {} trials at once, {} threads each",
            out.display(),
            local.parallel,
            local.threads
        );
    }
    let mut exec = executor::build(settings, local, &root)?;
    if options.break_lock {
        Lock::break_lock(&root)?;
    }
    // Taken before the MLflow tracker starts: a checklist refused because another one runs in
    // this directory sends nothing and leaves that one's mlflow.json alone.
    let lock = Lock::acquire(&root)?;
    if options.redesign {
        crate::check_redesign(&root, baseline)?;
    }
    if options.redesign && crate::design_record::retire(&root)? {
        eprintln!(
            "the design in {} is retired: the next look fixes the design of these settings (the report names the one replaced)",
            out.join(crate::design_record::FILE).display()
        );
    }
    let tracker = baseline
        .checklist
        .mlflow
        .as_deref()
        .map(|uri| Tracker::start(uri, &root))
        .transpose()?;
    let watcher = tracker.map(|t| mlflow::Watcher::spawn(t, mlflow::SEND_EVERY));
    let summary = crate::run(baseline, &root, exec.as_mut(), &lock, options.redesign)?;
    crate::report::write(&root, &summary)?;
    if let Some(w) = watcher {
        send_to_mlflow(w.stop(), &summary, out);
    }
    let failed = failed_trials(&summary);
    Ok(Ended { summary, failed })
}

/// The trials (and tuning runs) of `summary` recorded as failed.
pub fn failed_trials(summary: &Summary) -> Vec<String> {
    let arms = summary.arms();
    let tuning = summary
        .tuning
        .iter()
        .flat_map(|t| t.failed.iter().map(move |f| format!("{} {f}", t.label)));
    arms.flat_map(|a| {
        a.seeds
            .iter()
            .filter(|s| s.status == Some(Status::Failed))
            .map(move |s| format!("{} seed {}", a.label, s.seed))
    })
    .chain(tuning)
    .collect()
}

/// Sends the rest of a finished checklist to MLflow; a server lost on the way is a warning that
/// names what it lacks and how to send it later (the checklist itself succeeded).
fn send_to_mlflow(mut tracker: Tracker, summary: &Summary, out: &Path) {
    match tracker.sync(summary) {
        Ok(()) => println!("mlflow: sent to {}", tracker.uri()),
        Err(e) => {
            let unsent = tracker.unsent();
            let trials = if unsent.is_empty() {
                String::new()
            } else {
                format!("{} trial(s) ({}), ", unsent.len(), unsent.join(", "))
            };
            eprintln!(
                "warning: {e}\nnot sent to MLflow: {trials}the verdicts and the report; send them with `darkmagic report {} --mlflow {}`",
                out.display(),
                tracker.uri()
            );
        }
    }
}
