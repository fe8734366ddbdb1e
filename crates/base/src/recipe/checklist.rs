//! `[checklist]`: the plan, seeds, error rates, margin, factors, tuning.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// The article's one-factor variants (its "Tricks Testing Checklist") that this build supports.
    Default,
    /// `default` plus the "future posts" tricks and their usual companions.
    Extended,
    /// Only the factors listed in `checklist.factors`.
    None,
    /// The article's checklist as flags of timm's `train.py`, for an `[external]` trainer.
    Timm,
}

/// The checklist around this recipe: the baseline is the recipe itself, each variant changes one
/// factor. A factor maps variant names to the fields they override, e.g.
/// `[checklist.factors.weight_decay]` with `"10x" = { "optim.weight_decay" = 5e-4 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecklistConfig {
    pub plan: PlanKind,
    /// Seeds of the first round: `seed`, `seed + 1`, ...; the same for every arm so comparisons
    /// pair up.
    pub seeds: usize,
    /// The most seeds an arm gets: undecided variants get more rounds up to this (sequential
    /// seeds); at or below `seeds`, every arm runs `seeds` seeds (a fixed design).
    pub max_seeds: usize,
    /// Seeds each later round adds.
    pub round_seeds: usize,
    /// Family-wise error of the helps/hurts verdicts over all variants and rounds, and the
    /// level of each equivalence test.
    pub alpha: f64,
    /// Equivalence margin in percentage points; unset: 0.5 pp or two validation images,
    /// whichever is larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// Built-in factors to leave out.
    pub skip: Vec<String>,
    /// Factors added to (or replacing) the built-in plan: factor -> variant -> overrides.
    pub factors: std::collections::BTreeMap<String, std::collections::BTreeMap<String, toml::Table>>,
    /// Build the combined recipe (every variant that helps, one per factor) and confirm it.
    pub combine: bool,
    /// Train the combined recipe's confirmation (the combined recipe and the baseline on fresh
    /// seeds) this many epochs instead of `train.epochs`: the fidelity check of a checklist of
    /// short trials, which asks whether what they chose still helps at the recipe's full length.
    /// On Fashion-MNIST, cosine annealing helped at 3 epochs and hurt at 12 (docs/real-data.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_epochs: Option<usize>,
    /// Stop a variant's trial early (status `stopped`) when, from half its epochs on, its
    /// validation accuracy falls more than `early_stop_margin` pp below its paired baseline
    /// trial's at the same epoch. Each round then runs the baseline's trials first.
    pub early_stop: bool,
    /// Percentage points below the baseline that stop a variant's trial.
    pub early_stop_margin: f64,
    /// Pretrained weights (darkmagic checkpoint or torchvision safetensors): adds the article's
    /// "pretraining on" variant, which sets `model.init` to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PathBuf>,
    /// A trained run dir: adds the variant "distillation on", which sets `loss.distill_teacher`
    /// to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher: Option<PathBuf>,
    /// Nuisance hyperparameters tuned for each arm before its seeds run.
    pub tune: TuneConfig,
    /// An MLflow tracking server (`http://host:port`) to log the checklist to: one run per
    /// trial, nested under a run for the checklist (`--mlflow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<String>,
}

/// Nuisance hyperparameters tuned per arm (the Deep Learning Tuning Playbook): each arm
/// (baseline, variant, combined recipe) first trains once per candidate on its own tuning seeds,
/// and the candidate with the best mean validation metric is fixed for all its paired seeds, so
/// that `optimizer=adam` is compared at Adam's best learning rate, not at SGD's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuneConfig {
    /// Field -> candidates, e.g. `"optim.lr" = [0.3, 1.0, 3.0]`: multipliers of the arm's own
    /// value (or values, with `absolute`). Several fields: every combination.
    pub fields: std::collections::BTreeMap<String, Vec<f64>>,
    /// The candidates are values, not multipliers of the arm's value.
    pub absolute: bool,
    /// Candidates for one variant (by label, e.g. `"optimizer=adam"`), replacing `fields` there.
    pub variants: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<f64>>>,
    /// Tuning runs per candidate. They use seeds of their own (`seed + 1000`, `seed + 1001`,
    /// ...): choosing on the comparison seeds would favour the chosen candidate on them.
    pub seeds: usize,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            fields: Default::default(),
            absolute: false,
            variants: Default::default(),
            seeds: 1,
        }
    }
}

impl Default for ChecklistConfig {
    fn default() -> Self {
        ChecklistConfig {
            plan: PlanKind::Default,
            seeds: 4,
            max_seeds: 6,
            round_seeds: 2,
            alpha: 0.05,
            margin: None,
            skip: Vec::new(),
            factors: Default::default(),
            combine: true,
            confirm_epochs: None,
            early_stop: false,
            early_stop_margin: 10.0,
            pretrained: None,
            teacher: None,
            tune: TuneConfig::default(),
            mlflow: None,
        }
    }
}

/// The first seed of the tuning runs is the recipe's seed plus this.
pub const TUNE_SEED_OFFSET: u64 = 1000;

impl ChecklistConfig {
    /// The `[checklist]` section's ranges and rules; `numeric` says whether a recipe field a
    /// tuning grid names is a number.
    pub fn validate(&self, numeric: impl Fn(&str) -> bool) -> Result<()> {
        let c = self;
        check_count("checklist.seeds", c.seeds, MAX_SEEDS)?;
        check_count("checklist.max_seeds", c.max_seeds, MAX_SEEDS)?;
        if let Some(e) = c.confirm_epochs {
            check_count("checklist.confirm_epochs", e, MAX_EPOCHS)?;
        }
        if c.round_seeds == 0 {
            return Err(Error::recipe("checklist.round_seeds", "must be at least 1"));
        }
        check(
            "checklist.alpha",
            c.alpha,
            c.alpha > 0.0 && c.alpha < 0.5,
            "in (0, 0.5)",
        )?;
        let m = c.early_stop_margin;
        check(
            "checklist.early_stop_margin",
            m,
            m > 0.0 && m <= 100.0,
            "in (0, 100] percentage points",
        )?;
        if let Some(m) = c.margin {
            check(
                "checklist.margin",
                m,
                m > 0.0 && m < 100.0,
                "in (0, 100) percentage points",
            )?;
        }
        if let Some(uri) = &c.mlflow
            && !uri.starts_with("http://")
        {
            return Err(Error::recipe(
                "checklist.mlflow",
                format!(
                    "got \"{}\"; expected an http:// address of an MLflow tracking server, e.g. http://127.0.0.1:5000",
                    crate::uri::redacted(uri)
                ),
            ));
        }
        if let Some(uri) = c.mlflow.as_deref().filter(|u| crate::uri::credentials(u).is_some()) {
            // The recipe is written into the checklist's records and the address printed.
            return Err(Error::recipe(
                "checklist.mlflow",
                format!(
                    "got \"{}\"; credentials in the address are not supported: darkmagic sends no authentication, and the address is printed and kept in the records",
                    crate::uri::redacted(uri)
                ),
            ));
        }
        let t = &c.tune;
        check_count("checklist.tune.seeds", t.seeds, MAX_SEEDS)?;
        let grids = std::iter::once(("checklist.tune.fields".to_string(), &t.fields)).chain(
            t.variants
                .iter()
                .map(|(v, g)| (format!("checklist.tune.variants.{v}"), g)),
        );
        for (key, grid) in grids {
            for (field, candidates) in grid {
                let key = format!("{key}.{field}");
                if candidates.is_empty() || candidates.iter().any(|x| !x.is_finite()) {
                    return Err(Error::recipe(key, "expected a non-empty list of finite numbers"));
                }
                // Fields a trial's training does not take from its candidate: the trial's own
                // seed, where and how fast it runs, and the checklist's settings.
                let ignored = ["seed", "train.threads", "train.device", "train.stop_margin"];
                if ignored.contains(&field.as_str()) || field.starts_with("checklist.") {
                    return Err(Error::recipe(
                        key,
                        format!(
                            "a trial does not train differently with `{field}`: every candidate would run the same"
                        ),
                    ));
                }
                if !numeric(field) {
                    return Err(Error::recipe(
                        key,
                        format!("`{field}` is not a numeric field of the recipe"),
                    ));
                }
            }
            let combinations = grid.values().fold(1usize, |n, c| n.saturating_mul(c.len()));
            if combinations.saturating_mul(t.seeds) > MAX_TUNE_CANDIDATES {
                return Err(Error::recipe(
                    key,
                    format!(
                        "{combinations} combinations x {} tuning seeds; expected at most {MAX_TUNE_CANDIDATES} tuning runs per arm",
                        t.seeds
                    ),
                ));
            }
        }
        Ok(())
    }
}
