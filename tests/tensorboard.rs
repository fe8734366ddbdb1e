//! TensorBoard event files read back by TensorBoard's own `EventAccumulator` (PyPI
//! `tensorboard`, installed by scripts/setup.sh): every scalar and step equal to metrics.jsonl.
mod common;
use common::{ok, tempdir, train_one_epoch};
use std::collections::BTreeMap;

/// The scalars of the event files in `dir` as TensorBoard reads them: tag -> [(step, value)].
fn read_back(dir: &std::path::Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
"#;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
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
