//! The package manifest keeps the README's first command working: `cargo run` with no `--bin`
//! must pick the `darkmagic` CLI. Cargo picks `default-run` when the manifest names one, else the
//! only binary target; a second binary (the pip wheel's `darkmagic-core`, even one that needs a
//! feature) makes a manifest without `default-run` fail with "could not determine which binary
//! to run". The check asks Cargo itself (`cargo metadata`) what the manifest says, so it sees
//! every binary however it is declared (a `[[bin]]` table or a file under src/bin/).
use serde_json::Value;
use std::process::Command;

/// The package's `cargo metadata` record (no dependencies, offline: no network, no build lock).
fn package() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--offline", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "darkmagic")
        .expect("the darkmagic package")
        .clone()
}

/// What `cargo run` without `--bin` would run, by Cargo's rule, or why it cannot choose.
fn cargo_run_target(package: &Value) -> Result<Value, String> {
    let bins: Vec<&Value> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .collect();
    let chosen = match package["default_run"].as_str() {
        Some(name) => bins.iter().find(|t| t["name"] == name).copied(),
        None if bins.len() == 1 => Some(bins[0]),
        None => None,
    };
    chosen.cloned().ok_or_else(|| {
        let names: Vec<&str> = bins.iter().filter_map(|t| t["name"].as_str()).collect();
        format!("`cargo run` could not determine which binary to run among {names:?}")
    })
}

#[test]
fn cargo_run_without_bin_runs_the_darkmagic_cli() {
    let target = cargo_run_target(&package()).unwrap();
    assert_eq!(target["name"], "darkmagic");
    assert!(
        target["src_path"].as_str().unwrap().ends_with("src/main.rs"),
        "{target}"
    );
    // `cargo run` (no --features) refuses a binary that requires features.
    let required = target["required-features"].as_array();
    assert!(required.is_none_or(|f| f.is_empty()), "{target}");
}

#[test]
fn the_check_sees_a_second_binary_without_default_run() {
    let mut package = package();
    let targets = package["targets"].as_array_mut().unwrap();
    targets.push(serde_json::json!({"kind": ["bin"], "name": "another", "src_path": "src/bin/another.rs"}));
    assert_eq!(cargo_run_target(&package).unwrap()["name"], "darkmagic");
    package["default_run"] = Value::Null;
    let err = cargo_run_target(&package).unwrap_err();
    assert!(err.contains("\"another\""), "{err}");
}
