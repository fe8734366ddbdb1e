//! The checklist on real clusters: a one-node Slurm (Debian's slurmctld, slurmd, munge) and a
//! Ray head (from the project's virtualenv), both started on localhost by `scripts/cluster/`,
//! give the same run dirs and `summary.json` as the local executor. Needs root (CI runs as root).
mod common;
use common::{Cluster, checklist, ok, tempdir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether process `pid` runs (a zombie waiting to be reaped does not count).
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// 3 arms (the baseline and two variants) on the embedded digits, in two rounds of 1 seed (the
/// first round cannot decide with one seed, so every arm runs the second).
fn plan(dir: &Path, epochs: usize) -> PathBuf {
    let p = dir.join("plan.toml");
    let text = format!(
        "[model]\nwidth = 0.25\n[augment]\npad = 1\n[schedule]\nwarmup_epochs = 0.0\n[train]\nepochs = {epochs}\nbatch_size = 32\n\
         [checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 2\nround_seeds = 1\n\
         [checklist.factors.label_smoothing]\n\"0\" = {{ \"loss.label_smoothing\" = 0.0 }}\n\
         [checklist.factors.se]\n\"off\" = {{ \"model.se\" = false }}\n"
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn summary(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("summary.json")).unwrap()
}

#[test]
fn slurm_matches_local_and_a_cancelled_task_resumes_from_its_checkpoint() {
    let dir = tempdir("slurm");
    let slurm = Cluster::up("slurm", &dir.join("cluster"));
    let slurmctld = std::fs::read_to_string(dir.join("cluster/slurmctld.pid"))
        .unwrap()
        .trim()
        .to_string();
    let conf = dir.join("cluster/slurm.conf");
    // SAFETY-free alternative to set_var: every command gets SLURM_CONF explicitly.
    let with_conf = |mut c: Command| {
        c.env("SLURM_CONF", &conf);
        c
    };

    let recipe = plan(&dir, 1);
    ok(checklist(&recipe, &dir.join("local"), &[]).output().unwrap());
    // A hostile checklist path: a Slurm filename pattern, quotes and shell substitutions.
    let hostile = dir.join("slurm %j 'q' \"d\" $(touch pwned) `touch pwned2`");
    let text = ok(with_conf(checklist(&recipe, &hostile, &["--executor", "slurm"]))
        .current_dir(&dir)
        .output()
        .unwrap());
    assert!(text.contains("submitted Slurm array job"), "{text}");
    assert_eq!(summary(&hostile), summary(&dir.join("local")));
    let script = std::fs::read_to_string(hostile.join("slurm/submit-1.sh")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-2") && script.contains("--resume"),
        "{script}"
    );
    let logs: Vec<String> = std::fs::read_dir(hostile.join("slurm"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".out"))
        .collect();
    assert_eq!(
        logs.len(),
        6,
        "task logs (2 rounds of 3) where darkmagic reads them: {logs:?}"
    );
    for name in ["pwned", "pwned2"] {
        assert!(
            !dir.join(name).exists() && !Path::new(name).exists(),
            "{name} was created"
        );
    }

    // Cancel the running tasks after a checkpoint: darkmagic resubmits, the trials resume.
    let long = plan(&dir, 6);
    let out = dir.join("cancelled");
    let child = with_conf(checklist(&long, &out, &["--executor", "slurm"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let checkpointed = || {
        ["baseline", "label_smoothing=0", "se=off"]
            .iter()
            .any(|a| out.join(format!("trials/{a}/seed-0/checkpoint.safetensors")).exists())
    };
    while !checkpointed() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancel = with_conf({
        let mut c = Command::new("scancel");
        c.args(["--name=darkmagic"]);
        c
    })
    .status()
    .unwrap();
    assert!(cancel.success());
    let text = ok(child.wait_with_output().unwrap());
    assert!(text.contains("ended CANCELLED") && text.contains("attempt 2"), "{text}");
    let resumed = ["baseline", "label_smoothing=0", "se=off"].iter().any(|a| {
        std::fs::read_to_string(out.join(format!("trials/{a}/seed-0/train.log")))
            .unwrap_or_default()
            .contains("resumed from epoch")
    });
    assert!(resumed, "no trial resumed from its checkpoint");
    let reference = dir.join("long-local");
    ok(checklist(&long, &reference, &[]).output().unwrap());
    assert_eq!(summary(&out), summary(&reference));

    // A trial that fails on the cluster: its status and the end of its log reach the report.
    let failing = dir.join("failing.toml");
    let text = std::fs::read_to_string(&recipe).unwrap()
        + "[checklist.factors.data]\n\"missing\" = { \"data.dataset\" = \"idx\", \"data.path\" = \"/nonexistent/mnist\" }\n";
    std::fs::write(&failing, text).unwrap();
    let failed = dir.join("failed");
    let o = with_conf(checklist(
        &failing,
        &failed,
        &["--executor", "slurm", "--attempts", "2"],
    ))
    .output()
    .unwrap();
    let (text, e) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "the exit status says trials failed: {e}");
    assert!(e.contains("1 trial(s) failed (data=missing seed 0)"), "{e}");
    assert!(
        text.contains("data=missing seed 0: Slurm task") && text.contains("ended FAILED"),
        "{text}"
    );
    let s: serde_json::Value = serde_json::from_str(&summary(&failed)).unwrap();
    let t = s["trials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "data=missing")
        .unwrap();
    assert_eq!(t["verdict"], "failed");
    assert!(
        t["seeds"][0]["error"].as_str().unwrap().contains("/nonexistent/mnist"),
        "{t}"
    );
    let html = std::fs::read_to_string(failed.join("report.html")).unwrap();
    assert!(
        html.contains("Failed and diverged runs") && html.contains("train-images-idx3-ubyte"),
        "report lacks the log tail"
    );
    drop(slurm);
    assert!(!alive(&slurmctld), "slurmctld {slurmctld} still runs");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file under `dir` (recursively), with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// The Ray jobs the head knows, through its Jobs API with `token`.
fn ray_jobs(token: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {token}")])
        .arg("http://127.0.0.1:8265/api/jobs/")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ray_with_token_authentication_matches_local() {
    let dir = tempdir("ray");
    let ray = Cluster::up("ray", &dir.join("cluster"));
    let token_file = dir.join("cluster/auth_token");
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    let recipe = plan(&dir, 1);
    ok(checklist(&recipe, &dir.join("local"), &[]).output().unwrap());
    let ray_args = ["--executor", "ray", "--ray-address", "http://127.0.0.1:8265"];
    // Without the token (and none where Ray's clients look): a clear error, no job submitted.
    let home = tempdir("ray-home");
    let o = checklist(&recipe, &dir.join("denied"), &ray_args)
        .env("HOME", &home)
        .env_remove("RAY_AUTH_TOKEN")
        .env_remove("RAY_AUTH_TOKEN_PATH")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("Ray answered 401") && e.contains("--ray-token-file"),
        "{e}"
    );
    assert_eq!(ray_jobs(&token).trim(), "[]", "a job was submitted without the token");
    // With the token, from --ray-token-file and from RAY_AUTH_TOKEN_PATH.
    let with_token = |out: &str, file_flag: bool| {
        let mut c = checklist(&recipe, &dir.join(out), &ray_args);
        if file_flag {
            c.args(["--ray-token-file", token_file.to_str().unwrap()]);
        } else {
            c.env("RAY_AUTH_TOKEN_PATH", &token_file);
        }
        c.env("HOME", &home).env_remove("RAY_AUTH_TOKEN").output().unwrap()
    };
    let o = with_token("ray", true);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = ok(o);
    assert!(
        text.contains("submitted 3 Ray job(s)") && text.contains("SUCCEEDED"),
        "{text}"
    );
    assert_eq!(summary(&dir.join("ray")), summary(&dir.join("local")));
    ok(with_token("ray-env", false));
    assert_eq!(summary(&dir.join("ray-env")), summary(&dir.join("local")));
    // The token is nowhere: not in the output, not in any file of the checklist directories.
    assert!(!output.contains(&token), "the output shows the token");
    for out in ["ray", "ray-env", "denied"] {
        for (path, bytes) in files(&dir.join(out)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&token), "{} holds the token", path.display());
        }
    }
    let log = std::fs::read_to_string(dir.join("ray/trials/baseline/seed-0/ray.log")).unwrap();
    assert!(log.contains("\"status\": \"completed\""), "{log}");
    let head = std::fs::read_to_string(dir.join("cluster/ray.pid"))
        .unwrap()
        .trim()
        .to_string();
    drop(ray);
    assert!(!alive(&head), "the Ray head {head} still runs");
    let _ = std::fs::remove_dir_all(&dir);
}
