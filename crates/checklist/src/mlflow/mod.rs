//! The checklist in MLflow: one experiment per checklist directory, a parent run for the
//! checklist, and one nested run per trial with the arm's overrides as params, every epoch's
//! figures as metrics at their step (the TensorBoard scalars' names), and its status; at the end
//! each trial's run gets its arm's verdict, interval and seeds as tags, and the parent run the
//! report and summaries as artifacts.
//!
//! The run dirs stay the truth: what was sent is recorded in `mlflow.json` in the checklist
//! directory (per server: which run each trial is, how many epochs went), so a lost server
//! costs nothing, and sending to another server and back sends nothing twice. The [`Watcher`] sends new epochs while the checklist runs; a later
//! [`Tracker::sync`] (at the end, or `darkmagic report DIR --mlflow URI`) sends the rest.
pub mod client;

use crate::analysis::{self, ArmSummary, Summary};
use crate::plan::Trial;
use client::{Client, Metric};
use darkmagic_base::error::{Error, Result};
use darkmagic_base::rundir::{RunDir, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What was sent, in the checklist directory.
pub const STATE: &str = "mlflow.json";

/// The tag of a checklist's parent run: the checklist directory (absolute).
const CHECKLIST_TAG: &str = "darkmagic.checklist";

/// The tag of a trial's run: its folder under the checklist directory.
const TRIAL_DIR_TAG: &str = "darkmagic.trial_dir";

/// How often the [`Watcher`] sends new epochs while a checklist runs.
pub const SEND_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The files of a checklist sent as the parent run's artifacts (those that exist).
const ARTIFACTS: [&str; 4] = ["report.html", "summary.md", "summary.csv", "summary.json"];

/// `mlflow.json`: what was sent to each server (records written before it held one server's,
/// the [`State`] alone).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Record {
    Servers { servers: Vec<State> },
    One(State),
}

/// What one server holds: its address, the experiment, the parent run, and each trial's run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct State {
    uri: String,
    experiment: String,
    parent: String,
    parent_artifacts: String,
    /// Trial dir (relative to the checklist root) -> its run.
    runs: BTreeMap<PathBuf, TrialRun>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct TrialRun {
    id: String,
    /// Epochs of metrics.jsonl sent so far.
    epochs: usize,
    /// The final result was sent and the run ended.
    ended: bool,
    /// The status of the result sent (`result.json`'s); None in records written before it was
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

/// A checklist directory tied to a tracking server.
pub struct Tracker {
    client: Client,
    root: PathBuf,
    state: State,
    /// What was sent to the other servers this checklist was sent to, kept in `mlflow.json`.
    others: Vec<State>,
}

impl Tracker {
    /// Connects to the server at `uri` for the checklist in `root`: finds or creates the
    /// experiment and the parent run (reusing those of `mlflow.json` when it names the same
    /// server and they still exist). An unreachable or refusing server is an error naming it.
    pub fn start(uri: &str, root: &Path) -> Result<Tracker> {
        let client = Client::new(uri)?;
        // The experiment is named by the absolute path: `report runs/x` and the checklist that
        // ran in /home/me/runs/x must find the same one.
        let root = &std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        let (mine, others): (Vec<State>, Vec<State>) =
            read_states(root)?.into_iter().partition(|s| s.uri == client.base);
        let state = mine.into_iter().next().unwrap_or_default();
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let mut tracker = Tracker {
            client,
            root: root.to_path_buf(),
            state,
            others,
        };
        tracker.reconcile()?;
        tracker.check_trial_runs()?;
        tracker.save()?;
        Ok(tracker)
    }

    /// Makes sure the server still holds the recorded experiment and parent run, before any
    /// send. Where it does not (the first send, a server restarted on an empty store, the
    /// experiment or parent deleted, `mlflow.json` deleted) the checklist's parent run the
    /// server holds is adopted ([`Self::adopt`]) or one is created afresh, and every trial is
    /// sent again under it, the trials that had been sent named on stderr: no trial's run is
    /// ever created under a parent the server lacks, and no trial has two runs.
    fn reconcile(&mut self) -> Result<()> {
        let name = format!("darkmagic {}", self.root.display());
        let experiment = self.client.experiment(&name)?;
        if self.state.experiment == experiment && self.client.has_run(&self.state.parent)? {
            return Ok(());
        }
        if !self.state.runs.is_empty() {
            let resent: Vec<String> = self.state.runs.keys().map(|d| d.display().to_string()).collect();
            crate::executor::local::warn(&format!(
                "warning: mlflow: {} no longer holds this checklist's parent run {} (a server restarted on an empty \
                 store, or the run deleted): a new parent run is created and {} trials sent again: {}",
                self.client.base,
                self.state.parent,
                resent.len(),
                resent.join(", ")
            ));
        }
        let parent = match self.adopt(&experiment)? {
            Some(parent) => parent,
            None => {
                let tags = [(CHECKLIST_TAG.to_string(), self.root.display().to_string())];
                self.client.create_run(&experiment, "checklist", None, &tags)?
            }
        };
        self.state = State {
            uri: self.client.base.clone(),
            experiment,
            parent: parent.id,
            parent_artifacts: parent.artifact_uri,
            runs: BTreeMap::new(),
        };
        self.save()
    }

    /// Holds each trial run `mlflow.json` records to the server's: the run under that id must be
    /// this checklist's run of that trial (its parent and its trial-folder tag). A record that
    /// names another trial's run (ids swapped or edited by hand) or a run the server no longer
    /// lists (deleted) is dropped, the server's runs of those trials deleted, and the trials
    /// sent again, named on stderr: a trial's metrics and verdict never land in another's run.
    fn check_trial_runs(&mut self) -> Result<()> {
        if self.state.runs.is_empty() {
            return Ok(());
        }
        let server = self.client.runs(&self.state.experiment)?;
        let parent = Some(&self.state.parent);
        let ours = |r: &&client::Found| r.tags.get("mlflow.parentRunId") == parent;
        let trial_of = |id: &str| {
            let run = server.iter().filter(ours).find(|r| r.id == id)?;
            run.tags.get(TRIAL_DIR_TAG).cloned()
        };
        let wrong: Vec<String> = (self.state.runs.iter())
            .map(|(dir, run)| (dir.display().to_string(), run))
            .filter(|(dir, run)| trial_of(&run.id).as_ref() != Some(dir))
            .map(|(dir, _)| dir)
            .collect();
        if wrong.is_empty() {
            return Ok(());
        }
        let stale = server
            .iter()
            .filter(ours)
            .filter(|r| r.tags.get(TRIAL_DIR_TAG).is_some_and(|d| wrong.contains(d)));
        for run in stale {
            self.client.delete_run(&run.id)?;
        }
        self.state
            .runs
            .retain(|dir, _| !wrong.contains(&dir.display().to_string()));
        crate::executor::local::warn(&format!(
            "warning: mlflow: {} records runs that {} does not hold as those trials' runs (another trial's \
             run, or deleted): {} trials sent again: {}",
            self.root.join(STATE).display(),
            self.client.base,
            wrong.len(),
            wrong.join(", ")
        ));
        self.save()
    }

    /// The checklist's parent run in `experiment` that this directory has no record of (its
    /// `mlflow.json` deleted, or never written for this server): the latest top-level run tagged
    /// with this checklist. What the trials' runs there hold is not recorded here, so they are
    /// deleted, with any other parent of this checklist, and sent again: each trial then has one
    /// run, under the parent adopted or a new one (None: the server has no such parent).
    fn adopt(&self, experiment: &str) -> Result<Option<client::Run>> {
        let root = self.root.display().to_string();
        let mut runs = self.client.runs(experiment)?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        let is_parent =
            |r: &client::Found| r.tags.get(CHECKLIST_TAG) == Some(&root) && !r.tags.contains_key("mlflow.parentRunId");
        let parent = runs.iter().find(|r| is_parent(r));
        let stale: Vec<&client::Found> = runs
            .iter()
            .filter(|r| Some(&r.id) != parent.map(|p| &p.id))
            .filter(|r| is_parent(r) || r.tags.contains_key(TRIAL_DIR_TAG))
            .collect();
        for run in &stale {
            self.client.delete_run(&run.id)?;
        }
        if parent.is_some() || !stale.is_empty() {
            crate::executor::local::warn(&format!(
                "warning: mlflow: {} holds runs of this checklist that {} does not record: {}{} earlier runs \
                 deleted, every trial sent again",
                self.client.base,
                self.root.join(STATE).display(),
                parent.map_or(String::new(), |p| format!("its parent run {} adopted, ", p.id)),
                stale.len()
            ));
        }
        Ok(parent.map(|p| client::Run {
            id: p.id.clone(),
            artifact_uri: p.artifact_uri.clone(),
        }))
    }

    /// The server's address.
    pub fn uri(&self) -> &str {
        &self.client.base
    }

    /// Sends what the run dirs hold and the server lacks: a run for every trial that started,
    /// its new epochs, and the final result of the finished ones. Stops at the first failure
    /// (what was sent stays recorded).
    pub fn send_trials(&mut self) -> Result<()> {
        self.send(&analysis::read_trials(&self.root)?)
    }

    /// Sends `trials` after checking that the server still holds the parent run ([`Self::reconcile`]).
    fn send(&mut self, trials: &[Trial]) -> Result<()> {
        self.reconcile()?;
        trials.iter().try_for_each(|t| self.send_trial(t))
    }

    /// Sends what `trial`'s run dir holds beyond what was sent; a trial whose run has ended is
    /// not read again.
    fn send_trial(&mut self, trial: &Trial) -> Result<()> {
        let dir = RunDir::open(&self.root.join(&trial.dir));
        let sent = self.state.runs.get(&trial.dir).filter(|r| r.ended);
        if sent.is_some_and(|r| r.status.is_none()) {
            return Ok(());
        }
        let result = dir.read_result()?;
        if let Some(run) = sent {
            if run.status == result.as_ref().map(|r| r.status) {
                return Ok(());
            }
            // The trial ran again since its run ended (a failed trial retried): its run would
            // keep the old end. It is replaced by one run of what the run dir holds now.
            self.client.delete_run(&run.id)?;
            self.state.runs.remove(&trial.dir);
            self.save()?;
        }
        let metrics = dir.read_metrics()?;
        if metrics.is_empty() && result.is_none() {
            return Ok(());
        }
        let mut run = match self.state.runs.get(&trial.dir) {
            Some(r) => r.clone(),
            None => self.create_trial_run(trial)?,
        };
        let now = client::now_ms();
        let new: Vec<Metric> = metrics
            .iter()
            .skip(run.epochs)
            .flat_map(|m| {
                m.scalars()
                    .into_iter()
                    .map(move |(key, value)| Metric::at(key, value, m.epoch, now))
            })
            .collect();
        self.client.log_batch(&run.id, &new, &[], &[])?;
        run.epochs = metrics.len();
        if let Some(result) = result {
            let finals = [
                ("final/val_accuracy", result.final_val_acc),
                ("final/val_accuracy_ema", result.final_val_acc_ema),
                ("final/val_accuracy_tta", result.final_val_acc_tta),
                ("final/test_accuracy", result.test_acc),
            ];
            let finals: Vec<Metric> = finals
                .into_iter()
                .filter_map(|(key, v)| Some(Metric::at(key, v?, result.epochs, now)))
                .collect();
            let status = ("darkmagic.status".to_string(), result.status.name().to_string());
            self.client.log_batch(&run.id, &finals, &[], &[status])?;
            let ended = match result.status {
                Status::Completed | Status::Stopped => "FINISHED",
                Status::Diverged | Status::Failed => "FAILED",
            };
            self.client.end_run(&run.id, ended)?;
            run.ended = true;
            run.status = Some(result.status);
        }
        self.state.runs.insert(trial.dir.clone(), run);
        self.save()
    }

    /// A nested run for `trial`, named like its progress line, with its arm's overrides (and
    /// tuned values) as params.
    fn create_trial_run(&self, trial: &Trial) -> Result<TrialRun> {
        let (factor, variant) = trial.arm.factor_variant();
        let tags = [
            ("darkmagic.arm".to_string(), trial.arm.label()),
            ("darkmagic.factor".to_string(), factor),
            ("darkmagic.variant".to_string(), variant),
            (TRIAL_DIR_TAG.to_string(), trial.dir.display().to_string()),
        ];
        let run = self
            .client
            .create_run(&self.state.experiment, &trial.name(), Some(&self.state.parent), &tags)?;
        let mut params = vec![("seed".to_string(), trial.seed.to_string())];
        let overrides = trial.arm.overrides().into_iter().chain(trial.tuned.clone());
        params.extend(overrides.map(|(k, v)| (k, param_text(&v))));
        self.client.log_batch(&run.id, &[], &params, &[])?;
        Ok(TrialRun {
            id: run.id,
            epochs: 0,
            ended: false,
            status: None,
        })
    }

    /// Sends everything: the trials, then each arm's verdict, interval and seeds as tags of its
    /// trials' runs, the report and summaries (written before) as the parent run's artifacts,
    /// and ends the parent run once every trial has ended. Trials still running (on a cluster,
    /// after `--detach`) leave it running; the resume or `report --mlflow` that finds them
    /// finished ends it.
    pub fn sync(&mut self, summary: &Summary) -> Result<()> {
        let trials = analysis::read_trials(&self.root)?;
        self.send(&trials)?;
        let running = trials
            .iter()
            .any(|t| !self.state.runs.get(&t.dir).is_some_and(|r| r.ended));
        let arms = std::iter::once(&summary.baseline)
            .chain(&summary.trials)
            .chain(&summary.combined);
        for arm in arms {
            let tags = verdict_tags(arm, &summary.metric);
            let runs = trials
                .iter()
                .filter(|t| t.tune.is_none() && t.arm.label() == arm.label)
                .filter_map(|t| self.state.runs.get(&t.dir));
            for run in runs {
                self.client.log_batch(&run.id, &[], &[], &tags)?;
            }
        }
        for name in ARTIFACTS {
            let path = self.root.join(name);
            if path.exists() {
                let bytes = darkmagic_base::files::read_regular(&path, 64 << 20)?;
                self.client.upload(&self.state.parent_artifacts, name, &bytes)?;
            }
        }
        if running {
            return Ok(());
        }
        self.client.end_run(&self.state.parent, "FINISHED")
    }

    /// Trials whose records the server does not have in full, by label, for a warning.
    pub fn unsent(&self) -> Vec<String> {
        let trials = analysis::read_trials(&self.root).unwrap_or_default();
        trials
            .iter()
            .filter(|t| !self.state.runs.get(&t.dir).is_some_and(|r| r.ended))
            .filter(|t| {
                RunDir::open(&self.root.join(&t.dir))
                    .read_result()
                    .is_ok_and(|r| r.is_some())
            })
            .map(Trial::name)
            .collect()
    }

    fn save(&self) -> Result<()> {
        let mut servers = self.others.clone();
        servers.push(self.state.clone());
        servers.sort_by(|a, b| a.uri.cmp(&b.uri));
        let json = serde_json::to_string_pretty(&Record::Servers { servers }).expect("state serializes");
        darkmagic_base::files::write_atomic(&self.root.join(STATE), json.as_bytes())
    }
}

/// The tags of an arm's verdict: the verdict, the mean difference and the interval that decided
/// it (percentage points of `metric`), and the seeds it used.
fn verdict_tags(arm: &ArmSummary, metric: &str) -> Vec<(String, String)> {
    let mut tags = vec![
        ("darkmagic.verdict".to_string(), crate::report::verdict_label(arm)),
        ("darkmagic.seeds".to_string(), arm.seeds.len().to_string()),
        ("darkmagic.metric".to_string(), metric.to_string()),
    ];
    if let Some(d) = arm.diff {
        tags.push(("darkmagic.diff_pp".to_string(), format!("{d:+.3}")));
    }
    if let Some((lo, hi)) = arm.ci {
        let level = arm.ci_level.map_or(String::new(), |l| format!(" ({:.1}%)", l * 100.0));
        tags.push((
            "darkmagic.interval_pp".to_string(),
            format!("[{lo:+.3}, {hi:+.3}]{level}"),
        ));
    }
    tags
}

/// A recipe value as an MLflow param: strings as themselves, anything else as TOML.
fn param_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What `mlflow.json` of the checklist in `root` says was sent, per server; none before the
/// first send. A record that does not parse or that no checklist could have written (see
/// [`State::problem`], a server twice) is an error naming it.
fn read_states(root: &Path) -> Result<Vec<State>> {
    let path = root.join(STATE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(Vec::new());
    }
    let bad = |message: String| Error::RunDir {
        path: path.clone(),
        message: format!("{message}; delete it to send the checklist to MLflow afresh"),
    };
    let bytes = darkmagic_base::files::read_regular(&path, 16 << 20)?;
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let states = match record {
        Record::Servers { servers } => servers,
        Record::One(state) => vec![state],
    };
    let mut uris = std::collections::BTreeSet::new();
    for state in &states {
        if let Some(problem) = state.problem() {
            return Err(bad(problem));
        }
        if !uris.insert(state.uri.as_str()) {
            return Err(bad(format!(
                "server {} is recorded twice",
                darkmagic_base::uri::redacted(&state.uri)
            )));
        }
    }
    Ok(states)
}

impl State {
    /// What makes this record impossible, if anything: runs without a parent, a run id empty or
    /// shared by two trials (one trial's metrics would land in another's run), a trial folder
    /// that is not a relative path under `trials/` (sends read it).
    fn problem(&self) -> Option<String> {
        if !self.runs.is_empty() && (self.parent.is_empty() || self.experiment.is_empty()) {
            return Some("runs are recorded but no experiment or parent run".into());
        }
        for (field, id) in [("experiment", &self.experiment), ("parent", &self.parent)] {
            if !id.is_empty() && !is_id(id) {
                return Some(format!("{field}: {id:?} is not an MLflow id (letters and digits)"));
            }
        }
        // The parent's id counts as taken: a trial sent there would overwrite the parent's metrics.
        let mut ids = std::collections::BTreeSet::from([self.parent.as_str()]);
        for (dir, run) in &self.runs {
            let inside =
                dir.starts_with("trials") && dir.components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Some(format!(
                    "runs: {}: expected a trial folder under trials/",
                    dir.display()
                ));
            }
            if !is_id(&run.id) || !ids.insert(run.id.as_str()) {
                return Some(format!(
                    "runs: {}: run id {:?} is not an MLflow id, or is recorded for another trial or the parent too",
                    dir.display(),
                    run.id
                ));
            }
        }
        None
    }
}

/// Whether `id` can be an MLflow experiment or run id: letters and digits (run ids are 32 hex
/// digits), nothing that would change the request's path.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Sends new epochs every `every` while the checklist runs, on a thread of its own. A failed
/// send is a warning (once per outage), and the checklist goes on.
pub struct Watcher {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Tracker>,
}

impl Watcher {
    pub fn spawn(mut tracker: Tracker, every: std::time::Duration) -> Watcher {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut failing = false;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match tracker.send_trials() {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        crate::executor::local::warn(&format!(
                            "warning: {e}; the checklist goes on, and what was not sent is sent later"
                        ));
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            tracker
        });
        Watcher { stop, thread }
    }

    /// Stops watching and gives the tracker back.
    pub fn stop(self) -> Tracker {
        let _ = self.stop.send(());
        self.thread.join().expect("the MLflow watcher does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mlflow.json` is checked on read: runs without a parent, a run id shared by two trials or
    /// empty, a trial folder outside trials/ are refused by name; a good record reads back.
    #[test]
    fn an_impossible_mlflow_record_is_refused_with_the_trial_named() {
        let root = darkmagic_base::testutil::tempdir("mlflow-state");
        let run = |id: &str| TrialRun {
            id: id.into(),
            epochs: 1,
            ended: true,
            status: Some(Status::Completed),
        };
        let good = State {
            uri: "http://127.0.0.1:5000".into(),
            experiment: "1".into(),
            parent: "p".into(),
            parent_artifacts: "mlflow-artifacts:/1/p/artifacts".into(),
            runs: [
                ("trials/a/seed-0".into(), run("r0")),
                ("trials/a/seed-1".into(), run("r1")),
            ]
            .into(),
        };
        let check = |state: &State| {
            std::fs::write(root.join(STATE), serde_json::to_string(state).unwrap()).unwrap();
            read_states(&root)
                .map(|v| v.into_iter().next())
                .map_err(|e| e.to_string())
        };
        assert_eq!(check(&good), Ok(Some(good.clone())));
        let mut shared = good.clone();
        shared.runs.insert("trials/a/seed-1".into(), run("r0"));
        let e = check(&shared).unwrap_err();
        assert!(
            e.contains("mlflow.json") && e.contains("trials/a/seed-1") && e.contains("\"r0\""),
            "{e}"
        );
        // A trial recorded under the parent's id would overwrite the parent's metrics.
        let mut parental = good.clone();
        parental.runs.insert("trials/a/seed-1".into(), run("p"));
        let e = check(&parental).unwrap_err();
        assert!(e.contains("trials/a/seed-1") && e.contains("or the parent too"), "{e}");
        let mut outside = good.clone();
        outside.runs.insert("../elsewhere".into(), run("r2"));
        assert!(
            check(&outside)
                .unwrap_err()
                .contains("../elsewhere: expected a trial folder under trials/")
        );
        let orphans = State {
            parent: String::new(),
            ..good.clone()
        };
        assert!(check(&orphans).unwrap_err().contains("no experiment or parent run"));
        let escaping = State {
            parent: "../../x".into(),
            ..good.clone()
        };
        assert!(
            check(&escaping)
                .unwrap_err()
                .contains("parent: \"../../x\" is not an MLflow id")
        );
        // Two servers' records read back; one server recorded twice is refused.
        let other = State {
            uri: "http://127.0.0.1:5001".into(),
            ..good.clone()
        };
        let two = Record::Servers {
            servers: vec![good.clone(), other.clone()],
        };
        std::fs::write(root.join(STATE), serde_json::to_string(&two).unwrap()).unwrap();
        assert_eq!(read_states(&root).unwrap(), vec![good.clone(), other]);
        let twice = Record::Servers {
            servers: vec![good.clone(), good.clone()],
        };
        std::fs::write(root.join(STATE), serde_json::to_string(&twice).unwrap()).unwrap();
        assert!(
            read_states(&root)
                .unwrap_err()
                .to_string()
                .contains("http://127.0.0.1:5000 is recorded twice")
        );
        std::fs::remove_file(root.join(STATE)).unwrap();
        assert_eq!(read_states(&root).unwrap(), Vec::new());
    }
}
