//! The checklist on external trainers: timm's real train.py (tests/fixtures/timm) on an image
//! folder the test writes, and a tiny trainer of our own for the failure paths.
mod common;
use common::{checklist, ok, read_json, tempdir};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The project's virtualenv Python (scripts/setup.sh installs torch and timm there).
fn python() -> String {
    root().join(".venv/bin/python").display().to_string()
}

/// An image folder as timm reads it: `train/` and `validation/`, two classes (dark, light) of
/// 32x32 RGB PNGs.
fn image_folder(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    for (split, n) in [("train", 8u32), ("validation", 4)] {
        for (class, base) in [("dark", 30u32), ("light", 190)] {
            let d = data.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                image::RgbImage::from_fn(32, 32, |x, y| {
                    let v = (base + (x * 7 + y * 13 + i * 17) % 50) as u8;
                    image::Rgb([v, v / 2 + 20, 255 - v])
                })
                .save(d.join(format!("{i}.png")))
                .unwrap();
            }
        }
    }
    data
}

/// Every seed of every arm in `summary.json`, with its run dir.
fn seeds(out: &Path) -> Vec<(PathBuf, Value)> {
    let s = read_json(&out.join("summary.json"));
    let arms: Vec<Value> = std::iter::once(s["baseline"].clone())
        .chain(s["trials"].as_array().unwrap().iter().cloned())
        .collect();
    arms.iter()
        .flat_map(|a| {
            let label = a["label"].as_str().unwrap().to_string();
            a["seeds"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .map(move |(k, seed)| (out.join("trials").join(&label).join(format!("seed-{k}")), seed.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn timm_train_py_checklist_reads_each_trials_last_eval_top1() {
    let dir = tempdir("external-timm");
    let data = image_folder(&dir);
    let recipe = dir.join("timm.toml");
    let train_py = root().join("tests/fixtures/timm/train.py");
    std::fs::write(
        &recipe,
        format!(
            r#"seed = 0
[data]
path = "{data}"
[train]
epochs = 1
[checklist]
plan = "timm"
skip = ["lr_regime", "optimizer", "weight_decay", "augmentation", "mixup"]
seeds = 2
max_seeds = 2
combine = false
[external]
command = ["{python}", "{train_py}"]
[external.args]
"--data-dir" = "{{data}}"
"--model" = "resnet10t"
"--num-classes" = 2
"--img-size" = 32
"--input-size" = [3, 32, 32]
"-b" = 8
"--epochs" = "{{epochs}}"
"--seed" = "{{seed}}"
"--opt" = "sgd"
"--lr" = 0.01
"--sched" = "cosine"
"--warmup-epochs" = 0
"--smoothing" = 0.1
"--workers" = 0
"--no-prefetcher" = true
"--device" = "cpu"
"--output" = "{{run_dir}}"
"--experiment" = "timm"
[external.metric]
csv = "timm/summary.csv"
key = "eval_top1"
scale = 0.01
"#,
            data = data.display(),
            python = python(),
            train_py = train_py.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let text = ok(checklist(&recipe, &out, &["--parallel", "2"]).output().unwrap());
    assert!(
        text.contains("Metric: the external trainer's metric, eval_top1 (last row of timm/summary.csv) x 0.01"),
        "{text}"
    );
    let seeds = seeds(&out);
    let labels: Vec<String> = seeds.iter().map(|(d, _)| d.display().to_string()).collect();
    assert_eq!(seeds.len(), 6, "baseline and 2 variants x 2 seeds: {labels:?}");
    for (run_dir, seed) in &seeds {
        assert_eq!(seed["status"], "completed", "{}", run_dir.display());
        let csv = std::fs::read_to_string(run_dir.join("timm/summary.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "eval_top1").unwrap();
        let last: f64 = csv
            .lines()
            .last()
            .unwrap()
            .split(',')
            .nth(col)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(seed["val_acc"].as_f64().unwrap(), last * 0.01, "{}", run_dir.display());
        let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap();
        assert!(log.contains("--smoothing"), "the command line is logged: {log}");
        let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), 1, "one epoch from the CSV's one row");
    }
    // Each variant ran with its own flag value.
    let args =
        |label: &str| std::fs::read_to_string(out.join("trials").join(label).join("seed-1/timm/args.yaml")).unwrap();
    assert!(args("label_smoothing=0.2").contains("smoothing: 0.2"));
    assert!(args("label_smoothing=0").contains("smoothing: 0.0"));
    assert!(args("baseline").contains("smoothing: 0.1") && args("baseline").contains("seed: 1"));
}

/// A checklist recipe of the tiny trainer (`tests/fixtures/tiny_trainer.py`) in `dir`, one seed,
/// with `factors` under `[checklist.factors.mode]`, the baseline's `--mode`, and `external`
/// lines added to its `[external]` section.
fn tiny_trainer_recipe(dir: &Path, factors: &str, mode: &str, external: &str) -> PathBuf {
    let recipe = dir.join("tiny.toml");
    let tiny = root().join("tests/fixtures/tiny_trainer.py");
    std::fs::write(
        &recipe,
        format!(
            r#"[checklist]
plan = "none"
seeds = 1
max_seeds = 1
combine = false
[checklist.factors.mode]
{factors}
[external]
command = ["{python}", "{tiny}"]
{external}
[external.args]
"--seed" = "{{seed}}"
"--mode" = "{mode}"
[external.metric]
regex = "acc=([0-9.a-z]+)"
"#,
            python = python(),
            tiny = tiny.display()
        ),
    )
    .unwrap();
    recipe
}

#[test]
fn a_trainer_that_crashes_prints_no_metric_or_nan_or_hangs_fails_with_its_log() {
    let dir = tempdir("external-tiny");
    let recipe = tiny_trainer_recipe(
        &dir,
        r#"crash = { "--mode" = "crash" }
silent = { "--mode" = "silent" }
nan = { "--mode" = "nan" }
huge = { "--mode" = "huge" }
binary = { "--mode" = "binary" }
longline = { "--mode" = "longline" }
orphan = { "--mode" = "orphan" }
slow = { "--mode" = "slow" }
[checklist.factors.lr]
"0.2" = { "--lr" = 0.2 }"#,
        "ok",
        "timeout = 2.0",
    );
    let out = dir.join("out");
    let started = std::time::Instant::now();
    let o = checklist(&recipe, &out, &["--parallel", "2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        started.elapsed().as_secs() < 30,
        "the slow trainer was killed at its timeout"
    );
    let by_label: Vec<(String, Value)> = seeds(&out)
        .into_iter()
        .map(|(d, s)| {
            (
                d.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned(),
                s,
            )
        })
        .collect();
    let get = |label: &str| by_label.iter().find(|(l, _)| l == label).unwrap().1.clone();
    assert_eq!(get("baseline")["val_acc"], 0.6);
    assert_eq!(get("lr=0.2")["val_acc"], 0.7);
    // Output that is not text, a line without end, and a child left holding the output: the
    // metric is still read, and the trial ends when the trainer does.
    for label in ["mode=binary", "mode=longline", "mode=orphan"] {
        assert_eq!(
            (get(label)["status"].clone(), get(label)["val_acc"].clone()),
            ("completed".into(), 0.6.into()),
            "{label}"
        );
    }
    let log = std::fs::read(out.join("trials/mode=longline/seed-0/train.log")).unwrap();
    let longest = log.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap();
    assert_eq!(longest, 64 << 10, "a line is kept up to its bound");
    let log = std::fs::read_to_string(out.join("trials/mode=binary/seed-0/train.log")).unwrap();
    assert!(log.contains("\u{fffd}\u{fffd} not text \u{fffd}"), "{log}");
    for (label, why) in [
        ("mode=crash", "exit status: 1"),
        ("mode=silent", "no line of its output matched external.metric.regex"),
        ("mode=nan", "the metric is NaN"),
        (
            "mode=huge",
            "the metric is 1e308, not a finite number of magnitude at most 1e15",
        ),
        ("mode=slow", "timed out after 2 s (external.timeout) and was killed"),
    ] {
        let s = get(label);
        assert_eq!(s["status"], "failed", "{label}");
        assert!(s["error"].as_str().unwrap().contains(why), "{label}: {s}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("ZeroDivisionError: the loss divided by zero"),
        "the report shows the end of the crashed trainer's log"
    );
}

/// The trainer's script edited between two runs of a checklist: the rerun is refused, naming
/// the trial and the script, before anything runs; with the script's bytes restored it resumes
/// and reruns nothing.
#[test]
fn a_rerun_after_the_trainers_script_changed_is_refused() {
    let dir = tempdir("external-edited");
    let recipe = tiny_trainer_recipe(&dir, r#"lr = { "--lr" = 0.1 }"#, "ok", "");
    let script = dir.join("trainer.py");
    std::fs::copy(root().join("tests/fixtures/tiny_trainer.py"), &script).unwrap();
    let text = std::fs::read_to_string(&recipe).unwrap();
    let shipped = root().join("tests/fixtures/tiny_trainer.py").display().to_string();
    std::fs::write(&recipe, text.replace(&shipped, &script.display().to_string())).unwrap();
    let out = dir.join("out");
    ok(checklist(&recipe, &out, &[]).output().unwrap());
    let record = read_json(&out.join("trials/baseline/seed-0/trial.json"));
    assert_eq!(record["code"]["files"], 2, "the interpreter and the script: {record}");
    let original = std::fs::read(&script).unwrap();
    let mut edited = original.clone();
    edited.extend_from_slice(b"# edited\n");
    std::fs::write(&script, &edited).unwrap();
    let o = checklist(&recipe, &out, &[]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("trial.json") && e.contains(&format!("{}, external.command) have changed since", script.display())),
        "{e}"
    );
    std::fs::write(&script, &original).unwrap();
    let before = std::fs::metadata(out.join("trials/baseline/seed-0/result.json"))
        .unwrap()
        .modified()
        .unwrap();
    ok(checklist(&recipe, &out, &[]).output().unwrap());
    let after = std::fs::metadata(out.join("trials/baseline/seed-0/result.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "nothing ran again");
}

#[test]
fn shipped_external_recipes_plan_their_trials() {
    for (recipe, arms) in [
        ("recipes/timm.toml", 11),
        ("recipes/timm-fashion-mnist.toml", 11),
        ("examples/own_trainer/recipe.toml", 5),
    ] {
        let o = common::bin()
            .current_dir(root())
            .args(["checklist", "--dry-run", "--recipe", recipe])
            .output()
            .unwrap();
        let text = ok(o);
        assert!(text.contains(&format!("({arms} arms x")), "{recipe}: {text}");
        if recipe.contains("timm") {
            assert!(
                text.contains("wd_schedule: timm's train.py has no weight-decay schedule"),
                "{recipe}: {text}"
            );
        }
    }
}

/// Whether process `pid` still runs (a zombie, killed and waiting to be reaped, does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn what_a_trainer_starts_in_a_session_of_its_own_ends_with_the_trial() {
    let dir = tempdir("external-escape");
    // Both trials escape: the baseline's mode, and a variant that changes only the lr.
    let recipe = tiny_trainer_recipe(&dir, r#"escape-lr = { "--lr" = 0.2 }"#, "escape", "");
    let out = dir.join("out");
    let o = checklist(&recipe, &out, &["--parallel", "2"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for trial in ["baseline", "mode=escape-lr"] {
        let pid = std::fs::read_to_string(out.join(format!("trials/{trial}/seed-0/escaped.pid"))).unwrap();
        assert!(!alive(pid.trim()), "{trial}: the setsid child {pid} outlived its trial");
    }
}

#[test]
fn a_trial_whose_darkmagic_train_is_killed_leaves_no_stray() {
    let dir = tempdir("external-escape-killed");
    // The baseline's trainer starts a setsid child and waits; the variant finishes at once.
    let recipe = tiny_trainer_recipe(&dir, r#"ok = { "--mode" = "ok" }"#, "escape-wait", "");
    let out = dir.join("out");
    let mut child = checklist(&recipe, &out, &["--parallel", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let trial = out.join("trials/baseline/seed-0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !trial.join("train.pid").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let train = std::fs::read_to_string(trial.join("train.pid")).unwrap();
    let stray = std::fs::read_to_string(trial.join("escaped.pid")).unwrap();
    // SIGKILL to `darkmagic train` itself: none of its code runs after it.
    let killed = std::process::Command::new("kill")
        .args(["-9", train.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the killed trial failed");
    assert!(
        !alive(stray.trim()),
        "the setsid child {stray} outlived its killed trial"
    );
}

/// A metric CSV with a row the records could not hold (NaN, infinite, 1e300) anywhere, not
/// only in its last row: the trial fails naming the file, line and column, and writes no
/// metrics.jsonl its readers would refuse (which stopped every later report).
#[test]
fn a_metric_csv_row_that_is_not_finite_fails_the_trial_by_name() {
    let dir = tempdir("external-csv-nan");
    for (value, shown) in [("nan", "NaN"), ("inf", "inf"), ("1e300", "1e300")] {
        let recipe = dir.join(format!("{value}.toml"));
        std::fs::write(
            &recipe,
            format!(
                "[external]\ncommand = [\"sh\", \"-c\", \"printf 'acc\\\\n0.5\\\\n{value}\\\\n0.4\\\\n' > m.csv\"]\n\
                 [external.metric]\ncsv = \"m.csv\"\nkey = \"acc\"\n"
            ),
        )
        .unwrap();
        let run_dir = dir.join(format!("run-{value}"));
        let o = common::bin()
            .args(["train", "--recipe", recipe.to_str().unwrap(), "--run-dir"])
            .arg(&run_dir)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{value}: {e}");
        assert!(
            e.contains("m.csv line 3: column `acc` is ") && e.contains(shown),
            "{value}: {e}"
        );
        assert!(!run_dir.join("metrics.jsonl").exists(), "{value}: no metrics written");
    }
}

/// `dir/trainer.sh` holding `body`, made executable, and `dir/trainer.toml`: `sections` and an
/// `[external]` trainer running the script, its metric read from `acc=` in its output.
fn script_trainer(dir: &Path, body: &str, sections: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let trainer = dir.join("trainer.sh");
    std::fs::write(&trainer, body).unwrap();
    std::fs::set_permissions(&trainer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let recipe = dir.join("trainer.toml");
    let external = format!(
        "[external]\ncommand = [\"{}\"]\n[external.metric]\nregex = \"acc=([0-9.]+)\"\n",
        trainer.display()
    );
    std::fs::write(&recipe, format!("{sections}{external}")).unwrap();
    recipe
}

/// A trainer's child in a process group of its own but the same session (`set -m`, Python's
/// `process_group=0`), holding the output pipe: the group kill misses it and darkmagic would
/// wait for the pipe's end. It ends with the trainer, and the run ends at once.
#[test]
fn a_child_in_a_group_of_its_own_ends_with_its_trainer() {
    let dir = tempdir("external-own-group");
    let pids = dir.join("pids");
    let body = format!(
        "#!/bin/bash\nset -m\nsleep 300 &\necho $! >> '{}'\necho acc=0.5\n",
        pids.display()
    );
    let recipe = script_trainer(&dir, &body, "");
    let start = std::time::Instant::now();
    let o = common::bin()
        .args(["train", "--recipe", recipe.to_str().unwrap(), "--run-dir"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        start.elapsed().as_secs() < 60,
        "the run waited on its stray: {:?}",
        start.elapsed()
    );
    let pid = std::fs::read_to_string(&pids).unwrap();
    assert!(!alive(pid.trim()), "the child {pid} outlived its trainer");
    // darkmagic holds no weights of an external trainer's run: eval says so.
    let o = common::bin()
        .args(["eval", "--run-dir"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("trained with an external trainer"),
        "{e}"
    );
}

#[test]
fn a_killed_checklist_leaves_nothing_a_wrapper_script_started() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("external-wrapper");
    let pids = dir.join("pids");
    let wrapper = dir.join("wrapper.sh");
    // A wrapper as users write them: it starts the real work in the background and waits.
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nsleep 300 &\necho $! >> '{}'\nwait\n", pids.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let recipe = dir.join("wrapper.toml");
    std::fs::write(
        &recipe,
        format!(
            r#"[checklist]
plan = "none"
seeds = 1
max_seeds = 1
combine = false
[checklist.factors.x]
a = {{ "--x" = 1 }}
[external]
command = ["{}"]
[external.metric]
regex = "acc=([0-9.]+)"
"#,
            wrapper.display()
        ),
    )
    .unwrap();
    let mut child = checklist(&recipe, &dir.join("out"), &["--parallel", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = |n| std::fs::read_to_string(&pids).is_ok_and(|s| s.lines().count() == n);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started(2) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started(2), "both trials started their work");
    child.kill().unwrap(); // SIGKILL: no code of the checklist runs after it
    child.wait().unwrap();
    let workers: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while workers.iter().any(|p| alive(p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<&String> = workers.iter().filter(|p| alive(p)).collect();
    assert!(
        left.is_empty(),
        "still running after the checklist was killed: {left:?}"
    );
}

/// A trainer's `setsid` child outlives neither a `darkmagic train` ended by Ctrl-C (SIGINT) nor
/// a checklist ended by SIGTERM (its trials get SIGTERM as their parent dies): the trial kills
/// the trainer's group and its strays before it ends by the signal. Both used to leave the
/// stray running under init.
#[test]
fn a_trainer_stray_dies_with_an_interrupted_or_killed_train_or_a_terminated_checklist() {
    let dir = tempdir("external-signal");
    let pids = dir.join("pids");
    let body = format!(
        "#!/bin/sh\nsetsid sleep 300 &\necho $! >> '{}'\nsleep 300\n",
        pids.display()
    );
    let checklist_of_one = "[checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\ncombine = false\n\
                            [checklist.factors.x]\na = { \"--x\" = 1 }\n";
    let recipe = script_trainer(&dir, &body, checklist_of_one);
    let wait_for = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !std::fs::read_to_string(&pids).is_ok_and(|s| s.lines().count() >= n) {
            assert!(std::time::Instant::now() < deadline, "the trainers started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let signal = |pid: u32, sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    let train = |run: &str| {
        common::bin()
            .args([
                "train",
                "--recipe",
                recipe.to_str().unwrap(),
                "--run-dir",
                dir.join(run).to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut interrupted = train("run");
    wait_for(1);
    signal(interrupted.id(), "-INT");
    assert!(!interrupted.wait().unwrap().success());
    // SIGKILL to a `darkmagic train` run on its own, with no subreaper above it: its guard
    // ends the trainer's group and every process tagged with the run.
    let mut killed = train("killed");
    wait_for(2);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let mut check = checklist(&recipe, &dir.join("out"), &["--parallel", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(4);
    signal(check.id(), "-TERM");
    check.wait().unwrap();
    let strays: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while strays.iter().any(|p| alive(p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<&String> = strays.iter().filter(|p| alive(p)).collect();
    assert!(left.is_empty(), "still running: {left:?} of {strays:?}");
}

#[test]
fn data_changed_while_the_trials_ran_stops_the_checklist() {
    // The trainer itself appends to a file of the data set (a `sh -c` script naming it: a
    // command element with a `/` is left as written unless it is a relative path that exists), as
    // another process editing the data during a checklist would: the trials record the fingerprint of the start, and the look
    // would pair trials that trained on different bytes.
    let dir = tempdir("external-data-changes");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("a")).unwrap();
    std::fs::write(data.join("a/note.txt"), "start\n").unwrap();
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            r#"[data]
dataset = "folder"
path = "{data}"
[checklist]
plan = "none"
seeds = 1
max_seeds = 1
combine = false
[checklist.factors.mode]
b = {{ "--mode" = "b" }}
[external]
command = ["sh", "-c", "echo more >> {data}/a/note.txt; echo acc=0.5", "sh"]
[external.metric]
regex = "acc=([0-9.]+)"
"#,
            data = data.display()
        ),
    )
    .unwrap();
    let o = checklist(&recipe, &dir.join("out"), &[]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("changed while the checklist ran") && e.contains("none is judged"),
        "{e}"
    );
    // The round's trials are moved aside, so that a rerun on the restored data trains them again
    // instead of keeping results that may come from the other version.
    let out = dir.join("out");
    assert!(
        out.join("data-changed/trials/baseline/seed-0/result.json").is_file(),
        "{e}"
    );
    assert!(!out.join("trials/baseline/seed-0").exists());
}

#[test]
fn a_trainer_pointed_at_darkmagics_own_files_is_stopped_before_it_starts() {
    // A trainer's output named, through its environment, as the checklist's design record or the
    // trial's own result: the trial fails naming it, and the records stay darkmagic's.
    let dir = tempdir("external-own-files");
    // A link outside the checklist that leads to its design record (which does not exist yet).
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(dir.join("out/design.json"), &link).unwrap();
    let link_value = link.display().to_string();
    // A link to the checklist's folder, and a file below it that does not exist yet.
    std::os::unix::fs::symlink(dir.join("out"), dir.join("lnk_dir")).unwrap();
    let dir_link_value = format!("{}/design.json", dir.join("lnk_dir").display());
    for (value, whose) in [
        ("{run_dir}/../../../design.json", "the checklist's own files"),
        ("{run_dir}/result.json", "the run dir's own records"),
        ("python3 x.py > {run_dir}/trial.json", "the run dir's own records"),
        (link_value.as_str(), "the checklist's own files"),
        (dir_link_value.as_str(), "the checklist's own files"),
    ] {
        let _ = std::fs::remove_dir_all(dir.join("out"));
        let recipe = tiny_trainer_recipe(
            &dir,
            r#"b = { "--mode" = "nan" }"#,
            "ok",
            &format!("env = {{ OUT = \"{value}\" }}"),
        );
        let out = dir.join("out");
        let o = checklist(&recipe, &out, &[]).output().unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
        let log = std::fs::read_to_string(out.join("trials/baseline/seed-0/train.log")).unwrap();
        assert!(
            log.contains(whose) && log.contains("a trainer writes only in its run dir"),
            "{log}"
        );
    }
}
