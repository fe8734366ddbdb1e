//! TensorBoard event files read back by TensorBoard's own `EventAccumulator` (PyPI
//! `tensorboard`, installed by scripts/setup.sh): every scalar and step equal to metrics.jsonl.
mod common;
use common::{ok, tempdir, train_one_epoch};
use std::collections::BTreeMap;

/// What a Python `script` run with the project's `.venv` (where TensorBoard is) prints as JSON
/// for the event files in `dir` (its `sys.argv[1]`).
fn python_json<T: serde::de::DeserializeOwned>(script: &str, dir: &std::path::Path) -> T {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The scalars of the event files in `dir` as TensorBoard reads them: tag -> [(step, value)].
fn read_back(dir: &std::path::Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
"#;
    python_json(script, dir)
}

#[test]
fn every_epoch_is_in_tensorboard_as_metrics_jsonl_has_it() {
    let dir = tempdir("tensorboard").join("run");
    ok(train_one_epoch(
        &dir,
        &["--set", "train.epochs=2", "--set", "augment.tta_flip=true"],
    ));
    let scalars = read_back(&dir);
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(metrics.len(), 2);
    let fields = [
        ("train/loss", "train_loss"),
        ("train/accuracy", "train_acc"),
        ("val/loss", "val_loss"),
        ("val/accuracy", "val_acc"),
        ("val/top5", "val_top5"),
        ("val/accuracy_tta", "val_acc_tta"),
        ("lr", "lr"),
        ("weight_decay", "weight_decay"),
        ("images_per_sec", "images_per_sec"),
    ];
    for (tag, field) in fields {
        // Event files hold float32 scalars: each metric as f32, exactly.
        let want: Vec<(i64, f64)> = metrics
            .iter()
            .map(|m| (m["epoch"].as_i64().unwrap(), m[field].as_f64().unwrap() as f32 as f64))
            .collect();
        assert_eq!(scalars.get(tag), Some(&want), "{tag}");
    }
    assert_eq!(scalars.len(), fields.len(), "{:?}", scalars.keys());
}

/// The HParams plugin's data of the event files in `dir`, as TensorBoard parses it: tag ->
/// the `HParamsPluginData` message as JSON.
fn hparams_back(dir: &std::path::Path) -> serde_json::Value {
    let script = r#"
import json, sys
from google.protobuf import json_format
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
ea = EventAccumulator(sys.argv[1])
ea.Reload()
out = {}
for tag, content in ea.PluginTagToContent("hparams").items():
    out[tag] = json_format.MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(content))
print(json.dumps(out))
"#;
    python_json(script, dir)
}

#[test]
fn a_checklist_is_an_hparams_experiment_with_one_session_per_trial() {
    let dir = tempdir("tensorboard-hparams");
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        "[model]\nwidth = 0.25\n[train]\nepochs = 1\nbatch_size = 32\n[schedule]\nwarmup_epochs = 0.0\ncycles = 1\n\
         [checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\ncombine = false\n\
         [checklist.factors.label_smoothing]\n\"0\" = { \"loss.label_smoothing\" = 0.0 }\n",
    )
    .unwrap();
    let out = dir.join("out");
    ok(common::checklist(&recipe, &out, &[]).output().unwrap());
    let root = hparams_back(&out);
    let experiment = &root["_hparams_/experiment"]["experiment"];
    let names: Vec<&str> = experiment["hparamInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["factor", "variant", "seed", "loss.label_smoothing"],
        "{experiment}"
    );
    assert_eq!(experiment["metricInfos"][0]["name"]["tag"], "val/accuracy");
    let session =
        &hparams_back(&out.join("trials/label_smoothing=0/seed-0"))["_hparams_/session_start_info"]["sessionStartInfo"];
    assert_eq!(session["groupName"], "label_smoothing=0", "{session}");
    let h = &session["hparams"];
    assert_eq!(
        (&h["factor"], &h["variant"], &h["seed"], &h["loss.label_smoothing"]),
        (
            &serde_json::json!("label_smoothing"),
            &serde_json::json!("0"),
            &serde_json::json!(0.0),
            &serde_json::json!(0.0)
        ),
        "{session}"
    );
    let baseline =
        &hparams_back(&out.join("trials/baseline/seed-0"))["_hparams_/session_start_info"]["sessionStartInfo"];
    assert_eq!(baseline["hparams"]["factor"], "baseline", "{baseline}");
}
