//! The checklist: the baseline recipe and one-factor variants, several seeds each, run in
//! parallel, analysed pair by pair, then the combined recipe built and confirmed.
//!
//! Layout of a checklist directory (the run dirs are the only truth; everything else is derived):
//! - `baseline.toml`: the recipe the checklist varies (with its `[checklist]` section),
//! - `design.json`: the sequential design, fixed at the first look (`design_record`),
//! - `trials/<arm>/seed-<k>/`: one run dir per trial, plus `trial.json` (its arm and seed),
//! - `summary.json`, `summary.csv`, `summary.md`, `report.html`: written by `report`,
//! - `checklist.lock`: held while a checklist runs here.
//!
//! This crate holds no libtorch: the trials run as processes (`darkmagic train`, or a user's
//! trainer through [`external`]) on an [`executor`]; [`report`] writes what the analysis found,
//! [`mlflow`] sends it to a tracking server, and [`session`] is one `darkmagic checklist` around
//! all of it.
pub mod analysis;
pub mod calibration;
pub mod design_record;
pub mod executor;
pub mod external;
pub mod hparams;
pub mod lock;
pub mod mlflow;
pub mod outcome;
pub mod plan;
pub mod report;
pub mod sequential;
pub mod session;
pub mod simulation;
pub mod tuning;

use crate::executor::{Executor, Job};
use analysis::Summary;
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::Recipe;
use darkmagic_base::rundir::{self, RunDir};
use darkmagic_data::fingerprint::Fingerprint;
use lock::Lock;
use plan::{Arm, Trial};
use std::path::Path;

pub const BASELINE: &str = "baseline.toml";
/// The data files' content hashes, cached by path, size and time (`data::fingerprint`), so that
/// a rerun does not read the whole data set again.
pub const DATA_CACHE: &str = "data-fingerprints.json";

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

/// What the trials train on now: the data set's fingerprint and, for an external trainer, that
/// of the files its command names (its scripts), recorded with each trial.
#[derive(Clone, Debug, Default)]
struct Inputs {
    data: Option<Fingerprint>,
    code: Option<Fingerprint>,
    /// The files `code` covers, for messages.
    code_files: Vec<std::path::PathBuf>,
    /// The digest of the checklist's settings (`design_record::settings_digest`).
    settings: String,
}

impl Inputs {
    /// The fingerprints of `baseline`'s data (cached in `root`) and of its external trainer's files.
    fn of(baseline: &Recipe, root: &Path) -> Result<Inputs> {
        let data = darkmagic_data::fingerprint::of(&baseline.data, Some(&root.join(DATA_CACHE)))?;
        let files = baseline
            .external
            .as_ref()
            .map(crate::external::code_files)
            .unwrap_or_default();
        let code = if files.is_empty() {
            None
        } else {
            Some(darkmagic_data::fingerprint::of_files(&files)?)
        };
        let labels: Vec<String> = plan::variants(baseline)?.iter().map(plan::Variant::label).collect();
        Ok(Inputs {
            data,
            code,
            code_files: files,
            settings: design_record::settings_digest(&baseline.checklist, &labels),
        })
    }

    /// Refuses to go on when the data or the trainer's files changed while trials ran (the
    /// trials record the fingerprints taken at the start, and some trained on the new bytes):
    /// a look that paired them would compare different data.
    fn check_unchanged(&self, baseline: &Recipe, root: &Path) -> Result<()> {
        // (The caller sets this round's trials aside: see `set_aside`.)
        let now = Inputs::of(baseline, root)?;
        let changed = |then: &Option<Fingerprint>, now: &Option<Fingerprint>| match (then, now) {
            (Some(a), Some(b)) if !a.same_data(b) => Some(a.change(b)),
            _ => None,
        };
        let (what, change) = match (changed(&self.data, &now.data), changed(&self.code, &now.code)) {
            (Some(c), _) => (
                format!(
                    "the data at {}",
                    baseline.data.path.as_deref().unwrap_or(Path::new("?")).display()
                ),
                c,
            ),
            (None, Some(c)) => ("the external trainer's files".to_string(), c),
            (None, None) => return Ok(()),
        };
        Err(Error::RunDir {
            path: root.to_path_buf(),
            message: format!(
                "{what} changed while the checklist ran ({change}): the trials of this round may have trained on \
                 either version, so none is judged, and those that ran were moved to {} (kept, not judged). Restore \
                 it as it was when the checklist started and rerun: they train again; or use another --out directory",
                root.join(SET_ASIDE).display()
            ),
        })
    }
}

/// Where the trials that ran while the data changed are moved (`set_aside`), beside `trials/`.
const SET_ASIDE: &str = "data-changed";

/// Moves the run dirs of `trials` that finished since `started` to `<root>/data-changed/`
/// (replacing an earlier copy there): they may have trained on either version of changed data,
/// and left in place the rerun would keep them (their `trial.json` records the fingerprint of the
/// start). Moved, they train again.
fn set_aside<'a>(root: &Path, trials: impl Iterator<Item = &'a Trial>, started: std::time::SystemTime) -> Result<()> {
    for t in trials {
        let dir = root.join(&t.dir);
        let modified = std::fs::metadata(dir.join(rundir::RESULT)).and_then(|m| m.modified());
        if modified.is_ok_and(|m| m >= started) {
            let to = root.join(SET_ASIDE).join(&t.dir);
            let _ = std::fs::remove_dir_all(&to);
            std::fs::create_dir_all(to.parent().expect("a trial dir has a parent")).map_err(|e| Error::io(&to, e))?;
            std::fs::rename(&dir, &to).map_err(|e| Error::io(&dir, e))?;
        }
    }
    Ok(())
}

/// Writes a trial's `recipe.toml` and `trial.json` (with `inputs`, the fingerprints now),
/// unless it already finished. Returns the job to run, or None when the trial is complete
/// (completed or diverged).
fn prepare(root: &Path, baseline: &Recipe, trial: &Trial, inputs: &Inputs) -> Result<Option<Job>> {
    let mut recipe = trial.recipe(baseline)?;
    // Tuning runs have no baseline trial of their seed to be held to: they are never stopped.
    if baseline.checklist.early_stop && trial.arm != Arm::Baseline && trial.tune.is_none() {
        let reference = Trial::new(Arm::Baseline, baseline.seed, trial.seed_index).dir;
        recipe.train.stop_reference = Some(root.join(reference));
        recipe.train.stop_margin = baseline.checklist.early_stop_margin;
    }
    let dir = RunDir::create(&root.join(&trial.dir))?;
    if let Ok(existing) = Recipe::load_record(&dir.file(rundir::RECIPE))
        && !same_run(&existing, &recipe)
    {
        if matches!(trial.arm, Arm::Combined { .. }) {
            // The combined recipe is derived from results; when they changed, start it afresh.
            std::fs::remove_dir_all(&dir.path).map_err(|e| Error::io(&dir.path, e))?;
            return prepare(root, baseline, trial, inputs);
        }
        let (then, now) = (existing.train.epochs, recipe.train.epochs);
        let message = if then != now {
            format!(
                "trained {then} epochs where this checklist would run {now} (train.epochs, or checklist.confirm_epochs for \
                 the combined recipe's confirmation on fresh seeds); use another directory"
            )
        } else {
            format!("{}; use another directory", different_recipe(&existing, &recipe))
        };
        return Err(Error::RunDir {
            path: dir.file(rundir::RECIPE),
            message,
        });
    }
    if crate::executor::finished(&dir.path)? {
        if !dir.file("trial.json").exists() {
            // Without it the trial is in no analysis, and a rerun would neither run nor judge it.
            return Err(Error::RunDir {
                path: dir.file("trial.json"),
                message: analysis::MISSING_TRIAL_RECORD.into(),
            });
        }
        return Ok(None);
    }
    darkmagic_base::files::write_atomic(&dir.file(rundir::RECIPE), recipe.to_toml().as_bytes())?;
    let trial = Trial {
        data: inputs.data.clone(),
        code: inputs.code.clone(),
        settings: Some(inputs.settings.clone()),
        ..trial.clone()
    };
    write_trial(root, &trial)?;
    hparams::write_session(&dir.path, &trial)?;
    Ok(Some(Job {
        dir: dir.path.clone(),
        label: trial.name(),
        epochs: recipe.train.epochs,
    }))
}

/// Refuses, before anything is written, a rerun that would leave an existing trial in a
/// comparison it no longer belongs to, naming the trial and what changed: its arm left the plan,
/// its tuning candidate is another value in the current grid, it trained on a data set or with
/// an external trainer's files that have changed since (`inputs`, the fingerprints now), its
/// confirmation length is not `checklist.confirm_epochs`, or its recipe differs from the one
/// this checklist would run. (The combined recipe is derived from results and may be rebuilt.)
fn check_existing(root: &Path, baseline: &Recipe, variants: &[plan::Variant], inputs: &Inputs) -> Result<()> {
    let restore = format!(
        "nothing was changed. Rerun with the recipe the checklist ran ({}) and its data, or use another directory",
        root.join(BASELINE).display()
    );
    let mut unchecked = Vec::new();
    for t in analysis::read_trials(root)? {
        let refuse = |file: &str, what: String| {
            Err(Error::RunDir {
                path: root.join(&t.dir).join(file),
                message: format!("{what}; {restore}"),
            })
        };
        if matches!(t.arm, Arm::Combined { .. }) && !baseline.checklist.combine {
            // Its results would stay in the report of a checklist that no longer combines.
            return refuse(
                "trial.json",
                "is a trial of the combined recipe, but this run sets checklist.combine = false".into(),
            );
        }
        if let Some((file, what)) = trial_problem(root, baseline, variants, &t)? {
            return refuse(file, what);
        }
        let label = t.arm.label();
        if let (Some(then), Some(now)) = (&t.code, &inputs.code)
            && !then.same_data(now)
        {
            let names: Vec<String> = inputs.code_files.iter().map(|f| f.display().to_string()).collect();
            return refuse(
                "trial.json",
                format!(
                    "ran an external trainer whose files ({}, external.command) have changed since ({})",
                    names.join(", "),
                    then.change(now)
                ),
            );
        }
        // No fingerprint, or one without its content hash (records from before either): the
        // bytes the trial trained on cannot be compared.
        if inputs.data.is_some() && t.data.as_ref().is_none_or(|d| d.content.is_none()) {
            unchecked.push(t.dir.display().to_string());
        }
        if let (Some(then), Some(now)) = (&t.data, &inputs.data)
            && !then.same_data(now)
        {
            let path = baseline.data.path.as_deref().unwrap_or(Path::new("?"));
            return refuse(
                "trial.json",
                format!(
                    "trained on other data than {} holds now ({})",
                    path.display(),
                    then.change(now)
                ),
            );
        }
        if let Some(e) = t.epochs.filter(|&e| Some(e) != baseline.checklist.confirm_epochs) {
            let now = baseline
                .checklist
                .confirm_epochs
                .map_or("unset".into(), |n| n.to_string());
            return refuse(
                "trial.json",
                format!(
                    "`{label}` trained the combined recipe's confirmation {e} epochs; checklist.confirm_epochs is now {now}"
                ),
            );
        }
    }
    if let Some(first) = unchecked.first() {
        // Records from before trials carried the data's fingerprint (results/fashion-mnist has
        // some): kept, but not silently.
        eprintln!(
            "warning: {} trial(s) ({first}{}) record no fingerprint of the data's content they trained on (written \
             before fingerprints were, or edited): whether they trained on the bytes there now cannot be checked",
            unchecked.len(),
            if unchecked.len() > 1 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// Tuned values as `{field = value, ...}`, for messages.
fn values(t: &toml::Table) -> String {
    let fields: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{{}}}", fields.join(", "))
}

/// What is wrong with trial `t` of the checklist of `baseline` (whose plan is `variants`), with
/// the record at fault, if anything: its arm left the plan, the overrides or tuned values it
/// records are not its arm's, or its `recipe.toml` is not the recipe this checklist runs for it
/// (or cannot be read while the trial has a result, which then cannot be matched). A combined
/// recipe's trial is held to the overrides it records (which variants won is the analysis's).
pub(crate) fn trial_problem(
    root: &Path,
    baseline: &Recipe,
    variants: &[plan::Variant],
    t: &Trial,
) -> Result<Option<(&'static str, String)>> {
    let label = t.arm.label();
    let edited = |what: String| Ok(Some(("trial.json", what)));
    if let Arm::Variant(v) = &t.arm {
        match variants.iter().find(|p| p.label() == label) {
            None => {
                return edited(format!(
                    "`{label}` is not in this checklist's plan (its factors changed?)"
                ));
            }
            Some(plan) if plan != v => {
                return edited(format!(
                    "`{label}` records the overrides {}; the plan's are {}: the record was edited",
                    values(&v.overrides),
                    values(&plan.overrides)
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(c) = t.tune {
        let now = plan::candidates(baseline, &t.arm)?;
        if now.get(c) != Some(&t.tuned) {
            let now = now.get(c).map_or("no such candidate".into(), values);
            return edited(format!(
                "tuning candidate {c} of `{label}` ran {}; checklist.tune now makes it {now}",
                values(&t.tuned)
            ));
        }
    }
    let expected = match t.recipe(baseline) {
        Ok(r) => r,
        Err(e) => return edited(format!("its overrides do not apply to the checklist's recipe ({e})")),
    };
    let path = root.join(&t.dir).join(rundir::RECIPE);
    Ok(match Recipe::load_record(&path) {
        Ok(existing) if !same_run(&existing, &expected) => {
            Some((rundir::RECIPE, different_recipe(&existing, &expected)))
        }
        Err(e) if RunDir::open(&root.join(&t.dir)).read_result()?.is_some() => Some((
            rundir::RECIPE,
            format!(
                "the trial has a result but its recipe cannot be read ({e}), so it cannot be matched to this checklist's"
            ),
        )),
        _ => None,
    })
}

/// Words for a trial's recipe that is not the one this checklist runs, naming the first field
/// that differs as [`same_run`] compares them.
fn different_recipe(existing: &Recipe, expected: &Recipe) -> String {
    match as_run_of(existing, expected).first_difference(expected) {
        Some((key, was, now)) => format!(
            "holds a different recipe than this checklist would run ({key} = {was}, where it runs {key} = {now})"
        ),
        None => "holds a different recipe than this checklist would run".into(),
    }
}

/// Whether two recipes describe the same training run ([`Recipe::same_training`]: so that
/// raising `max_seeds` or changing the margin on a rerun reuses every finished trial), also
/// ignoring the early-stop reference, which the checklist sets.
fn same_run(a: &Recipe, b: &Recipe) -> bool {
    as_run_of(a, b) == *b
}

/// `a` with `b`'s settings of what [`same_run`] ignores.
fn as_run_of(a: &Recipe, b: &Recipe) -> Recipe {
    let mut a = a.as_training_of(b);
    a.train.stop_reference.clone_from(&b.train.stop_reference);
    a.train.stop_margin = b.train.stop_margin;
    a
}

/// Prepares `trials` and runs those without a final result; returns how many ran and whether
/// every one of them ended with a final result (completed or diverged).
fn run_trials(
    root: &Path,
    baseline: &Recipe,
    trials: &[Trial],
    inputs: &Inputs,
    exec: &mut dyn Executor,
) -> Result<(usize, bool)> {
    let jobs: Vec<Job> = trials
        .iter()
        .map(|t| prepare(root, baseline, t, inputs))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if !jobs.is_empty() {
        exec.run_all(&jobs)?;
    }
    let mut all_finished = true;
    for j in &jobs {
        all_finished &= crate::executor::finished(&j.dir)?;
    }
    Ok((jobs.len(), all_finished))
}

/// The trials of the next round, from the results so far: each variant up to the seeds its
/// standing in the sequential design needs, then (once no variant needs more) the combined
/// recipe likewise, and the baseline up to the most any arm needs (differences are paired).
/// Seeds already run are listed too: `prepare` skips the finished ones and reruns the failed.
fn next_round(baseline: &Recipe, variants: &[plan::Variant], summary: &Summary) -> Result<Vec<Trial>> {
    let first = baseline.checklist.seeds;
    // (seeds the design asks for, seeds the arm has): an arm not run yet needs the first round.
    let wants = |arm: Option<&analysis::ArmSummary>| match arm {
        None => (first, 0),
        Some(a) => (a.decision.as_ref().map_or(first, |d| d.needs), a.seeds.len()),
    };
    let mut wanted: Vec<(Arm, (usize, usize))> = variants
        .iter()
        .map(|v| {
            let label = v.label();
            (
                Arm::Variant(v.clone()),
                wants(summary.trials.iter().find(|t| t.label == label)),
            )
        })
        .collect();
    let variants_done = wanted.iter().all(|(_, (needs, _))| *needs == 0);
    if variants_done && baseline.checklist.combine && !summary.combined_variants.is_empty() {
        let chosen = variants
            .iter()
            .filter(|v| summary.combined_variants.contains(&v.label()))
            .cloned()
            .collect();
        let combined = Arm::Combined { variants: chosen };
        let same = summary.combined.as_ref().filter(|c| c.label == combined.label());
        wanted.push((combined, wants(same)));
    }
    // The combined recipe runs on fresh seeds, after every seed the variants may use: confirming
    // it on the seeds that selected its parts would favour it.
    let fresh = summary.design.looks.last().copied().unwrap_or(first);
    let combined_wants = match wanted.last() {
        Some((Arm::Combined { .. }, (needs, has))) => (*needs).max(*has),
        _ => 0,
    };
    let base = wanted
        .iter()
        .filter(|(arm, _)| !matches!(arm, Arm::Combined { .. }))
        .map(|(_, (needs, _))| *needs)
        .max()
        .unwrap_or(0);
    let base_has = summary
        .baseline
        .seeds
        .iter()
        .filter(|s| s.seed < baseline.seed + fresh as u64)
        .count();
    let mut seeded: Vec<(Arm, Vec<usize>)> = wanted
        .into_iter()
        .map(|(arm, (needs, has))| {
            let offset = if matches!(arm, Arm::Combined { .. }) { fresh } else { 0 };
            (arm, (offset..offset + needs.max(has)).collect())
        })
        .collect();
    let base_seeds = (0..base.max(base_has)).chain(fresh..fresh + combined_wants);
    seeded.push((Arm::Baseline, base_seeds.collect()));
    let mut round = Vec::new();
    for (arm, seeds) in seeded.into_iter().filter(|(_, seeds)| !seeds.is_empty()) {
        match tuning_of(baseline, &arm, summary)? {
            Tuning::Waiting(tuning_runs) => round.extend(tuning_runs),
            Tuning::Done(values) => round.extend(seeds.into_iter().map(|k| Trial {
                tuned: values.clone(),
                // The confirmation's seeds, at its own length when the checklist sets one.
                epochs: baseline.checklist.confirm_epochs.filter(|_| k >= fresh),
                ..Trial::new(arm.clone(), baseline.seed, k)
            })),
        }
    }
    Ok(round)
}

/// Where an arm stands with `checklist.tune`.
enum Tuning {
    /// Its seeds run with these values: the chosen candidate's, none without tuning (or when no
    /// candidate completed).
    Done(toml::Table),
    /// Its seeds wait for these tuning runs (every candidate on every tuning seed; finished
    /// ones are skipped when prepared).
    Waiting(Vec<Trial>),
}

/// Where `arm` stands with its tuning (see [`Tuning`]).
fn tuning_of(baseline: &Recipe, arm: &Arm, summary: &Summary) -> Result<Tuning> {
    let candidates = plan::candidates(baseline, arm)?;
    if candidates.is_empty() {
        return Ok(Tuning::Done(toml::Table::new()));
    }
    let label = arm.label();
    Ok(match summary.tuning.iter().find(|t| t.label == label) {
        Some(t) if t.complete && t.candidates.len() == candidates.len() => {
            Tuning::Done(t.chosen.map(|k| t.candidates[k].values.clone()).unwrap_or_default())
        }
        _ => {
            let seeds = baseline.checklist.tune.seeds;
            let runs = candidates.into_iter().enumerate().flat_map(|(i, values)| {
                (0..seeds).map(move |k| Trial::tuning(arm.clone(), baseline.seed, i, values.clone(), k))
            });
            Tuning::Waiting(runs.collect())
        }
    })
}

/// Refuses to judge trials that hold the results of a look when the design that look fixed
/// (`design.json`) is gone, as the last `summary.json` records: judging them with whatever the
/// settings say now would spend the error again. `darkmagic checklist --redesign` fixes a new
/// design on purpose.
pub fn require_design(root: &Path, summary: &Summary) -> Result<()> {
    if summary.design.rounds == 0 || design_record::read(root)?.is_some() {
        return Ok(());
    }
    // Fixed before: the last summary written here says so, or a trial of a later round is here.
    // Without either, the look completed after the last run ended (the trials of a --detach'ed
    // round finished on the cluster) and this run fixes its design, as the first look of any
    // checklist does.
    let fixed_before =
        darkmagic_base::files::read_regular(&root.join("summary.json"), darkmagic_base::rundir::MAX_RECORD_BYTES)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["design"]["fixed"] == serde_json::Value::Bool(true));
    // Trials of a later round prove it too, with summary.json deleted as well.
    let proof = match fixed_before {
        true => "the last summary.json says so".to_string(),
        false => match analysis::later_round_trial(root)? {
            Some(t) => format!("{} belongs to a round planned after a look", t.display()),
            None => return Ok(()),
        },
    };
    Err(Error::RunDir {
        path: root.join(design_record::FILE),
        message: format!(
            "is missing, but the trials hold the results of at least one look, whose design it recorded ({proof}): \
             restore it, rerun the checklist with --redesign to fix the current settings' design over these \
             trials, or use another --out directory"
        ),
    })
}

/// Refuses a rerun that changes the settings a design is fixed from (`checklist.seeds`,
/// `max_seeds`, `round_seeds`, `alpha`, `margin`, the plan) over trials with results, where no
/// design record says what they were (it is written at the first look; a --detach'ed first round
/// has results before it): they are then those of `baseline.toml`, which every run writes. So
/// results judged under one design are not judged again under another with the record (and
/// the summary) deleted; `--redesign` replaces a design on purpose.
fn require_same_settings(root: &Path, baseline: &Recipe, labels: &[String]) -> Result<()> {
    if design_record::read(root)?.is_some() {
        return Ok(()); // design_record::check compares the record itself
    }
    // Results without baseline.toml either were refused by the analysis run before this
    // (`analysis::require_settings_record`), or there are none yet.
    if std::fs::symlink_metadata(root.join(BASELINE)).is_err() {
        return Ok(());
    }
    let Some(old) = Recipe::load(Some(&root.join(BASELINE)), &[]).ok() else {
        return Ok(()); // unreadable: the analysis names it
    };
    // Trials prepared but never finished (a checklist stopped early in its first round) were
    // judged by no design: new settings may judge them.
    if !analysis::any_judged(root)? {
        return Ok(());
    }
    let (then, now) = (&old.checklist, &baseline.checklist);
    let old_labels: Vec<String> = plan::variants(&old)?.iter().map(plan::Variant::label).collect();
    let text = |m: Option<f64>| m.map_or("the default".into(), |m| format!("{m} pp"));
    let differs = [
        ("checklist.seeds", then.seeds.to_string(), now.seeds.to_string()),
        (
            "checklist.max_seeds",
            then.max_seeds.to_string(),
            now.max_seeds.to_string(),
        ),
        (
            "checklist.round_seeds",
            then.round_seeds.to_string(),
            now.round_seeds.to_string(),
        ),
        ("checklist.alpha", then.alpha.to_string(), now.alpha.to_string()),
        ("checklist.margin", text(then.margin), text(now.margin)),
        ("the plan", format!("{old_labels:?}"), format!("{labels:?}")),
    ];
    refuse_first_change(root, differs, |key, was, asked| {
        format!(
            "the trials here have results from a checklist run with {key} = {was}, and no design record ({}) says \
             which design judged them; this run asks for {asked}: rerun with {key} = {was}, restore {}, use another \
             --out directory, or fix a new design over these trials with --redesign",
            design_record::FILE,
            design_record::FILE
        )
    })
}

/// The first setting of `settings` (key, the value the trials ran with, the value asked for now)
/// that changed, refused naming `baseline.toml` with the words `explain` gives; Ok where none did.
fn refuse_first_change<const N: usize>(
    root: &Path,
    settings: [(&str, String, String); N],
    explain: impl Fn(&str, &str, &str) -> String,
) -> Result<()> {
    match settings.iter().find(|(_, was, asked)| was != asked) {
        None => Ok(()),
        Some((key, was, asked)) => Err(Error::RunDir {
            path: root.join(BASELINE),
            message: explain(key, was, asked),
        }),
    }
}

/// Refuses `--redesign` before the recorded design is retired where the combined recipe's trials
/// would lie outside the fresh seeds the new design confirms it on (indices `max_seeds` to
/// `2 max_seeds - 1`): the analysis would refuse them after the new design was written.
pub fn check_redesign(root: &Path, baseline: &Recipe) -> Result<()> {
    let max = baseline.checklist.max_seeds.max(baseline.checklist.seeds);
    let misplaced = analysis::read_trials(root)?
        .into_iter()
        .find(|t| matches!(t.arm, Arm::Combined { .. }) && !(max..2 * max).contains(&t.seed_index));
    match misplaced {
        None => Ok(()),
        Some(t) => Err(Error::RunDir {
            path: root.join(&t.dir),
            message: format!(
                "a trial of the combined recipe at seed index {}, where the design of checklist.max_seeds = {max} \
                 confirms it on indices {max} to {}: remove {} before --redesign (the combined recipe is then \
                 confirmed on the new design's fresh seeds). Nothing was changed",
                t.seed_index,
                2 * max - 1,
                root.join("trials/combined").display()
            ),
        }),
    }
}

/// Refuses, before anything is written, a rerun that changes the rules a trial's result comes
/// from (`checklist.early_stop` and its margin, `checklist.tune`) over trials with results:
/// the design record holds the statistics, not these, and the trials judged so far ran under
/// the old rules (stopped or not, tuned or not) while the later ones would run under the new.
fn require_same_rules(root: &Path, baseline: &Recipe) -> Result<()> {
    let Some(old) = Recipe::load(Some(&root.join(BASELINE)), &[]).ok() else {
        return Ok(()); // none yet, or unreadable: the analysis names it
    };
    if !analysis::any_judged(root)? {
        return Ok(());
    }
    let (then, now) = (&old.checklist, &baseline.checklist);
    let stop = |c: &darkmagic_base::recipe::ChecklistConfig| match c.early_stop {
        true => format!("on (early_stop_margin = {})", c.early_stop_margin),
        false => "off".to_string(),
    };
    let tune = |c: &darkmagic_base::recipe::ChecklistConfig| match c.tune == Default::default() {
        true => "none".to_string(),
        false => serde_json::to_string(&c.tune).expect("tune serializes"),
    };
    let differs = [
        ("checklist.early_stop", stop(then), stop(now)),
        ("checklist.tune", tune(then), tune(now)),
    ];
    refuse_first_change(root, differs, |key, was, asked| {
        format!(
            "the trials here have results from a checklist run with {key}: {was}; this run asks for {asked}: the trials \
             judged so far would be compared with trials run under other rules. Nothing was changed; rerun with the \
             settings of {BASELINE}, or use another --out directory"
        )
    })
}

/// Records `settings` (this run's settings digest) in every trial of `root` that holds another:
/// `--redesign` judges the trials under the settings it fixes a design from, on purpose.
fn restamp(root: &Path, settings: &str) -> Result<()> {
    for t in analysis::read_trials(root)? {
        if t.settings.as_deref().is_some_and(|s| s != settings) {
            let t = Trial {
                settings: Some(settings.to_string()),
                ..t
            };
            write_trial(root, &t)?;
        }
    }
    Ok(())
}

/// Writes `t`'s record, `trial.json` in its folder under `root`, atomically.
fn write_trial(root: &Path, t: &Trial) -> Result<()> {
    let json = serde_json::to_string_pretty(t).expect("trial serializes");
    darkmagic_base::files::write_atomic(&root.join(&t.dir).join("trial.json"), json.as_bytes())
}

/// Runs (or resumes) the checklist of `baseline` in `root`, round after round until every
/// variant (and the combined recipe) is decided or at `max_seeds`; returns the analysis, from
/// which the caller writes the report (`report::write`). A
/// round whose trials do not all finish (failures, `--detach`) ends the run; rerunning resumes.
/// The caller holds `root`'s lock (`Lock::acquire`) for as long as this runs. `redesign`: the
/// design may be fixed anew over the trials (`--redesign`), also where its record is missing.
pub fn run(baseline: &Recipe, root: &Path, exec: &mut dyn Executor, _lock: &Lock, redesign: bool) -> Result<Summary> {
    let variants = plan::variants(baseline)?;
    if let Some(ext) = &baseline.external {
        crate::external::check_command(ext)?;
    }
    let labels: Vec<String> = variants.iter().map(plan::Variant::label).collect();
    design_record::check(root, &baseline.checklist, &labels)?;
    let inputs = Inputs::of(baseline, root)?;
    check_existing(root, baseline, &variants, &inputs)?;
    if redesign {
        restamp(root, &inputs.settings)?;
    } else {
        require_design(root, &analysis::analyze(root)?)?;
        require_same_settings(root, baseline, &labels)?;
        require_same_rules(root, baseline)?;
    }
    darkmagic_base::files::write_atomic(&root.join(BASELINE), baseline.to_toml().as_bytes())?;
    hparams::write_experiment(root, &variants)?;
    let summary = loop {
        let mut summary = analysis::analyze(root)?;
        if fix_design(root, baseline, &labels, &summary)? {
            summary = analysis::analyze(root)?;
        }
        let round = next_round(baseline, &variants, &summary)?;
        // With early stop, a variant's trial compares itself with its finished baseline trial,
        // epoch by epoch: the baseline's trials of the round run first, so that the outcome
        // does not depend on which process is faster.
        let (first, rest): (Vec<Trial>, Vec<Trial>) = if baseline.checklist.early_stop {
            round.into_iter().partition(|t| t.arm == Arm::Baseline)
        } else {
            (Vec::new(), round)
        };
        let started = std::time::SystemTime::now();
        let (ran_first, first_finished) = run_trials(root, baseline, &first, &inputs, exec)?;
        if !first_finished {
            break analysis::analyze(root)?;
        }
        let (ran, all_finished) = run_trials(root, baseline, &rest, &inputs, exec)?;
        if ran_first + ran > 0
            && let Err(e) = inputs.check_unchanged(baseline, root)
        {
            set_aside(root, first.iter().chain(&rest), started)?;
            return Err(e);
        }
        match (ran_first + ran, all_finished) {
            // Nothing left to run: the analysis above is current.
            (0, _) => break summary,
            (_, false) => break analysis::analyze(root)?,
            _ => {}
        }
    };
    Ok(summary)
}

/// The dry run's planned power: the chance that a variant is called helps at `+margin` and at
/// `+2 margin` (the others null) under this design, at a few paired noise levels, simulated by
/// the rule the checklist applies (`simulation::planned_power`, 2,000 checklists each).
fn planned_power(design: &sequential::Design) -> String {
    let margin = 100.0 * design.margin;
    let cells: Vec<String> = [0.25, 0.5, 1.0]
        .iter()
        .map(|&sd| {
            let (at, twice) = simulation::planned_power(design, sd, 2000);
            format!(
                "sd {sd} pp: {at:.2} at +{margin:.2} pp, {twice:.2} at +{:.2} pp",
                2.0 * margin
            )
        })
        .collect();
    format!(
        "planned power (helps, the other variants null; sd: of a variant's paired differences over seeds, 0.27 pp on the Fashion-MNIST checklist): {}\n",
        cells.join("; ")
    )
}

/// A warning when no arm can reach the seeds a verdict needs.
pub fn too_few_seeds(c: &darkmagic_base::recipe::ChecklistConfig) -> Option<String> {
    let max = c.max_seeds.max(c.seeds);
    (max < sequential::MIN_SEEDS).then(|| {
        format!(
            "at most {max} seed(s) per arm: every variant will be 'too few seeds' (a verdict needs {} paired seeds)",
            sequential::MIN_SEEDS
        )
    })
}

/// Records the design once the first look has been taken (`design_record`): from then on the
/// analysis judges with the recorded design, and a rerun must continue it. Returns whether it
/// wrote the record.
fn fix_design(root: &Path, baseline: &Recipe, labels: &[String], summary: &Summary) -> Result<bool> {
    if summary.design.fixed || summary.design.rounds == 0 {
        return Ok(false);
    }
    let c = &baseline.checklist;
    // K counts every planned variant; the margin is the one the analysis used (it may depend on
    // the validation split's size).
    let design = sequential::Design {
        margin: summary.design.margin,
        ..sequential::Design::new(c, 0, labels.len())
    };
    // The same design fixed again (`--redesign` rerun after an interruption) replaced nothing.
    let mut replaced = design_record::replaced(root)?;
    while replaced.last() == Some(&design) {
        replaced.pop();
    }
    let record = design_record::Record {
        design,
        margin: c.margin,
        variants: labels.to_vec(),
        replaced,
        retired: false,
        digest: None,
    };
    design_record::write(root, &record)?;
    Ok(true)
}

/// What `--dry-run` prints: every arm, what it changes, and the compute of the first round and
/// of the worst case (every arm to `max_seeds`, then the combined recipe's confirmation).
pub fn describe(baseline: &Recipe, images_per_sec: Option<f64>, parallel: usize) -> Result<String> {
    let trials = trials(baseline)?;
    let c = &baseline.checklist;
    let mut out = String::new();
    let mut arms: Vec<&Trial> = trials.iter().filter(|t| t.seed_index == 0).collect();
    arms.dedup_by_key(|t| t.arm.label());
    out.push_str(&format!("{:<36} {:>7}  changes\n", "trial", "epochs"));
    let mut recipes = Vec::new();
    for t in &arms {
        let r = t.recipe(baseline)?;
        let changes: Vec<String> = t.arm.overrides().iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let changes = if changes.is_empty() {
            "(baseline)".to_string()
        } else {
            changes.join(", ")
        };
        out.push_str(&format!("{:<36} {:>7}  {changes}\n", t.arm.label(), r.train.epochs));
        recipes.push(r);
    }
    let equal = plan::left_out(baseline)?;
    if !equal.is_empty() {
        out.push_str(&format!("\nleft out, equal to the baseline: {}\n", equal.join(", ")));
    }
    if c.plan == darkmagic_base::recipe::PlanKind::Timm {
        out.push_str("\nleft out of the timm plan:\n");
        for d in plan::timm_dropped() {
            out.push_str(&format!("  {d}\n"));
        }
    }
    let design = sequential::Design::new(c, 0, arms.len().saturating_sub(1));
    let looks: Vec<String> = design.looks().iter().map(usize::to_string).collect();
    let max = c.max_seeds.max(c.seeds);
    let combined = if c.combine { max } else { 0 };
    let length = c
        .confirm_epochs
        .map_or(String::new(), |e| format!(", at {e} epochs (checklist.confirm_epochs)"));
    out.push_str(&format!(
        "\nfirst round: {} trials ({} arms x {} seeds)\n\
         worst case: {} trials (every arm to {} seeds, looks at {} seeds) plus up to {combined} trials of the combined recipe \
         and {combined} of the baseline on fresh seeds to confirm it{length}\n",
        trials.len(),
        arms.len(),
        c.seeds,
        arms.len() * max,
        max,
        looks.join(", ")
    ));
    if let Some(w) = too_few_seeds(c) {
        out.push_str(&format!("warning: {w}\n"));
    }
    if let [.., before, last] = design.looks()[..]
        && last - before == 1
    {
        out.push_str(&format!(
            "warning: the last round adds one seed ({before} to {last}): it splits the error between two nearly identical tests; \
             set checklist.max_seeds so that rounds of checklist.round_seeds fit it\n"
        ));
    }
    let tune_seeds = c.tune.seeds;
    let per_arm: Vec<usize> = arms
        .iter()
        .map(|t| plan::candidates(baseline, &t.arm).map(|c| c.len() * tune_seeds))
        .collect::<Result<_>>()?;
    let tuning: usize = per_arm.iter().sum();
    if tuning > 0 {
        let combined = plan::candidates(baseline, &Arm::Baseline)?.len() * tune_seeds;
        out.push_str(&format!(
            "tuning (checklist.tune): {tuning} runs before the seeds (each arm's candidates x {tune_seeds} tuning seeds), plus up to {combined} for the combined recipe\n"
        ));
    }
    if baseline.external.is_some() {
        out.push_str(&planned_power(&design));
        return Ok(out);
    }
    // darkmagic's own trainer: the margin from the validation split, the compute in training
    // images.
    let splits = darkmagic_data::load_splits(baseline)?;
    let val_images = splits.val.len();
    out.push_str(&planned_power(&sequential::Design::new(
        c,
        val_images,
        design.comparisons,
    )));
    let n_train = splits.train.len();
    // In floating point: a product of counts can pass usize::MAX.
    let images_per_seed: f64 = recipes
        .iter()
        .map(|r| {
            let steps = r.steps_per_epoch(n_train);
            [r.train.epochs, steps, r.train.batch_size]
                .iter()
                .map(|&n| n as f64)
                .product::<f64>()
        })
        .sum();
    let first = images_per_seed * c.seeds as f64;
    let worst = images_per_seed * max as f64;
    out.push_str(&format!(
        "compute: {first:.3e} training images in the first round, {worst:.3e} training images in the worst case\n"
    ));
    if let Some(ips) = images_per_sec {
        let minutes = |images: f64| images / (ips * parallel as f64) / 60.0;
        out.push_str(&format!(
            "estimated time: first round {:.1} min, worst case {:.1} min, at {ips:.0} images/s per trial (training steps of the baseline's architecture on random data: evaluation, data loading and each trial's start-up come on top), {parallel} in parallel\n",
            minutes(first),
            minutes(worst)
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
        let dir = RunDir::open(&root.join(&t.dir));
        let epochs = Recipe::load_record(&dir.file(rundir::RECIPE)).map_or(0, |r| r.train.epochs);
        let state = match dir.read_result()? {
            Some(r) => r.status.name().to_string(),
            None => match dir.read_metrics()?.len() {
                0 => "pending".to_string(),
                n => format!("running (epoch {n}/{epochs})"),
            },
        };
        *counts
            .entry(state.split(' ').next().unwrap_or_default().to_string())
            .or_insert(0) += 1;
        let seed = match t.tune {
            Some(c) => format!("tune {c}/{}", t.seed_index),
            None => t.seed_index.to_string(),
        };
        out.push_str(&format!("{:<36} {seed:>5}  {state}\n", t.arm.label()));
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out.push_str(&format!("\n{} trials: {}\n", trials.len(), summary.join(", ")));
    Ok(out)
}
