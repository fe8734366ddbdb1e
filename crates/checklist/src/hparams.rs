//! The checklist in TensorBoard's HParams plugin: the experiment (factor, variant, seed, every
//! override the plan sets, and the validation metrics) in an event file at the checklist's root,
//! and each trial's values in its run dir, grouped by arm so the table averages an arm's seeds.
//! `tensorboard --logdir <checklist>` then shows the HParams table and parallel coordinates.
use super::plan::{Trial, Variant};
use darkmagic_base::error::Result;
use darkmagic_base::tensorboard::{EventWriter, HParam};
use std::path::Path;

/// The validation figures the HParams table shows (the scalars every trial writes).
const METRICS: [&str; 3] = ["val/accuracy", "val/accuracy_tta", "val/accuracy_ema"];

/// Writes the experiment of a checklist whose variants are `variants` into `root`.
pub fn write_experiment(root: &Path, variants: &[Variant]) -> Result<()> {
    let mut hparams = vec![
        ("factor".to_string(), HParam::Text(String::new())),
        ("variant".to_string(), HParam::Text(String::new())),
        ("seed".to_string(), HParam::Number(0.0)),
    ];
    for (key, value) in variants.iter().flat_map(|v| v.overrides.iter()) {
        if !hparams.iter().any(|(k, _)| k == key) {
            hparams.push((key.clone(), value_of(value)));
        }
    }
    EventWriter::create(root)?.hparams_experiment("darkmagic checklist", &hparams, &METRICS)
}

/// Writes `trial`'s hyperparameters into its run dir `dir`.
pub fn write_session(dir: &Path, trial: &Trial) -> Result<()> {
    let (factor, variant) = trial.arm.factor_variant();
    let mut hparams = vec![
        ("factor".to_string(), HParam::Text(factor)),
        ("variant".to_string(), HParam::Text(variant)),
        ("seed".to_string(), HParam::Number(trial.seed as f64)),
    ];
    let overrides = trial.arm.overrides().into_iter().chain(trial.tuned.clone());
    hparams.extend(overrides.map(|(k, v)| (k, value_of(&v))));
    EventWriter::create(dir)?.hparams_session(&hparams, &trial.arm.label())
}

/// A recipe value as a hyperparameter: numbers as numbers, anything else as its TOML text.
fn value_of(v: &toml::Value) -> HParam {
    match v {
        toml::Value::Float(x) => HParam::Number(*x),
        toml::Value::Integer(i) => HParam::Number(*i as f64),
        toml::Value::String(s) => HParam::Text(s.clone()),
        other => HParam::Text(other.to_string()),
    }
}
