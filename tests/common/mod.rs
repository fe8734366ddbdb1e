//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test crate uses the helpers it needs
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `darkmagic` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_darkmagic"))
}

/// Runs the `darkmagic` binary with `args` and waits for it.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("darkmagic runs")
}

/// The JSON file at `path`, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Makes a trial's records look as a darkmagic from before their seals wrote them: no
/// `recipe_digest` or `test_images` in `result.json`, no `settings` in `trial.json`, no `digest`
/// in `model.json` (the checks those fields make then fall to the ones older records get).
pub fn make_legacy(run_dir: &Path) {
    for (file, fields) in [
        ("result.json", &["recipe_digest", "test_images"][..]),
        ("trial.json", &["settings"][..]),
        ("model.json", &["digest", "recipe_digest"][..]),
    ] {
        let path = run_dir.join(file);
        let mut v = read_json(&path);
        for f in fields {
            v.as_object_mut().unwrap().remove(*f);
        }
        std::fs::write(&path, v.to_string()).unwrap();
    }
}

/// `darkmagic train` of one epoch of a narrow ResNet-20 on the digits (one thread, no warm-up)
/// into `run_dir`, plus `extra` arguments.
pub fn train_one_epoch(run_dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--threads",
        "1",
        "--set",
        "train.epochs=1",
        "--set",
        "model.width=0.25",
        "--set",
        "schedule.warmup_epochs=0.0",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// A fresh, empty folder under the system temp dir, unique to this test process and `name`.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("darkmagic-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `scripts/golden/<script>` with the project's virtualenv Python, writing into a fresh
/// temp folder named `name` (passed as its first argument, before `args`); returns the folder.
pub fn golden(script: &str, name: &str, args: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempdir(name);
    let status = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/golden").join(script))
        .arg(&out)
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the project's .venv python runs (bash scripts/setup.sh)");
    assert!(status.success(), "scripts/golden/{script} failed");
    out
}

/// Runs `scripts/golden/<script>` (as `golden`) and reads the safetensors file `file` it wrote:
/// returns the output folder and the tensors by name.
pub fn golden_tensors(script: &str, name: &str, file: &str) -> (PathBuf, HashMap<String, tch::Tensor>) {
    let out = golden(script, name, &[]);
    let tensors = tch::Tensor::read_safetensors(out.join(file))
        .unwrap()
        .into_iter()
        .collect();
    (out, tensors)
}

/// The values of a uint8 tensor, flattened.
pub fn bytes(t: &tch::Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(t.flatten(0, -1)).unwrap()
}

/// `darkmagic checklist --recipe R --out O --threads 1` plus `extra` arguments.
pub fn checklist(recipe: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args([
        "checklist",
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    c.args(extra);
    c
}

/// Asserts that a command succeeded (showing its output if not) and returns its stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A daemon set started by `scripts/cluster/<kind>.sh up`, stopped by its `down` on drop.
pub struct Cluster {
    script: PathBuf,
    dir: PathBuf,
}

impl Cluster {
    pub fn up(kind: &str, dir: &Path) -> Cluster {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scripts/cluster/{kind}.sh"));
        let c = Cluster {
            script,
            dir: dir.to_path_buf(),
        };
        let out = Command::new("bash").arg(&c.script).arg("up").arg(dir).output().unwrap();
        assert!(
            out.status.success(),
            "{kind} did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}
