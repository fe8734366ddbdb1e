//! The checklist in a real MLflow tracking server (`mlflow server` of the project's .venv, sqlite
//! store, artifacts served), read back through MLflow's own Python client.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, ok, tempdir};

/// Two one-factor variants, 2 seeds, 1 epoch of a narrow ResNet-20 on the digits.
const RECIPE: &str = r#"
[model]
width = 0.25
[train]
epochs = 1
batch_size = 32
[schedule]
warmup_epochs = 0.0
[checklist]
plan = "none"
seeds = 2
max_seeds = 2
[checklist.factors.label_smoothing]
"0" = { "loss.label_smoothing" = 0.0 }
[checklist.factors.lr]
"low" = { "optim.lr" = 0.01 }
"#;

/// The trials of `RECIPE`: (run name, params).
const TRIALS: [(&str, &[(&str, &str)]); 6] = [
    ("baseline seed 0", &[("seed", "0")]),
    ("baseline seed 1", &[("seed", "1")]),
    (
        "label_smoothing=0 seed 0",
        &[("seed", "0"), ("loss.label_smoothing", "0.0")],
    ),
    (
        "label_smoothing=0 seed 1",
        &[("seed", "1"), ("loss.label_smoothing", "0.0")],
    ),
    ("lr=low seed 0", &[("seed", "0"), ("optim.lr", "0.01")]),
    ("lr=low seed 1", &[("seed", "1"), ("optim.lr", "0.01")]),
];

fn venv(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin").join(tool)
}

/// An `mlflow server` on a free port of 127.0.0.1, its store in `dir`; killed (with the
/// uvicorn it starts) when dropped.
struct Server {
    child: Child,
    uri: String,
}

impl Server {
    fn start(dir: &Path, port: u16) -> Server {
        let mut c = Command::new(venv("mlflow"));
        c.args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("artifacts"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap());
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let server = Server {
            child: c
                .spawn()
                .expect("mlflow server starts (bash scripts/setup.sh installs it)"),
            uri: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while !healthy(port) {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "mlflow server did not answer in 180 s; see {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    s.write_all(request.as_bytes()).is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("recipe.toml");
    std::fs::write(&p, RECIPE).unwrap();
    p
}

/// Every run of the checklist's experiment as MLflow's client reads it: name, status, params,
/// tags, metric histories (key -> [(step, value)]) and artifact paths.
fn runs_of(uri: &str, out: &Path) -> Vec<Value> {
    let script = r#"
import json, sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1])
exp = c.get_experiment_by_name(sys.argv[2])
runs = []
for r in c.search_runs([exp.experiment_id], max_results=1000):
    rid = r.info.run_id
    runs.append({
        "id": rid, "name": r.info.run_name, "status": r.info.status,
        "params": r.data.params, "tags": r.data.tags,
        "metrics": {k: sorted([m.step, m.value] for m in c.get_metric_history(rid, k)) for k in r.data.metrics},
        "artifacts": sorted(a.path for a in c.list_artifacts(rid)),
    })
print(json.dumps(runs))
"#;
    let name = format!("darkmagic {}", std::path::absolute(out).unwrap().display());
    let o = Command::new(venv("python"))
        .args(["-c", script, uri, &name])
        .output()
        .unwrap();
    let text = ok(o);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// `darkmagic report OUT --mlflow URI`, which must succeed; its stdout.
fn send_report(out: &Path, uri: &str) -> String {
    ok(bin()
        .args(["report", out.to_str().unwrap(), "--mlflow", uri])
        .output()
        .unwrap())
}

/// `darkmagic report OUT --mlflow URI`, which must succeed; its stderr (the warnings).
fn send_report_warnings(out: &Path, uri: &str) -> String {
    let o = bin()
        .args(["report", out.to_str().unwrap(), "--mlflow", uri])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    ok(o);
    stderr
}

/// Asserts that the server holds the whole checklist of `out`: a finished parent run with the
/// report and summaries, and one finished nested run per trial with its params, every epoch
/// of metrics.jsonl at its step, and its arm's verdict.
fn assert_sent(uri: &str, out: &Path) {
    let runs = runs_of(uri, out);
    assert_eq!(runs.len(), 1 + TRIALS.len(), "{runs:#?}");
    let parent = runs.iter().find(|r| r["name"] == "checklist").expect("a parent run");
    assert_eq!(parent["status"], "FINISHED");
    let artifacts: Vec<&str> = parent["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(artifacts, ["report.html", "summary.csv", "summary.json", "summary.md"]);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for (name, params) in TRIALS {
        let run = runs
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no run {name}"));
        assert_eq!(run["status"], "FINISHED", "{name}");
        assert_eq!(run["tags"]["mlflow.parentRunId"], parent["id"], "{name}");
        let expected: serde_json::Map<String, Value> =
            params.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        assert_eq!(run["params"], Value::Object(expected), "{name}");
        let (arm, seed) = name.rsplit_once(" seed ").unwrap();
        let dir = out.join("trials").join(arm).join(format!("seed-{seed}"));
        let epochs: Vec<Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for (key, field) in [("val/accuracy", "val_acc"), ("train/loss", "train_loss"), ("lr", "lr")] {
            let want: Vec<Value> = epochs
                .iter()
                .map(|e| serde_json::json!([e["epoch"], e[field]]))
                .collect();
            assert_eq!(run["metrics"][key], Value::Array(want), "{name} {key}");
        }
        let result: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
        assert_eq!(
            run["metrics"]["final/val_accuracy"],
            serde_json::json!([[result["epochs"], result["final_val_acc"]]]),
            "{name}"
        );
        let arm_summary = std::iter::once(&summary["baseline"])
            .chain(summary["trials"].as_array().unwrap())
            .find(|a| a["label"] == arm)
            .unwrap();
        let verdict = run["tags"]["darkmagic.verdict"].as_str().unwrap();
        let expected_verdict = arm_summary["verdict"].as_str().unwrap().replace('_', " ");
        assert_eq!(verdict, expected_verdict, "{name}");
        assert_eq!(run["tags"]["darkmagic.seeds"], "2", "{name}");
        assert_eq!(run["tags"]["darkmagic.status"], "completed", "{name}");
    }
}

#[test]
fn a_checklist_is_one_mlflow_run_per_trial_under_a_parent_with_the_report() {
    let dir = tempdir("mlflow-checklist");
    let server = Server::start(&dir, free_port());
    let out = dir.join("checklist");
    let stdout = ok(
        common::checklist(&write_recipe(&dir), &out, &["--parallel", "2", "--mlflow", &server.uri])
            .output()
            .unwrap(),
    );
    assert!(stdout.contains(&format!("mlflow: sent to {}", server.uri)), "{stdout}");
    assert_sent(&server.uri, &out);
    // Sending again (`report --mlflow`, with the directory as a relative path) adds no run and
    // keeps the experiment and parent run: the checklist directory records what was sent.
    let sent = std::fs::read_to_string(out.join("mlflow.json")).unwrap();
    ok(bin()
        .current_dir(&dir)
        .args(["report", "checklist", "--mlflow", &server.uri])
        .output()
        .unwrap());
    assert_eq!(std::fs::read_to_string(out.join("mlflow.json")).unwrap(), sent);
    assert_sent(&server.uri, &out);
    // mlflow.json deleted: the parent run the server holds is adopted, the trials' runs sent
    // again in place of the old ones (deleted), not beside them under a second parent.
    let parent = |runs: &[Value]| runs.iter().find(|r| r["name"] == "checklist").unwrap()["id"].clone();
    let before = parent(&runs_of(&server.uri, &out));
    std::fs::remove_file(out.join("mlflow.json")).unwrap();
    let stderr = send_report_warnings(&out, &server.uri);
    assert!(
        stderr.contains(&format!(
            "its parent run {} adopted, {} earlier runs deleted",
            before.as_str().unwrap(),
            TRIALS.len()
        )),
        "{stderr}"
    );
    assert_sent(&server.uri, &out);
    assert_eq!(parent(&runs_of(&server.uri, &out)), before);
    // Sent to another server and back: each holds the checklist once (mlflow.json keeps what
    // went to each; it kept one server's, and the way back sent everything again).
    std::fs::create_dir_all(dir.join("other")).unwrap();
    let other = Server::start(&dir.join("other"), free_port());
    send_report(&out, &other.uri);
    send_report(&out, &server.uri);
    assert_sent(&other.uri, &out);
    assert_sent(&server.uri, &out);

    // A trial still running (after `--detach`: its result.json not written yet) keeps the parent
    // run RUNNING; the `report --mlflow` that finds it finished ends both. A copy of the
    // checklist, never sent, stands in for one submitted to a cluster.
    let copy = dir.join("detached");
    ok(Command::new("cp").arg("-r").arg(&out).arg(&copy).output().unwrap());
    std::fs::remove_file(copy.join("mlflow.json")).unwrap();
    let result = copy.join("trials/lr=low/seed-1/result.json");
    let aside = dir.join("result.json.aside");
    std::fs::rename(&result, &aside).unwrap();
    let report = || send_report(&copy, &server.uri);
    report();
    let runs = runs_of(&server.uri, &copy);
    let status = |name: &str| runs.iter().find(|r| r["name"] == name).unwrap()["status"].clone();
    assert_eq!(status("checklist"), "RUNNING", "{runs:#?}");
    assert_eq!(status("lr=low seed 1"), "RUNNING");
    assert_eq!(status("lr=low seed 0"), "FINISHED");
    std::fs::rename(&aside, &result).unwrap();
    report();
    assert_sent(&server.uri, &copy);
}

#[test]
fn an_unreachable_server_is_an_error_before_anything_runs() {
    let dir = tempdir("mlflow-unreachable");
    let out = dir.join("checklist");
    let uri = format!("http://127.0.0.1:{}", free_port());
    let o = common::checklist(&write_recipe(&dir), &out, &["--mlflow", &uri])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("mlflow: {uri}")) && stderr.contains("no answer"),
        "{stderr}"
    );
    assert!(!out.join("trials").exists(), "no trial may start");
    let bad = common::checklist(&write_recipe(&dir), &out, &["--mlflow", "https://example.com"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected an http:// address"));
}

#[test]
fn a_server_lost_mid_checklist_costs_nothing_and_report_sends_the_rest() {
    let dir = tempdir("mlflow-lost");
    let port = free_port();
    let server = Server::start(&dir, port);
    let out = dir.join("checklist");
    let child = common::checklist(&write_recipe(&dir), &out, &["--parallel", "2", "--mlflow", &server.uri])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The checklist has its experiment and parent run once it recorded them: the server goes.
    let started = Instant::now();
    while !out.join("mlflow.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "no mlflow.json");
        std::thread::sleep(Duration::from_millis(100));
    }
    let uri = server.uri.clone();
    drop(server);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the checklist completes: {stderr}");
    assert!(stderr.contains("not sent to MLflow"), "{stderr}");
    for (name, _) in TRIALS {
        assert!(stderr.contains(name), "{name} is named as not sent: {stderr}");
    }
    assert!(
        stderr.contains(&format!("darkmagic report {} --mlflow {uri}", out.display())),
        "{stderr}"
    );
    // The server comes back on its store; `report --mlflow` sends what it lacks.
    let server = Server::start(&dir, port);
    ok(bin()
        .args(["report", out.to_str().unwrap(), "--mlflow", &server.uri])
        .output()
        .unwrap());
    assert_sent(&server.uri, &out);
}

/// A server restarted on an empty store after the checklist sent everything: the next send
/// (`report --mlflow`) finds the parent run gone, names the trials it sends again, and the new
/// store holds exactly one run per trial under one parent (none under the lost parent).
#[test]
fn a_server_restarted_empty_gets_each_trial_once_and_the_resent_trials_are_named() {
    let dir = tempdir("mlflow-restarted");
    let port = free_port();
    let (first, second) = (dir.join("first"), dir.join("second"));
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let server = Server::start(&first, port);
    let out = dir.join("checklist");
    ok(
        common::checklist(&write_recipe(&dir), &out, &["--parallel", "2", "--mlflow", &server.uri])
            .output()
            .unwrap(),
    );
    let record: Value = serde_json::from_str(&std::fs::read_to_string(out.join("mlflow.json")).unwrap()).unwrap();
    // What was sent to this (the only) server.
    let lost = record["servers"][0].clone();
    assert_eq!(lost["uri"], server.uri.as_str(), "{record}");
    drop(server);
    let server = Server::start(&second, port);
    let stderr = send_report_warnings(&out, &server.uri);
    let parent = lost["parent"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("no longer holds this checklist's parent run {parent}"))
            && stderr.contains("6 trials sent again"),
        "{stderr}"
    );
    for dir in lost["runs"].as_object().unwrap().keys() {
        assert!(stderr.contains(dir.as_str()), "{dir} named: {stderr}");
    }
    assert_sent(&server.uri, &out);

    // A trial whose result changed after its run ended (a failed trial retried): its run is
    // replaced by one of what the run dir holds, never kept stale nor doubled.
    let result = out.join("trials/lr=low/seed-1/result.json");
    let completed = std::fs::read_to_string(&result).unwrap();
    let mut failed: Value = serde_json::from_str(&completed).unwrap();
    failed["status"] = "failed".into();
    failed["error"] = "killed".into();
    failed["val_images"] = 0.into(); // as `record_failure` writes a failed run
    std::fs::write(&result, failed.to_string()).unwrap();
    let report = || send_report(&out, &server.uri);
    report();
    let runs = runs_of(&server.uri, &out);
    assert_eq!(runs.len(), 1 + TRIALS.len(), "{runs:#?}");
    let run = runs.iter().find(|r| r["name"] == "lr=low seed 1").unwrap();
    assert_eq!(
        (&run["status"], &run["tags"]["darkmagic.status"]),
        (&"FAILED".into(), &"failed".into())
    );
    std::fs::write(&result, completed).unwrap();
    report();
    assert_sent(&server.uri, &out);

    // Two trials' run ids swapped in mlflow.json: each trial's verdict would land in the other's
    // run. The server's runs are held to their trial folders; both trials are sent again.
    let path = out.join("mlflow.json");
    let mut record: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let runs = &mut record["servers"][0]["runs"];
    let (a, b) = ("trials/baseline/seed-0", "trials/lr=low/seed-1");
    let id_a = runs[a]["id"].clone();
    runs[a]["id"] = runs[b]["id"].clone();
    runs[b]["id"] = id_a;
    std::fs::write(&path, record.to_string()).unwrap();
    let stderr = send_report_warnings(&out, &server.uri);
    assert!(
        stderr.contains("2 trials sent again") && stderr.contains(a) && stderr.contains(b),
        "{stderr}"
    );
    assert_sent(&server.uri, &out);
}
