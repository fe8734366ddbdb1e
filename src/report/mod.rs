//! The checklist report, rebuilt from the run directories alone: `summary.json` (machine-readable,
//! deterministic: no wall-clock figures), `summary.csv`, `summary.md` and a self-contained
//! `report.html` (inline SVG plots, no scripts, no network).
pub mod html;
pub mod svg;

use crate::checklist::analysis::{ArmSummary, Summary, Verdict};
use crate::checklist::plan::Trial;
use crate::error::Result;
use crate::recipe::Recipe;
use crate::schedule::LrSchedule;
use crate::train::rundir::{self, EpochMetrics, RunDir};
use std::path::Path;

/// Compute spent, from the trials' `result.json` files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Compute {
    pub trials: usize,
    pub epochs: usize,
    pub train_seconds: f64,
}

/// Points (x, y) of a plotted curve.
pub type Curve = Vec<(f64, f64)>;

/// One trial's recorded history, for the plots.
pub struct TrialData {
    pub trial: Trial,
    pub recipe: Option<Recipe>,
    pub metrics: Vec<EpochMetrics>,
    pub wall_seconds: f64,
    /// The last lines of `train.log` for a run that did not complete.
    pub log_tail: Option<String>,
}

impl TrialData {
    /// Reads every trial under `root`.
    pub fn read_all(root: &Path) -> Result<Vec<TrialData>> {
        let trials = crate::checklist::analysis::read_trials(root)?;
        Ok(trials
            .into_iter()
            .map(|trial| {
                let dir = RunDir {
                    path: root.join(&trial.dir),
                };
                let recipe = Recipe::load(Some(&dir.file(rundir::RECIPE)), &[]).ok();
                let metrics = dir.read_metrics().unwrap_or_default();
                let result = dir.read_result().ok().flatten();
                let wall_seconds = result.as_ref().map_or(0.0, |r| r.wall_seconds);
                let log_tail = result.filter(|r| r.status != rundir::Status::Completed).map(|_| {
                    let log = std::fs::read_to_string(dir.file(rundir::LOG)).unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    lines[lines.len().saturating_sub(8)..].join("\n")
                });
                TrialData {
                    trial,
                    recipe,
                    metrics,
                    wall_seconds,
                    log_tail,
                }
            })
            .collect())
    }

    /// The learning rate and weight decay this trial's recipe gives at each step (at most about
    /// 400 points, x in epochs), or None without a recipe or metrics.
    pub fn schedule_curves(&self) -> Option<(Curve, Curve)> {
        let (r, m) = (self.recipe.as_ref()?, self.metrics.first()?);
        let steps_per_epoch = (m.step / m.epoch).max(1);
        let s = LrSchedule::new(&r.schedule, r.peak_lr(), r.train.epochs, steps_per_epoch);
        let stride = (s.total_steps() / 400).max(1);
        let steps: Vec<usize> = (0..s.total_steps()).step_by(stride).collect();
        let x = |t: usize| t as f64 / steps_per_epoch as f64;
        let lr = steps.iter().map(|&t| (x(t), s.lr(t))).collect();
        let wd = steps
            .iter()
            .map(|&t| (x(t), s.weight_decay(t, r.optim.weight_decay)))
            .collect();
        Some((lr, wd))
    }
}

pub fn compute(data: &[TrialData]) -> Compute {
    Compute {
        trials: data.len(),
        epochs: data.iter().map(|d| d.metrics.len()).sum(),
        // A fold from +0.0: `sum` of no f64 is -0.0, which prints as "-0.0 minutes".
        train_seconds: data.iter().map(|d| d.wall_seconds).fold(0.0, |a, b| a + b),
    }
}

/// Writes every report file into `root`.
pub fn write(root: &Path, summary: &Summary) -> Result<()> {
    let data = TrialData::read_all(root)?;
    let json = serde_json::to_string_pretty(summary).expect("summary serializes");
    rundir::write_atomic(&root.join("summary.json"), format!("{json}\n").as_bytes())?;
    rundir::write_atomic(&root.join("summary.csv"), csv(summary).as_bytes())?;
    rundir::write_atomic(&root.join("summary.md"), markdown(summary, &compute(&data)).as_bytes())?;
    rundir::write_atomic(&root.join("report.html"), html::render(summary, &data).as_bytes())?;
    Ok(())
}

/// Percentage points with sign, e.g. `+1.23`.
pub fn pp(x: f64) -> String {
    format!("{:+.2}", 100.0 * x)
}

pub fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}", 100.0 * v))
}

pub fn interval(ci: Option<(f64, f64)>) -> String {
    ci.map_or("-".into(), |(lo, hi)| format!("[{}, {}]", pp(lo), pp(hi)))
}

/// The median half-width of the variants' 95% intervals, with advice: the smallest effect this
/// checklist could have detected, and how to detect smaller ones.
pub fn resolution_note(s: &Summary) -> Option<String> {
    let mut halves: Vec<f64> = s
        .trials
        .iter()
        .filter_map(|t| t.ci.map(|(lo, hi)| (hi - lo) / 2.0))
        .collect();
    if halves.is_empty() {
        return None;
    }
    halves.sort_by(f64::total_cmp);
    let median = halves[halves.len() / 2];
    Some(format!(
        "The median 95% interval is ±{:.2} pp: effects much smaller than that cannot be told from noise with {} seeds. \
         More seeds (--seeds) narrow the intervals roughly as 1/sqrt(seeds); a larger validation split lowers the noise of each run.",
        100.0 * median,
        s.baseline.seeds.len()
    ))
}

pub fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Baseline => "baseline",
        Verdict::Helps => "helps",
        Verdict::Hurts => "hurts",
        Verdict::NoEffect => "no detectable effect",
        Verdict::Inconclusive => "inconclusive (1 seed)",
        Verdict::Diverged => "diverged",
        Verdict::Failed => "failed",
        Verdict::Incomplete => "incomplete",
    }
}

fn csv(s: &Summary) -> String {
    let mut out = String::from("trial,factor,variant,seeds,accuracies,mean,std,diff,ci_low,ci_high,verdict\n");
    let rows = std::iter::once(&s.baseline).chain(&s.trials).chain(&s.combined);
    for a in rows {
        let accs: Vec<String> = a
            .seeds
            .iter()
            .map(|x| x.val_acc.map_or("".into(), |v| format!("{v:.6}")))
            .collect();
        let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.6}"));
        let verdict = serde_json::to_value(a.verdict).expect("verdict serializes");
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            a.label,
            a.factor.clone().unwrap_or_default(),
            a.variant.clone().unwrap_or_default(),
            a.seeds.len(),
            accs.join(";"),
            f(a.mean),
            f(a.std),
            f(a.diff),
            f(a.ci.map(|c| c.0)),
            f(a.ci.map(|c| c.1)),
            verdict.as_str().unwrap_or_default()
        ));
    }
    out
}

fn md_row(a: &ArmSummary) -> String {
    format!(
        "| {} | {} | {} ± {} | {} | {} | {} |\n",
        a.label,
        a.seeds.len(),
        pct(a.mean),
        pct(a.std),
        a.diff.map_or("-".into(), pp),
        interval(a.ci),
        verdict_text(a.verdict)
    )
}

fn markdown(s: &Summary, c: &Compute) -> String {
    let mut out = String::from("# darkmagic checklist\n\n");
    out.push_str("Metric: final validation top-1 accuracy (%); differences are paired by seed against the baseline, ");
    out.push_str("in percentage points, with 95% paired-t intervals.\n\n");
    out.push_str(
        "| trial | seeds | accuracy (mean ± std) | difference | 95% interval | verdict |\n|---|---|---|---|---|---|\n",
    );
    out.push_str(&md_row(&s.baseline));
    for a in &s.trials {
        out.push_str(&md_row(a));
    }
    if let Some(note) = resolution_note(s) {
        out.push_str(&format!("\n{note}\n"));
    }
    out.push_str("\n## Combined recipe\n\n");
    if s.combined_variants.is_empty() {
        out.push_str("No variant helped, so the combined recipe is the baseline.\n");
    } else {
        out.push_str(&format!("Baseline plus: {}.\n\n", s.combined_variants.join(", ")));
        if let Some(c) = &s.combined {
            out.push_str("| trial | seeds | accuracy (mean ± std) | difference | 95% interval | verdict |\n|---|---|---|---|---|---|\n");
            out.push_str(&md_row(c));
        }
    }
    out.push_str(&format!(
        "\n## Compute\n\n{} training runs, {} epochs, {:.1} minutes of training (summed over runs).\n",
        c.trials,
        c.epochs,
        c.train_seconds / 60.0
    ));
    out
}
