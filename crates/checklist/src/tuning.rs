//! Tuning per arm (`checklist.tune`): each candidate's scores over its tuning seeds, the
//! candidate chosen for the arm's seeds, and warnings (a best value at the edge of its range,
//! many diverged candidates).
use super::outcome::outcome;
use super::plan::Trial;
use darkmagic_base::rundir::Status;
use darkmagic_base::stats::mean;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The tuning of one arm: its candidates' scores and the one chosen for its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmTuning {
    pub label: String,
    pub candidates: Vec<Candidate>,
    /// The candidate with the best mean score, once every tuning run has finished.
    pub chosen: Option<usize>,
    /// Every tuning run has finished (completed, diverged or stopped).
    pub complete: bool,
    /// A best candidate at the edge of its range; many diverged candidates.
    pub warnings: Vec<String>,
    /// Tuning runs that failed (`tune <candidate> seed <k>`): the arm waits for them, and a
    /// rerun retries them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// One tuning candidate of an arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The tuned fields' values.
    pub values: toml::Table,
    /// Validation metric of each tuning seed: None while running, or when diverged or failed.
    pub scores: Vec<Option<f64>>,
    /// Mean score, when every tuning seed completed.
    pub mean: Option<f64>,
    /// Tuning seeds that diverged.
    pub diverged: usize,
}

/// The tuning of every arm from its tuning runs (`trials/<arm>/tune-*`), each arm with
/// `tune_seeds` runs per candidate.
pub fn tuning_summary(root: &Path, trials: &[&Trial], tune_seeds: usize) -> crate::Result<Vec<ArmTuning>> {
    let mut out: Vec<ArmTuning> = Vec::new();
    let mut finished: Vec<(String, usize)> = Vec::new();
    for t in trials {
        let label = t.arm.label();
        let i = match out.iter().position(|a| a.label == label) {
            Some(i) => i,
            None => {
                out.push(ArmTuning {
                    label: label.clone(),
                    candidates: Vec::new(),
                    chosen: None,
                    complete: false,
                    warnings: Vec::new(),
                    failed: Vec::new(),
                });
                out.len() - 1
            }
        };
        let k = t.tune.expect("a tuning trial");
        let cands = &mut out[i].candidates;
        while cands.len() <= k {
            cands.push(Candidate {
                values: toml::Table::new(),
                scores: Vec::new(),
                mean: None,
                diverged: 0,
            });
        }
        let o = outcome(root, t)?;
        let c = &mut cands[k];
        c.values = t.tuned.clone();
        c.scores.push(o.val_acc);
        c.diverged += usize::from(o.status == Some(Status::Diverged));
        if o.status == Some(Status::Failed) {
            out[i].failed.push(format!("tune {k} seed {}", t.seed_index));
        }
        if matches!(o.status, Some(Status::Completed | Status::Diverged | Status::Stopped)) {
            finished.push((label, k));
        }
    }
    for a in &mut out {
        for c in &mut a.candidates {
            let done: Vec<f64> = c.scores.iter().flatten().copied().collect();
            c.mean = (done.len() == tune_seeds && c.scores.len() == tune_seeds).then(|| mean(&done));
        }
        let runs = finished.iter().filter(|(l, _)| *l == a.label).count();
        a.complete = runs == a.candidates.len() * tune_seeds;
        if a.complete {
            a.chosen = (0..a.candidates.len())
                .filter_map(|k| a.candidates[k].mean.map(|m| (k, m)))
                .max_by(|x, y| x.1.total_cmp(&y.1))
                .map(|(k, _)| k);
            a.warnings = tuning_warnings(a);
        }
    }
    Ok(out)
}

/// Warnings on an arm's tuning: its best candidate at the edge of a field's range (the best
/// value may lie beyond it), more than a third of its candidates diverged, or none usable.
pub fn tuning_warnings(a: &ArmTuning) -> Vec<String> {
    let mut w = Vec::new();
    let number = |v: &toml::Value| v.as_float().or(v.as_integer().map(|i| i as f64));
    match a.chosen {
        Some(k) => {
            for (field, v) in &a.candidates[k].values {
                let mut all: Vec<f64> = a
                    .candidates
                    .iter()
                    .filter_map(|c| c.values.get(field).and_then(number))
                    .collect();
                all.sort_by(f64::total_cmp);
                all.dedup();
                let x = number(v).unwrap_or(f64::NAN);
                if all.len() >= 2 && (x == all[0] || x == all[all.len() - 1]) {
                    w.push(format!(
                        "{}: best {field} = {v} is at the edge of the candidates ({} .. {}); widen the range",
                        a.label,
                        all[0],
                        all[all.len() - 1]
                    ));
                }
            }
        }
        None => w.push(format!(
            "{}: no candidate completed every tuning run; its seeds run at the arm's own values",
            a.label
        )),
    }
    let diverged = a.candidates.iter().filter(|c| c.diverged > 0).count();
    if 3 * diverged > a.candidates.len() {
        w.push(format!(
            "{}: {diverged} of {} candidates diverged",
            a.label,
            a.candidates.len()
        ));
    }
    w
}
