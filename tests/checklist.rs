//! End-to-end tests of `darkmagic checklist` and `darkmagic report` on tiny plans.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, ok, tempdir};

/// The tiny plans' training: 2 epochs of a narrow ResNet-20 on the digits.
const TINY_TRAINING: &str = r#"
[model]
width = 0.25
[augment]
pad = 1
[train]
epochs = 2
batch_size = 32
"#;

/// A plan of two one-factor variants, 2 seeds, after `TINY_TRAINING`.
const TINY: &str = r#"
[checklist]
plan = "none"
seeds = 2
max_seeds = 2
[checklist.factors.label_smoothing]
"0" = { "loss.label_smoothing" = 0.0 }
[checklist.factors.lr]
"huge" = { "optim.lr" = 1e6, "schedule.warmup_epochs" = 0.0 }
"#;

fn write_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(&p, format!("{TINY_TRAINING}{TINY}")).unwrap();
    p
}

/// The tiny plan's checklist, two trials at once.
fn run_tiny(recipe: &Path, out: &Path) -> Command {
    common::checklist(recipe, out, &["--parallel", "2"])
}

/// Runs a command to success.
fn finish(mut c: Command) -> String {
    ok(c.output().unwrap())
}

fn summary(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// Starts the tiny plan's checklist of `recipe` in `out` and SIGKILLs it once `reached()` holds
/// (`what` names the moment, for the timeout's message).
fn kill_when(recipe: &Path, out: &Path, what: &str, reached: impl Fn() -> bool) {
    let mut child = run_tiny(recipe, out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !reached() {
        assert!(start.elapsed() < Duration::from_secs(120), "{what} never happened");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Each finished trial's `result.json` and its modification time.
fn result_times(out: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    results(out)
        .into_iter()
        .map(|p| (p.clone(), std::fs::metadata(&p).unwrap().modified().unwrap()))
        .collect()
}

/// Asserts that none of `done` was written again.
fn not_rerun(done: &[(PathBuf, std::time::SystemTime)]) {
    for (p, t) in done {
        assert_eq!(
            std::fs::metadata(p).unwrap().modified().unwrap(),
            *t,
            "{} was rerun",
            p.display()
        );
    }
}

fn results(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("trials"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|a| {
            std::fs::read_dir(a.path())
                .unwrap()
                .flatten()
                .map(|s| s.path().join("result.json"))
        })
        .filter(|p| p.exists())
        .collect();
    v.sort();
    v
}

#[test]
fn killed_checklist_resumes_without_rerunning_and_matches_an_uninterrupted_run() {
    let dir = tempdir("resume");
    let recipe = write_recipe(&dir);
    let reference = dir.join("reference");
    finish(run_tiny(&recipe, &reference));

    let out = dir.join("killed");
    kill_when(&recipe, &out, "two finished trials", || results(&out).len() >= 2);
    let done = result_times(&out);
    assert!(!out.join("summary.json").exists(), "killed before the report");

    finish(run_tiny(&recipe, &out));
    not_rerun(&done);
    assert_eq!(summary(&out), summary(&reference));

    // The report can be rebuilt from the run dirs alone.
    for f in ["summary.json", "summary.csv", "summary.md", "report.html"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    finish({
        let mut c = bin();
        c.args(["report", out.to_str().unwrap()]);
        c
    });
    assert_eq!(summary(&out), summary(&reference));
}

#[test]
fn diverging_variant_is_reported_and_the_rest_complete() {
    let dir = tempdir("diverge");
    let out = dir.join("out");
    finish(run_tiny(&write_recipe(&dir), &out));
    let s = summary(&out);
    let trials = s["trials"].as_array().unwrap();
    let huge = trials.iter().find(|t| t["label"] == "lr=huge").unwrap();
    assert_eq!(huge["verdict"], "diverged");
    assert!(
        huge["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "diverged")
    );
    let ls = trials.iter().find(|t| t["label"] == "label_smoothing=0").unwrap();
    assert!(
        ls["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "completed"),
        "{ls}"
    );
    assert_eq!(ls["seeds"].as_array().unwrap().len(), 2);
    // Two seeds are too few for a verdict (a t interval on one degree of freedom): no interval.
    assert!(ls["diff"].is_number() && ls["ci"].is_null(), "{ls}");
    assert_eq!(ls["verdict"], "too_few_seeds", "{ls}");
    assert!(
        s["baseline"]["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "completed")
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("lr=huge") && html.contains("diverged at step"),
        "report shows the log tail"
    );
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!html.contains("https://") && !html.contains("<script") && !html.contains("src="));
    // Each completed seed's accuracy links its run's per-class validation accuracy.
    let linked = ls["seeds"][0]["per_class"].as_str().unwrap();
    assert!(linked.ends_with("eval/val-classes.csv"), "{linked}");
    assert!(html.contains(&format!("<a href=\"{linked}\"")), "{linked}");
    let per_class = std::fs::read_to_string(out.join(linked)).unwrap();
    assert!(
        per_class.starts_with("index,class,images,correct,accuracy\n0,0,"),
        "{per_class}"
    );
    assert_opens_cleanly_in_chromium(&out.join("report.html"));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("lr=huge,lr,huge,2,") && l.ends_with(",diverged")),
        "{csv}"
    );
}

/// The lock text of a process: host, pid and start time (`/proc/<pid>/stat` field 22).
fn lock_text(host: &str, pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let start = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(19))
        .unwrap_or("1");
    format!("host={host}\npid={pid}\nstart={start}\n")
}

#[test]
fn a_second_checklist_in_the_same_directory_is_refused() {
    let dir = tempdir("lock");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let lock = out.join("checklist.lock");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let me = std::process::id();
    std::fs::write(&lock, lock_text(host.trim(), me)).unwrap();
    let recipe = dir.join("one.toml");
    std::fs::write(
        &recipe,
        "[model]\nwidth = 0.25\n[schedule]\nwarmup_epochs = 0.0\n[train]\nepochs = 1\nbatch_size = 32\n[checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\n\
         [checklist.factors.lr]\nlow = { \"optim.lr\" = 0.01 }\n",
    )
    .unwrap();
    let o = common::checklist(&recipe, &out, &[]).output().unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(&format!("another checklist (pid {me})")), "{e}");
    // With an MLflow server named, the lock is the answer too, before any word to the server
    // (none listens at port 9) and without an mlflow.json of its own.
    let o = common::checklist(&recipe, &out, &["--mlflow", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains(&format!("another checklist (pid {me})")),
        "{e}"
    );
    assert!(!out.join("mlflow.json").exists());
    // A lock from another host (a shared filesystem) is never taken over without --break-lock.
    std::fs::write(&lock, lock_text("node-17", me)).unwrap();
    let o = common::checklist(&recipe, &out, &[]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains(&format!("pid {me} on host node-17")) && e.contains("--break-lock"),
        "{e}"
    );
    ok(common::checklist(&recipe, &out, &["--break-lock"]).output().unwrap());
    assert!(!lock.exists(), "released at the end");
    // A lock whose process is gone (same host, no such pid) is taken over.
    std::fs::write(&lock, lock_text(host.trim(), 999_999_999)).unwrap();
    ok(common::checklist(&recipe, &out, &[]).output().unwrap());
}

#[test]
fn dry_run_lists_trials_changes_and_compute() {
    // An empty recipe: the article's defaults on the embedded digits.
    let defaults = tempdir("dry-run-defaults").join("defaults.toml");
    std::fs::write(&defaults, "").unwrap();
    let defaults = defaults.to_str().unwrap();
    let dry_run = |extra: &[&str]| {
        let fixed = ["checklist", "--recipe", defaults, "--dry-run", "--threads", "1"];
        bin().args(fixed).args(extra).output().unwrap()
    };
    let o = dry_run(&["--seeds", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("optimizer=adam") && text.contains("optim.name = \"adam\""),
        "{text}"
    );
    assert!(text.contains("30 trials (15 arms x 2 seeds)"), "{text}");
    assert!(text.contains("estimated time:"), "{text}");
    // The planned power is the product's rule simulated: the same figure from the library, at
    // the digits' margin of two validation images (2 / 179 = 1.12 pp).
    let cfg = darkmagic::recipe::ChecklistConfig {
        seeds: 2,
        ..Default::default()
    };
    let design = darkmagic::checklist::sequential::Design::new(&cfg, 179, 14);
    let (at, twice) = darkmagic::checklist::simulation::planned_power(&design, 1.0, 2000);
    let want = format!("sd 1 pp: {at:.2} at +1.12 pp, {twice:.2} at +2.23 pp");
    assert!(text.contains("planned power") && text.contains(&want), "{want}\n{text}");
    assert!(!text.contains("adds one seed"), "{text}");
    // Looks at 3, 6, 9, 10: the last round is one seed, and the dry run says so.
    let o = dry_run(&["--seeds", "3", "--max-seeds", "10", "--set", "checklist.round_seeds=3"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("warning: the last round adds one seed (9 to 10)"),
        "{text}"
    );
}

/// Loads the page in headless Chromium and checks that it rendered, with no console message:
/// the report's Content-Security-Policy (`default-src 'none'`) turns any network request into a
/// console error, so a clean console also means no request was made.
fn assert_opens_cleanly_in_chromium(page: &Path) {
    let profile = page.with_file_name("chromium-profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (bash scripts/setup.sh installs it)");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("<h1>darkmagic checklist</h1>") && dom.contains("<svg"),
        "page did not render: {dom:.300}"
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
}

/// The pid of the running process whose command line holds `needle`.
fn pid_of(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains(needle).then_some(pid)
    })
}

#[test]
fn a_binary_built_from_source_ignores_a_launcher_variable_it_did_not_set() {
    // Were it trusted, every trial would start through /bin/false and fail.
    let dir = tempdir("foreign-launcher");
    let recipe = write_recipe(&dir);
    let out = dir.join("checklist");
    let mut c = run_tiny(&recipe, &out);
    c.env("DARKMAGIC_LAUNCHER", "/bin/false");
    finish(c);
    let s = summary(&out);
    let seeds = s["baseline"]["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2, "{s}");
    assert!(seeds.iter().all(|x| x["status"] == "completed"), "{s}");
}

#[test]
fn without_a_recipe_the_checklist_is_the_plain_first_run() {
    // Nothing to resume in --out and no --recipe: the plain first-run recipe, whose plan tries
    // the article's recommendation for every factor it leaves plain.
    let out = tempdir("first-run").join("checklist");
    let o = bin()
        .args(["checklist", "--dry-run", "--threads", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (text, err) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    );
    let fashion = Path::new("/usr/share/datasets/fashion-mnist").is_dir();
    let file = if fashion {
        "recipes/first-run.toml"
    } else {
        "recipes/first-run-digits.toml"
    };
    assert!(
        err.contains("no --recipe: the first-run checklist") && err.contains(file),
        "{err}"
    );
    for changed in [
        "schedule.regime = \"cosine_power\"",
        "optim.nesterov = true",
        "loss.label_smoothing = 0.1",
        "model.downscale_activation = \"leaky_relu\"",
        "augment.policy = \"autoaugment_imagenet\"",
        "model.se = true",
    ] {
        assert!(text.contains(changed), "{changed} missing:\n{text}");
    }
    assert!(text.contains("first round: 64 trials (16 arms x 4 seeds)"), "{text}");
    assert!(!out.exists(), "a dry run writes nothing");
}

#[test]
fn a_crashed_trial_is_recorded_failed_and_the_exit_status_says_so() {
    let dir = tempdir("crash");
    let out = dir.join("out");
    let recipe = dir.join("crash.toml");
    std::fs::write(
        &recipe,
        "[model]\nwidth = 0.25\n[train]\nepochs = 30\nbatch_size = 32\n[checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\n\
         [checklist.factors.epochs]\n\"1\" = { \"train.epochs\" = 1, \"schedule.warmup_epochs\" = 0.0 }\n",
    )
    .unwrap();
    let child = common::checklist(&recipe, &out, &["--parallel", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Abort the baseline's trial process (as a crash in libtorch would) once it trains.
    let start = Instant::now();
    let pid = loop {
        let metrics = out.join("trials/baseline/seed-0/metrics.jsonl");
        if let Some(pid) = pid_of("trials/baseline/seed-0").filter(|_| metrics.exists()) {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the baseline trial never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Command::new("kill").args(["-ABRT", &pid.to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("1 trial(s) failed (baseline seed 0)"), "{e}");
    let s = summary(&out);
    let seed = &s["baseline"]["seeds"][0];
    assert_eq!(seed["status"], "failed", "{seed}");
    assert!(seed["error"].as_str().unwrap().contains("killed by signal 6"), "{seed}");
    assert_eq!(s["trials"][0]["seeds"][0]["status"], "completed");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("failed") && !html.contains("\"running\""));
    // Rerunning retries the failed trial (from its checkpoint) and ends cleanly.
    ok(common::checklist(&recipe, &out, &["--parallel", "2"]).output().unwrap());
    assert_eq!(summary(&out)["baseline"]["seeds"][0]["status"], "completed");
}

/// The tiny plan with sequential seeds: a first round of 2 seeds, then 2 more for the
/// undecided, and a learning-rate variant that trains (too slowly) instead of diverging.
fn sequential_plan() -> String {
    format!("{TINY_TRAINING}{TINY}")
        .replace("max_seeds = 2", "max_seeds = 4\nround_seeds = 2")
        .replace(
            r#""huge" = { "optim.lr" = 1e6, "schedule.warmup_epochs" = 0.0 }"#,
            r#""low" = { "optim.lr" = 0.001 }"#,
        )
}

#[test]
fn sequential_rounds_resume_after_a_kill_inside_the_second_round() {
    let dir = tempdir("rounds");
    let recipe = dir.join("seq.toml");
    let plan = sequential_plan();
    assert!(plan.contains("round_seeds = 2") && plan.contains(r#""low""#), "{plan}");
    std::fs::write(&recipe, plan).unwrap();
    let reference = dir.join("reference");
    finish(run_tiny(&recipe, &reference));
    let s = summary(&reference);
    assert_eq!(s["design"]["looks"], serde_json::json!([2, 4]));
    assert_eq!(s["design"]["rounds"], 2, "{}", s["design"]);
    for t in s["trials"].as_array().unwrap() {
        let v = t["verdict"].as_str().unwrap();
        assert!(["helps", "hurts", "equivalent", "undecided"].contains(&v), "{t}");
        let d = &t["decision"];
        assert_eq!(
            d["seeds"].as_u64().unwrap() as usize,
            t["seeds"].as_array().unwrap().len(),
            "{t}"
        );
        assert!(d["detectable"].as_f64().unwrap() > 0.0, "{t}");
    }
    // Killed inside the second round (a seed-2 trial has started), then rerun: the same summary.
    let out = dir.join("killed");
    kill_when(&recipe, &out, "a second-round trial", || {
        std::fs::read_dir(out.join("trials"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|a| a.path().join("seed-2/metrics.jsonl").exists())
    });
    finish(run_tiny(&recipe, &out));
    assert_eq!(summary(&out), summary(&reference));
    // The design was fixed at the first look: raising max_seeds on a rerun would spend error
    // again, so it is refused, naming the setting, before anything is run or written.
    assert_eq!(s["design"]["fixed"], true, "{}", s["design"]);
    let done = result_times(&reference);
    let baseline_toml = std::fs::read_to_string(reference.join("baseline.toml")).unwrap();
    let o = common::checklist(&recipe, &reference, &["--parallel", "2", "--max-seeds", "6"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("design.json") && e.contains("checklist.max_seeds = 4") && e.contains("asks for 6"),
        "{e}"
    );
    not_rerun(&done);
    assert_eq!(
        std::fs::read_to_string(reference.join("baseline.toml")).unwrap(),
        baseline_toml
    );
    assert_eq!(summary(&reference), s);
}

#[test]
fn early_stop_ends_a_hopeless_variant_at_half_its_epochs() {
    let dir = tempdir("early-stop");
    let recipe = dir.join("stop.toml");
    std::fs::write(
        &recipe,
        "[model]\nwidth = 0.25\n[schedule]\nwarmup_epochs = 0.0\n[train]\nepochs = 4\nbatch_size = 32\n\
         [checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\nearly_stop = true\nearly_stop_margin = 10.0\n\
         [checklist.factors.lr]\n\"low\" = { \"optim.lr\" = 0.0005 }\n\
         [checklist.factors.clip]\n\"never\" = { \"train.clip_grad\" = 1e9 }\n",
    )
    .unwrap();
    let out = dir.join("out");
    ok(run_tiny(&recipe, &out).output().unwrap());
    let s = summary(&out);
    let arm = |label: &str| {
        s["trials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == label)
            .unwrap()
            .clone()
    };
    let low = arm("lr=low");
    assert_eq!(low["verdict"], "stopped", "{low}");
    let seed = &low["seeds"][0];
    assert_eq!(
        (seed["status"].as_str(), seed["epochs"].as_u64()),
        (Some("stopped"), Some(2)),
        "{seed}"
    );
    assert!(seed["error"].as_str().unwrap().contains("stopped at epoch 2"), "{seed}");
    // A gradient-norm threshold never reached trains bit for bit as the baseline
    // (tests/training_options.rs), so it can never fall behind it, on any CPU.
    let never = arm("clip=never");
    assert_eq!(never["seeds"][0]["status"], "completed", "{never}");
    assert_eq!(never["seeds"][0]["val_acc"], s["baseline"]["seeds"][0]["val_acc"]);
    let trial = std::fs::read_to_string(out.join("trials/lr=low/seed-0/recipe.toml")).unwrap();
    assert!(
        trial.contains("stop_reference") && trial.contains("trials/baseline/seed-0"),
        "{trial}"
    );
    // Moved elsewhere, the trials' references name the old folder: still reported and resumed.
    let moved = dir.join("moved");
    std::fs::rename(&out, &moved).unwrap();
    ok(common::run(&["report", moved.to_str().unwrap()]));
    assert_eq!(summary(&moved)["trials"], s["trials"]);
    ok(run_tiny(&recipe, &moved).output().unwrap());
}

/// The tiny plan with the learning rate tuned per arm over two candidates, without the
/// diverging variant and without the combined recipe (after `TINY_TRAINING`).
const TUNED: &str = r#"
[checklist]
plan = "none"
seeds = 2
max_seeds = 2
combine = false
[checklist.factors.label_smoothing]
"0" = { "loss.label_smoothing" = 0.0 }
[checklist.factors.optimizer]
adam = { "optim.name" = "adam", "optim.lr" = 0.02 }
[checklist.tune]
fields = { "optim.lr" = [0.01, 1.0] }
"#;

/// Early stop beside tuning: a tuning run has no baseline trial of its seed to be held to (its
/// reference was the comparison seed's, not yet run), so it is never stopped; every trial runs.
#[test]
fn tuning_runs_are_not_held_to_an_early_stop_reference() {
    let dir = tempdir("tune-early-stop");
    let recipe = dir.join("tuned.toml");
    let tuned = TUNED.replace("combine = false", "combine = false\nearly_stop = true");
    std::fs::write(&recipe, format!("{TINY_TRAINING}{tuned}")).unwrap();
    let out = dir.join("out");
    finish(run_tiny(&recipe, &out));
    let tuning: Vec<PathBuf> = results(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/tune-"))
        .collect();
    assert_eq!(tuning.len(), 6, "3 arms x 2 candidates: {tuning:?}");
    for r in &tuning {
        let recipe = std::fs::read_to_string(r.with_file_name("recipe.toml")).unwrap();
        assert!(!recipe.contains("stop_reference"), "{}: {recipe}", r.display());
    }
}

#[test]
fn tuning_runs_first_resumes_and_fixes_each_arms_best_candidate_for_its_seeds() {
    let dir = tempdir("tune");
    let recipe = dir.join("tuned.toml");
    std::fs::write(&recipe, format!("{TINY_TRAINING}{TUNED}")).unwrap();
    let reference = dir.join("reference");
    finish(run_tiny(&recipe, &reference));

    let out = dir.join("killed");
    let tuning_results = || {
        results(&out)
            .iter()
            .filter(|p| p.to_string_lossy().contains("/tune-"))
            .count()
    };
    kill_when(&recipe, &out, "two finished tuning runs", || tuning_results() >= 2);
    let done = result_times(&out);
    finish(run_tiny(&recipe, &out));
    not_rerun(&done);
    let s = summary(&out);
    assert_eq!(s, summary(&reference));

    let tuning = s["tuning"].as_array().unwrap();
    assert_eq!(tuning.len(), 3, "baseline and two variants: {tuning:?}");
    for a in tuning {
        let label = a["label"].as_str().unwrap();
        let chosen = a["chosen"].as_u64().unwrap() as usize;
        let candidates = a["candidates"].as_array().unwrap();
        let lrs: Vec<f64> = candidates
            .iter()
            .map(|c| c["values"]["optim.lr"].as_f64().unwrap())
            .collect();
        // Multipliers of the arm's own learning rate: Adam's 0.1, the others the baseline's.
        let own = if label == "optimizer=adam" { 0.02 } else { 0.1 };
        assert_eq!(lrs, [own * 0.01, own]);
        let best = candidates
            .iter()
            .map(|c| c["mean"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!(candidates[chosen]["mean"].as_f64().unwrap(), best, "{label}");
        // Both of the arm's seeds trained at the chosen rate, on seeds unlike the tuning runs'.
        for k in 0..2 {
            let seed_dir = out.join("trials").join(label).join(format!("seed-{k}"));
            let r = std::fs::read_to_string(seed_dir.join("recipe.toml")).unwrap();
            assert!(r.contains(&format!("lr = {}", lrs[chosen])), "{label} seed {k}: {r}");
            assert!(r.contains(&format!("seed = {k}\n")), "{r}");
        }
        let tune_recipe =
            std::fs::read_to_string(out.join("trials").join(label).join("tune-0-seed-0/recipe.toml")).unwrap();
        assert!(tune_recipe.contains("seed = 1000\n"), "{tune_recipe}");
        // The best candidate is an edge of two: each arm is warned.
        assert!(a["warnings"][0].as_str().unwrap().contains("at the edge"), "{a}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"tuning\">Tuning</h2>") && html.contains("<title>chosen</title>"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("## Tuning") && md.contains("Warning: baseline: best optim.lr"),
        "{md}"
    );
}

/// A plan of one variant that clearly helps (a usable learning rate against one 400 times too
/// small), 3 seeds, with `extra` lines in its `[checklist]`: the recipe and the `--out` folder.
fn usable_lr_plan(name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let dir = tempdir(name);
    let recipe = dir.join("plan.toml");
    let plan = format!(
        "[optim]\nlr = 0.0005\n[checklist]\nplan = \"none\"\nseeds = 3\nmax_seeds = 3\n{extra}\
         [checklist.factors.lr]\n\"usable\" = {{ \"optim.lr\" = 0.2 }}\n"
    );
    std::fs::write(&recipe, format!("{TINY_TRAINING}{plan}")).unwrap();
    (recipe, dir.join("out"))
}

/// A variant that clearly helps (a usable learning rate against one 400 times too small): the
/// combined recipe then runs on fresh seeds (3, 4, 5: after the variants' 0, 1, 2), paired with
/// the baseline on the same fresh seeds, and the report compares it with the sum of its parts.
#[test]
fn the_combined_recipe_is_confirmed_on_fresh_seeds() {
    let (recipe, out) = usable_lr_plan("combined-fresh", "");
    finish(run_tiny(&recipe, &out));
    let s = summary(&out);
    let seeds = |a: &Value| -> Vec<u64> {
        a["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["seed"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(s["trials"][0]["verdict"], "helps", "{}", s["trials"][0]);
    assert_eq!(seeds(&s["trials"][0]), [0, 1, 2]);
    assert_eq!(seeds(&s["combined"]), [3, 4, 5], "{}", s["combined"]);
    assert_eq!(seeds(&s["baseline"]), [0, 1, 2, 3, 4, 5]);
    assert_eq!(s["combined"]["decision"]["seeds"], 3);
    let i = &s["interaction"];
    assert_eq!(
        (i["combined_seeds"].as_u64(), i["parts_seeds"].as_u64()),
        (Some(3), Some(3)),
        "{i}"
    );
    let (c, p, e) = (
        i["combined"].as_f64().unwrap(),
        i["parts"].as_f64().unwrap(),
        i["estimate"].as_f64().unwrap(),
    );
    assert_eq!(e, c - p);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("fresh seeds") && md.contains("combined minus sum"), "{md}");
    // The summary opens with the decision in plain words; the worst paired seed is recorded.
    assert!(
        md.starts_with("# darkmagic checklist\n\n## Decision\n\n- **Adopt**: lr=usable (+"),
        "{md}"
    );
    assert!(
        s["trials"][0]["worst_seed"]["seed"].as_u64().is_some(),
        "{}",
        s["trials"][0]
    );
    let design: Value = serde_json::from_str(&std::fs::read_to_string(out.join("design.json")).unwrap()).unwrap();
    assert_eq!(design["variants"], serde_json::json!(["lr=usable"]));
    // A combined trial copied among the variants' seeds (index 0, consistently): the design
    // plans the combined recipe on indices 3 to 5 only; counted, it had the checklist train new
    // seeds without end.
    let arm = std::fs::read_dir(out.join("trials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("combined"))
        .expect("the combined recipe's trials");
    let copy = arm.join("seed-0");
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(arm.join("seed-3"))
            .arg(&copy)
            .status()
            .unwrap()
            .success()
    );
    let trial = std::fs::read_to_string(copy.join("trial.json")).unwrap();
    let trial = trial
        .replace("\"seed_index\": 3", "\"seed_index\": 0")
        .replace("\"seed\": 3", "\"seed\": 0");
    std::fs::write(copy.join("trial.json"), trial.replace("seed-3", "seed-0")).unwrap();
    let recipe_text = std::fs::read_to_string(copy.join("recipe.toml")).unwrap();
    std::fs::write(
        copy.join("recipe.toml"),
        recipe_text.replacen("seed = 3", "seed = 0", 1),
    )
    .unwrap();
    // Its result is bound to the recipe it ran: refused as such. Made to look like a record from
    // before the seals, the seed index the design plans gives the copy away.
    let o = common::run(&["report", out.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("is not the recipe this run trained"), "{e}");
    common::make_legacy(&copy);
    let o = common::run(&["report", out.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("seed-0/trial.json") && e.contains("the design plans its seeds at indices 3 to 5"),
        "{e}"
    );
}

/// `checklist.confirm_epochs`: the combined recipe and its baseline on the fresh seeds train 3
/// epochs where the variants' trials trained 2, the baseline's row keeps only the 2-epoch seeds,
/// no additivity is claimed across lengths, the summary says what the fidelity check found, and
/// a rerun that changes the confirmation's length is refused naming the field.
#[test]
fn the_combined_recipe_is_confirmed_at_its_own_length() {
    let (recipe, out) = usable_lr_plan("confirm-epochs", "confirm_epochs = 3\n");
    let plan = finish(common::checklist(&recipe, &out, &["--dry-run"]));
    assert!(
        plan.contains("plus up to 3 trials of the combined recipe and 3 of the baseline on fresh seeds to confirm it, at 3 epochs (checklist.confirm_epochs)"),
        "{plan}"
    );
    finish(run_tiny(&recipe, &out));
    let s = summary(&out);
    let seeds_epochs = |a: &Value| -> Vec<(u64, u64)> {
        let seeds = a["seeds"].as_array().unwrap();
        seeds
            .iter()
            .map(|x| (x["seed"].as_u64().unwrap(), x["epochs"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(s["trials"][0]["verdict"], "helps", "{}", s["trials"][0]);
    assert_eq!(seeds_epochs(&s["trials"][0]), [(0, 2), (1, 2), (2, 2)]);
    assert_eq!(seeds_epochs(&s["baseline"]), [(0, 2), (1, 2), (2, 2)]);
    assert_eq!(seeds_epochs(&s["combined"]), [(3, 3), (4, 3), (5, 3)]);
    assert_eq!(seeds_epochs(&s["confirm_baseline"]), [(3, 3), (4, 3), (5, 3)]);
    assert_eq!(s["confirm_baseline"]["label"], "baseline at 3 epochs");
    assert_eq!(s["confirm_epochs"], 3);
    assert!(s.get("interaction").is_none(), "{}", s["interaction"]);
    // The combined recipe's difference pairs it with the 3-epoch baseline seeds.
    let acc = |a: &Value| -> Vec<f64> {
        let seeds = a["seeds"].as_array().unwrap();
        seeds.iter().map(|x| x["val_acc"].as_f64().unwrap()).collect()
    };
    let (c, b) = (acc(&s["combined"]), acc(&s["confirm_baseline"]));
    let diff = c.iter().zip(&b).map(|(c, b)| c - b).sum::<f64>() / 3.0;
    assert!(
        (s["combined"]["diff"].as_f64().unwrap() - diff).abs() < 1e-12,
        "{}",
        s["combined"]
    );
    let epochs_of = |trial: &str| -> String {
        let r = std::fs::read_to_string(out.join("trials").join(trial).join("recipe.toml")).unwrap();
        r.lines().find(|l| l.starts_with("epochs = ")).unwrap().to_string()
    };
    assert_eq!(epochs_of("baseline/seed-0"), "epochs = 2");
    assert_eq!(epochs_of("baseline/seed-3"), "epochs = 3");
    assert_eq!(epochs_of("combined/seed-3"), "epochs = 3");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("- **Fidelity check**: the combined recipe (lr=usable) trained 3 epochs on fresh seeds: ")
            && md.contains("| baseline at 3 epochs | 3 |")
            && md.contains("Both train 3 epochs (checklist.confirm_epochs) where the variants' trials trained 2"),
        "{md}"
    );
    assert!(!md.contains("combined minus sum"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("baseline at 3 epochs"),
        "combined table shows the 3-epoch baseline"
    );

    let (code, e) = rerun(&recipe, &out, &["--set", "checklist.confirm_epochs=4"]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("seed-3/trial.json")
            && e.contains(
                "`baseline` trained the combined recipe's confirmation 3 epochs; checklist.confirm_epochs is now 4"
            ),
        "{e}"
    );
    // Rules a result comes from, changed over judged trials: refused before anything is written.
    let design = std::fs::read(out.join("design.json")).unwrap();
    let baseline_toml = std::fs::read(out.join("baseline.toml")).unwrap();
    for (set, words) in [
        (
            "checklist.early_stop=true",
            "checklist.early_stop: off; this run asks for on",
        ),
        (
            "checklist.tune.fields={\"optim.lr\"=[1.0,3.0]}",
            "checklist.tune: none; this run asks for {",
        ),
    ] {
        let (code, e) = rerun(&recipe, &out, &["--set", set]);
        assert_eq!(code, Some(1), "{e}");
        assert!(e.contains("baseline.toml") && e.contains(words), "{set}: {e}");
    }
    // A redesign whose fresh seeds would not hold the combined recipe's trials: refused before
    // the design is retired.
    let (code, e) = rerun(&recipe, &out, &["--redesign", "--max-seeds", "5"]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("combined/seed-3")
            && e.contains("confirms it on indices 5 to 9")
            && e.contains("Nothing was changed"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("design.json")).unwrap(), design);
    assert_eq!(std::fs::read(out.join("baseline.toml")).unwrap(), baseline_toml);
    // The same design fixed again by --redesign (twice, as after an interruption) replaced
    // nothing.
    for _ in 0..2 {
        let (code, e) = rerun(&recipe, &out, &["--redesign"]);
        assert_eq!(code, Some(0), "{e}");
    }
    let replaced = summary(&out)["design"]["replaced"].as_array().map_or(0, Vec::len);
    assert_eq!(replaced, 0, "{}", summary(&out)["design"]);
    // A combined trial's record edited to another recipe than the one it trained: the report
    // would present it as the recommended recipe. Refused by report and resume alike.
    let record = out.join("trials/combined/seed-4/trial.json");
    let kept = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, kept.replace("\"optim.lr\": 0.2", "\"optim.lr\": 0.5")).unwrap();
    let o = common::run(&["report", out.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success()
            && e.contains("combined/seed-4/recipe.toml")
            && e.contains("optim.lr = 0.2, where it runs optim.lr = 0.5"),
        "{e}"
    );
    let (code, e) = rerun(&recipe, &out, &[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("combined/seed-4/recipe.toml"), "{e}");
    std::fs::write(&record, kept).unwrap();
    // The combined recipe's folder deleted after its confirmation: the report says so.
    std::fs::rename(out.join("trials/combined"), out.with_file_name("combined-aside")).unwrap();
    ok(common::run(&["report", out.to_str().unwrap()]));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("ran beside a combined recipe whose trials are not here"),
        "{md}"
    );
}

/// A rerun with a changed recipe is refused before it writes anything, so the documented resume
/// (the same command) still works afterwards and reruns nothing.
#[test]
fn a_rerun_with_another_recipe_changes_nothing_and_the_resume_still_works() {
    let dir = tempdir("changed-recipe");
    let recipe = write_recipe(&dir);
    let out = dir.join("out");
    finish(run_tiny(&recipe, &out));
    let baseline_toml = std::fs::read_to_string(out.join("baseline.toml")).unwrap();
    let done = result_times(&out);
    let o = common::checklist(&recipe, &out, &["--parallel", "2", "--set", "train.epochs=3"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("recipe.toml") && e.contains("holds a different recipe"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("baseline.toml")).unwrap(),
        baseline_toml
    );
    finish(run_tiny(&recipe, &out));
    not_rerun(&done);
}

/// A rerun that changes the design after the first look is refused and names `--redesign`;
/// with it, the design of the new settings is fixed over the same trials, the old one is kept
/// as replaced, and the report says so.
#[test]
fn redesign_replaces_a_fixed_design_openly() {
    let dir = tempdir("redesign");
    let recipe = write_recipe(&dir);
    let out = dir.join("out");
    finish(run_tiny(&recipe, &out));
    let done = result_times(&out);
    let o = common::checklist(&recipe, &out, &["--parallel", "2", "--max-seeds", "3"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("checklist.max_seeds = 2") && e.contains("--redesign"), "{e}");
    finish(common::checklist(
        &recipe,
        &out,
        &["--parallel", "2", "--max-seeds", "3", "--redesign"],
    ));
    not_rerun(&done);
    let design: Value = serde_json::from_str(&std::fs::read_to_string(out.join("design.json")).unwrap()).unwrap();
    assert_eq!(
        (design["design"]["max"].as_u64(), design["replaced"][0]["max"].as_u64()),
        (Some(3), Some(2)),
        "{design}"
    );
    assert_eq!(design.get("retired"), None, "{design}");
    assert_eq!(summary(&out)["baseline"]["seeds"].as_array().unwrap().len(), 3);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("The design was replaced after results were seen") && md.contains("looks at 2 seeds"),
        "{md}"
    );
}

/// A tuning candidate that fails (a batch larger than the training split) is named, and the
/// checklist exits 3 like any failed trial, instead of ending at 0 with an empty baseline.
#[test]
fn a_failed_tuning_run_is_named_and_the_exit_status_says_so() {
    let dir = tempdir("tune-failed");
    let recipe = dir.join("r.toml");
    let plan = "[checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\n\
                [checklist.factors.lr]\nlow = { \"optim.lr\" = 0.01 }\n\
                [checklist.tune.fields]\n\"train.batch_size\" = [1.0, 5000.0]\n";
    let training =
        "[model]\nwidth = 0.25\n[schedule]\nwarmup_epochs = 0.0\ncycles = 1\n[train]\nepochs = 1\nbatch_size = 32\n";
    std::fs::write(&recipe, format!("{training}{plan}")).unwrap();
    let out = dir.join("out");
    let o = run_tiny(&recipe, &out).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    for name in ["baseline tune 1 seed 0", "lr=low tune 1 seed 0"] {
        assert!(e.contains(name), "{name}: {e}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("Failed (a rerun retries it): baseline tune 1 seed 0"),
        "{md}"
    );
}

/// Runs the checklist of `recipe` in `out` with `extra` options and returns its exit code and
/// stderr.
fn rerun(recipe: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let o = common::checklist(recipe, out, extra).output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// What defines a trial is checked on every rerun, before anything is written: a tuning grid
/// whose candidate number 1 is now another value, a variant no longer in the plan (left by a
/// checklist killed in its first round, before its design was recorded), and a data set changed
/// in place are each refused with the trial and the change named; with everything restored, the
/// deleted design record is refused too, and `--redesign` reruns nothing.
#[test]
fn a_rerun_whose_trials_no_longer_match_their_definition_is_refused() {
    let dir = tempdir("identity");
    let data = dir.join("data");
    for class in ["dark", "light"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..6u8 {
            let v = if class == "dark" { 20 + i } else { 200 + i };
            image::GrayImage::from_pixel(8, 8, image::Luma([v]))
                .save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let recipe = dir.join("r.toml");
    let write = |lr_grid: &str, factor: &str| {
        let text = format!(
            "[data]\ndataset = \"folder\"\npath = \"{}\"\n{TINY_TRAINING}\n[schedule]\nwarmup_epochs = 0.0\ncycles = 1\n[checklist]\nplan = \"none\"\nseeds = 1\n\
             max_seeds = 1\ncombine = false\n[checklist.factors.ls]\n{factor} = {{ \"loss.label_smoothing\" = 0.0 }}\n\
             [checklist.tune.fields]\n\"optim.lr\" = {lr_grid}\n",
            data.display()
        );
        std::fs::write(&recipe, text).unwrap();
    };
    write("[0.5, 1.0]", "\"0\"");
    let out = dir.join("out");
    finish(run_tiny(&recipe, &out));
    let done = result_times(&out);

    write("[0.5, 2.0]", "\"0\"");
    let (code, e) = rerun(&recipe, &out, &[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("tune-1-seed-0/trial.json")
            && e.contains("tuning candidate 1 of `baseline` ran {optim.lr = 0.1")
            && e.contains("checklist.tune now makes it {optim.lr = 0.2"),
        "{e}"
    );

    write("[0.5, 1.0]", "\"zero\"");
    std::fs::remove_file(out.join("design.json")).unwrap();
    let (code, e) = rerun(&recipe, &out, &[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("`ls=0` is not in this checklist's plan"), "{e}");

    write("[0.5, 1.0]", "\"0\"");
    std::fs::rename(data.join("light/5.png"), dir.join("5.png")).unwrap();
    let (code, e) = rerun(&recipe, &out, &[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("trial.json")
            && e.contains(&format!(
                "trained on other data than {} holds now (12 files",
                data.display()
            ))
            && e.contains("then, 11 files of"),
        "{e}"
    );

    std::fs::rename(dir.join("5.png"), data.join("light/5.png")).unwrap();
    // Two images of the same size with their bytes swapped: the same names and sizes, other
    // contents, refused all the same.
    let files: Vec<PathBuf> = (0..6).map(|i| data.join(format!("dark/{i}.png"))).collect();
    let size = |p: &PathBuf| std::fs::metadata(p).unwrap().len();
    let (a, b) = (0..6)
        .flat_map(|i| (i + 1..6).map(move |j| (i, j)))
        .find(|&(i, j)| size(&files[i]) == size(&files[j]))
        .expect("two images of one size");
    let (bytes_a, bytes_b) = (std::fs::read(&files[a]).unwrap(), std::fs::read(&files[b]).unwrap());
    std::fs::write(&files[a], &bytes_b).unwrap();
    std::fs::write(&files[b], &bytes_a).unwrap();
    let (code, e) = rerun(&recipe, &out, &[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("trained on other data") && e.contains("names and sizes, other bytes"),
        "{e}"
    );
    std::fs::write(&files[a], &bytes_a).unwrap();
    std::fs::write(&files[b], &bytes_b).unwrap();
    // The trials hold a look whose design record was deleted above: refused, then fixed anew
    // with --redesign, which reruns nothing.
    let (code, e) = rerun(&recipe, &out, &[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("design.json") && e.contains("is missing") && e.contains("--redesign"),
        "{e}"
    );
    finish(common::checklist(&recipe, &out, &["--parallel", "2", "--redesign"]));
    not_rerun(&done);
    // A record edited to another seed would pair one seed's run with another's: refused by
    // the rerun and by report, naming the file and both seeds.
    let record = out.join("trials/ls=0/seed-0/trial.json");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("\"seed\": 0,"), "{text}");
    std::fs::write(&record, text.replace("\"seed\": 0,", "\"seed\": 5,")).unwrap();
    let report = common::bin().args(["report", out.to_str().unwrap()]).output().unwrap();
    for (code, e) in [
        rerun(&recipe, &out, &[]),
        (
            report.status.code(),
            String::from_utf8_lossy(&report.stderr).into_owned(),
        ),
    ] {
        assert_eq!(code, Some(1), "{e}");
        assert!(
            e.contains("ls=0/seed-0/trial.json")
                && e.contains("seed is 5, but seed index 0 of a checklist whose first seed is 0 trains seed 0"),
            "{e}"
        );
    }
    std::fs::write(&record, text).unwrap();
    finish(common::checklist(&recipe, &out, &["--parallel", "2"]));
    not_rerun(&done);
}

/// The committed checklist of the plain recipe (results/fashion-mnist-plain) reported again:
/// its combined recipe against the baseline on the test split, computed here from the trials'
/// `result.json` (paired by seed, a 95% Student-t interval with t_{0.025, 5} = 2.570582 from
/// the t table), is the figure the report prints.
#[test]
fn the_committed_plain_checklist_reports_its_test_split_comparison() {
    let dir = tempdir("committed-plain");
    let out = dir.join("fashion-mnist-plain");
    ok(Command::new("cp")
        .args(["-r", "results/fashion-mnist-plain", out.to_str().unwrap()])
        .output()
        .unwrap());
    let test_acc = |arm: &str, seed: u64| -> f64 {
        let path = out.join(format!("trials/{arm}/seed-{seed}/result.json"));
        let r: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        r["test_acc"].as_f64().unwrap()
    };
    let diffs: Vec<f64> = (6..12)
        .map(|s| test_acc("combined", s) - test_acc("baseline", s))
        .collect();
    let mean = diffs.iter().sum::<f64>() / 6.0;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    let half = 2.570582 * sd / 6f64.sqrt();
    let pp = |x: f64| format!("{:+.2}", 100.0 * x);
    ok(bin().args(["report", out.to_str().unwrap()]).output().unwrap());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let want = format!(
        "on the same 6 fresh seeds: combined minus baseline {} pp, 95% interval [{}, {}] (Student t)",
        pp(mean),
        pp(mean - half),
        pp(mean + half)
    );
    assert!(md.contains(&want), "{want}\n{md}");
    assert!(
        mean - half > 0.0,
        "the combined recipe beats the plain one at 3 epochs: {diffs:?}"
    );
}
