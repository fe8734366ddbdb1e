//! The pip wheel (issue 31; docs/pip-wheel.md): `scripts/wheel.sh` builds it, a fresh virtualenv
//! that sees the project's torch (through a `.pth` file naming `.venv`'s site-packages: no second
//! download) installs it with `pip install --no-index`, and the installed `darkmagic` runs from
//! an empty folder: `--version`, one epoch of `train`, a 1-epoch checklist of 2 variants x 2
//! seeds, an external trainer's checklist `--dry-run`, an external trainer that sees the user's
//! `LD_LIBRARY_PATH` (and no variable of the launcher), Slurm and Ray checklists. A torch of
//! another release, a CPU-only torch and no torch are refused by name.
//! One test: the steps share the wheel, whose build takes minutes.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to success and returns its stdout.
fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?} failed:\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The project's Python (the one whose torch the binary is built against).
fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

/// A fresh virtualenv at `dir` whose `site-packages` also holds a `.pth` line naming `extra`.
/// It has no pip of its own (`pip` runs the project's with `--python`): Python 3.11's bundled
/// setuptools would shadow the project's, older than torch 2.13 requires.
fn venv(dir: &Path, extra: Option<&Path>) -> PathBuf {
    ok(Command::new(python()).args(["-m", "venv", "--without-pip"]).arg(dir));
    if let Some(extra) = extra {
        std::fs::write(
            site_packages(&dir.join("bin/python")).join("project-torch.pth"),
            format!("{}\n", extra.display()),
        )
        .unwrap();
    }
    dir.to_path_buf()
}

/// `pip install --quiet --no-index` into the virtualenv `venv`, plus `args`.
fn pip_install(venv: &Path, args: &[&str], wheel: &Path) {
    ok(Command::new(root().join(".venv/bin/pip"))
        .arg("--python")
        .arg(venv.join("bin/python"))
        .args(["install", "--quiet", "--no-index"])
        .args(args)
        .arg(wheel));
}

/// The site-packages folder of the Python at `python`.
fn site_packages(python: &Path) -> PathBuf {
    let out = ok(Command::new(python).args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]));
    PathBuf::from(out.trim())
}

/// `.venv`'s site-packages, where the project's torch is.
fn project_site() -> PathBuf {
    site_packages(&python())
}

/// Runs the installed `darkmagic --version` of `venv`, which must refuse to start (exit 1);
/// returns what it said.
fn refused(venv: &Path, cwd: &Path) -> String {
    let o = darkmagic(venv, cwd, &["--version"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The installed `darkmagic` of `venv`, run in `cwd` with only the usual environment (no
/// variable of the build: the wheel must not need one).
fn darkmagic(venv: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(venv.join("bin/darkmagic"));
    c.args(args).current_dir(cwd).env_clear();
    for var in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Some(v) = std::env::var_os(var) {
            c.env(var, v);
        }
    }
    c
}

/// The wheel's file names (Python's zipfile).
fn wheel_files(wheel: &Path) -> Vec<String> {
    ok(Command::new(python())
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(wheel))
    .lines()
    .map(String::from)
    .collect()
}

#[test]
fn the_wheel_installs_into_an_environment_with_torch_and_runs_there() {
    let started = Instant::now();
    let built = Command::new("bash")
        .arg(root().join("scripts/wheel.sh"))
        .output()
        .unwrap();
    assert!(built.status.success(), "scripts/wheel.sh failed:\n{}", both(&built));
    let wheel = PathBuf::from(String::from_utf8_lossy(&built.stdout).lines().last().unwrap());
    let size = std::fs::metadata(&wheel).unwrap().len();
    eprintln!(
        "built {} ({:.1} MB) in {:.0} s",
        wheel.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // What is in the wheel: the launcher, the binary, and no libtorch (auditwheel agrees).
    let files = wheel_files(&wheel);
    for want in [
        "darkmagic/_launcher.py",
        "darkmagic/__main__.py",
        "scripts/darkmagic-core",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(want)),
            "{want} missing from the wheel: {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.contains("libtorch") || f.contains("libc10")),
        "{files:?}"
    );
    // auditwheel: glibc and libstdc++ symbols allow the wheel's manylinux_2_34 tag; libtorch,
    // which it cannot find in the wheel (nor on this machine's library path), keeps its strict
    // verdict at "linux_x86_64", as for torchvision's wheels, which need libtorch the same way.
    assert!(
        wheel.to_string_lossy().ends_with("-py3-none-manylinux_2_34_x86_64.whl"),
        "{}",
        wheel.display()
    );
    let audit = String::from_utf8_lossy(&built.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for said in [
        "is consistent with the following platform tag: \"linux_x86_64\"",
        "This constrains the platform tag to \"manylinux_2_34_x86_64\"",
    ] {
        assert!(audit.contains(said), "auditwheel show did not say {said}: {audit}");
    }

    let dir = common::tempdir("wheel");
    let env = venv(&dir.join("venv"), Some(&project_site()));
    let installing = Instant::now();
    pip_install(&env, &[], &wheel);
    eprintln!("pip install --no-index: {:.1} s", installing.elapsed().as_secs_f64());

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let version = ok(&mut darkmagic(&env, &empty, &["--version"]));
    let torch_lib = std::fs::canonicalize(project_site().join("torch/lib")).unwrap();
    assert!(
        version.starts_with(&format!("darkmagic {}\n", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains(&format!(
            "libtorch 2.13.0+cu130 at {} (built against 2.13.0+cu130)",
            torch_lib.display()
        )),
        "{version}"
    );
    assert!(version.contains("CUDA: "), "{version}");

    // One epoch of the default recipe on the embedded digits, into ./runs/train.
    ok(&mut darkmagic(&env, &empty, &["train", "--set", "train.epochs=1"]));
    let result = common::read_json(&empty.join("runs/train/result.json"));
    assert_eq!(result["status"], "completed", "{result}");

    // The checklist with no arguments: the plain first-run recipe and the article's checklist
    // around it (listed only: its run is the README's main job, minutes long).
    let plan = ok(&mut darkmagic(&env, &empty, &["checklist", "--dry-run"]));
    assert!(plan.contains("first round: 64 trials (16 arms x 4 seeds)"), "{plan}");

    // A 1-epoch checklist, 2 variants x 2 seeds: the trials start through the launcher (a trial
    // started as the bare binary would find no libtorch: LD_LIBRARY_PATH is restored).
    std::fs::write(
        empty.join("small.toml"),
        "[model]\nwidth = 0.25\n[train]\nepochs = 1\n[schedule]\nwarmup_epochs = 0.0\n\
         [checklist]\nplan = \"none\"\nseeds = 2\nmax_seeds = 2\ncombine = false\n\
         [checklist.factors.label_smoothing]\n\"0\" = { \"loss.label_smoothing\" = 0.0 }\n\
         [checklist.factors.ema]\n\"on\" = { \"train.ema_decay\" = 0.99 }\n",
    )
    .unwrap();
    ok(&mut darkmagic(
        &env,
        &empty,
        &["checklist", "--recipe", "small.toml", "--out", "cl", "--parallel", "2"],
    ));
    let summary = common::read_json(&empty.join("cl/summary.json"));
    let results: Vec<PathBuf> = ["baseline", "label_smoothing=0", "ema=on"]
        .iter()
        .flat_map(|arm| (0..2).map(move |s| format!("cl/trials/{arm}/seed-{s}/result.json")))
        .map(|p| empty.join(p))
        .collect();
    for r in &results {
        assert_eq!(
            common::read_json(r)["status"],
            "completed",
            "{} in {summary}",
            r.display()
        );
    }

    // An external trainer: the dry run lists its trials; a real run sees the user's
    // LD_LIBRARY_PATH, not the launcher's torch/lib.
    std::fs::write(
        empty.join("external.toml"),
        "[checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\ncombine = false\n\
         [checklist.factors.lr]\n\"0.2\" = { \"--lr\" = 0.2 }\n\
         [external]\ncommand = [\"/bin/sh\", \"-c\", \"echo ld=$LD_LIBRARY_PATH launcher=$DARKMAGIC_LAUNCHER; echo acc=0.5\"]\n\
         [external.metric]\nregex = \"acc=([0-9.]+)\"\n",
    )
    .unwrap();
    let plan = ok(&mut darkmagic(
        &env,
        &empty,
        &["checklist", "--dry-run", "--recipe", "external.toml"],
    ));
    assert!(plan.contains("lr=0.2"), "{plan}");
    ok(darkmagic(
        &env,
        &empty,
        &["train", "--recipe", "external.toml", "--run-dir", "ext"],
    )
    .env("LD_LIBRARY_PATH", "/the/users/libs"));
    let log = std::fs::read_to_string(empty.join("ext/train.log")).unwrap();
    assert!(log.contains("ld=/the/users/libs launcher=\n"), "{log}");

    clusters_start_trials_through_the_launcher(&env, &dir);
    a_torch_of_another_release_or_none_is_refused_by_name(&wheel);
}

/// The installed darkmagic's checklist on a one-node Slurm and a Ray head (localhost,
/// `scripts/cluster/`) gives the local executor's summary: each trial ran the launcher on the
/// cluster's side and found torch there.
fn clusters_start_trials_through_the_launcher(env: &Path, dir: &Path) {
    std::fs::write(
        dir.join("cluster.toml"),
        "[model]\nwidth = 0.25\n[train]\nepochs = 1\n[schedule]\nwarmup_epochs = 0.0\n\
         [checklist]\nplan = \"none\"\nseeds = 1\nmax_seeds = 1\ncombine = false\n\
         [checklist.factors.label_smoothing]\n\"0\" = { \"loss.label_smoothing\" = 0.0 }\n",
    )
    .unwrap();
    let run = |out: &str, extra: &[&str], conf: Option<&Path>| {
        let mut c = darkmagic(env, dir, &["checklist", "--recipe", "cluster.toml", "--out", out]);
        c.args(extra);
        if let Some(conf) = conf {
            c.env("SLURM_CONF", conf);
        }
        ok(&mut c);
        std::fs::read_to_string(dir.join(out).join("summary.json")).unwrap()
    };
    let local = run("local", &[], None);
    {
        let _slurm = common::Cluster::up("slurm", &dir.join("slurm-cluster"));
        let conf = dir.join("slurm-cluster/slurm.conf");
        assert_eq!(run("slurm", &["--executor", "slurm"], Some(&conf)), local);
    }
    let _ray = common::Cluster::up("ray", &dir.join("ray-cluster"));
    let token = dir.join("ray-cluster/auth_token");
    let ray = [
        "--executor",
        "ray",
        "--ray-address",
        "http://127.0.0.1:8265",
        "--ray-token-file",
        token.to_str().unwrap(),
    ];
    assert_eq!(run("ray", &ray, None), local);
}

/// In a virtualenv without torch, then with a torch 2.12.1 package, the launcher refuses to
/// start and names the versions.
fn a_torch_of_another_release_or_none_is_refused_by_name(wheel: &Path) {
    let dir = common::tempdir("wheel-mismatch");
    let env = venv(&dir.join("venv"), None);
    pip_install(&env, &["--no-deps"], wheel);
    let err = refused(&env, &dir);
    assert!(
        err.contains("darkmagic needs PyTorch 2.13 and this Python") && err.contains("has no torch"),
        "{err}"
    );

    // A torch 2.12.1 package (its version.py is all the launcher reads).
    let torch = site_packages(&env.join("bin/python")).join("torch");
    std::fs::create_dir_all(torch.join("lib")).unwrap();
    std::fs::write(torch.join("__init__.py"), "").unwrap();
    std::fs::write(torch.join("version.py"), "__version__ = '2.12.1+cu128'\n").unwrap();
    let err = refused(&env, &dir);
    assert!(
        err.contains("darkmagic was built against torch 2.13 and this Python's torch is 2.12.1+cu128"),
        "{err}"
    );

    // A version.py the launcher cannot trust ends in an `error:` line that says why, never a
    // hang or a Python traceback: a FIFO, a huge file, a link to /dev/zero, bytes that are not
    // UTF-8, an unquoted version.
    let version = torch.join("version.py");
    let reset = || {
        let _ = std::fs::remove_file(&version);
    };
    reset();
    assert!(Command::new("mkfifo").arg(&version).status().unwrap().success());
    let err = refused(&env, &dir);
    assert!(
        err.contains("is not a regular file") && !err.contains("Traceback"),
        "{err}"
    );
    reset();
    std::fs::write(&version, vec![b'#'; 300 << 10]).unwrap();
    let err = refused(&env, &dir);
    assert!(
        err.contains("holds more than 65536 bytes") && !err.contains("Traceback"),
        "{err}"
    );
    reset();
    std::os::unix::fs::symlink("/dev/zero", &version).unwrap();
    let err = refused(&env, &dir);
    assert!(err.contains("is not a regular file"), "{err}");
    reset();
    std::fs::create_dir(&version).unwrap();
    let err = refused(&env, &dir);
    assert!(
        err.contains("is not a regular file") && !err.contains("Traceback"),
        "{err}"
    );
    std::fs::remove_dir(&version).unwrap();
    std::fs::write(&version, b"\xff\xfe__version__ = 2.13\n").unwrap();
    let err = refused(&env, &dir);
    assert!(
        err.contains("sets no __version__ = '...' string") && !err.contains("Traceback") && !err.contains("None"),
        "{err}"
    );
    reset();

    // The right release, but a CPU-only build (no lib/libtorch_cuda.so).
    std::fs::write(torch.join("version.py"), "__version__ = '2.13.0+cpu'\n").unwrap();
    let err = refused(&env, &dir);
    assert!(
        err.contains("(2.13.0+cpu) is a CPU-only build without lib/libtorch_cuda.so"),
        "{err}"
    );
}
