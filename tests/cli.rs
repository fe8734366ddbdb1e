//! End-to-end tests of the `darkmagic` binary on the embedded digits and on files the tests write.
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

mod common;
use common::{bin, ok, read_json, run, tempdir};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A short digits run: small model, single thread so results are bit-for-bit repeatable.
const SMALL: [&str; 10] = [
    "--threads",
    "1",
    "--set",
    "model.arch=resnet20",
    "--set",
    "model.width=0.5",
    "--set",
    "train.batch_size=32",
    "--set",
    "augment.pad=1",
];

fn train(dir: &Path, epochs: usize, extra: &[&str]) -> Output {
    let epochs = format!("train.epochs={epochs}");
    let mut args = vec!["train", "--run-dir", dir.to_str().unwrap(), "--set", &epochs];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn train_writes_the_run_dir() {
    let dir = tempdir("train");
    let out = train(&dir, 2, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result = read_json(&dir.join("result.json"));
    assert_eq!(result["status"], "completed");
    assert_eq!(result["epochs"], 2);
    assert!(result["final_val_acc"].as_f64().unwrap() > 0.3, "{result}");
    let m = metrics(&dir);
    assert_eq!(m.len(), 2);
    for key in [
        "epoch",
        "step",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_top5",
        "images_per_sec",
        "seconds",
    ] {
        assert!(m[1].get(key).is_some(), "metrics lack {key}: {}", m[1]);
    }
    assert_eq!(m[1]["epoch"], 2);
    // 1797 images, 10% validation -> 1617 train images, 50 full batches of 32 per epoch.
    assert_eq!(m[1]["step"], 100);
    let recipe = std::fs::read_to_string(dir.join("recipe.toml")).unwrap();
    assert!(
        recipe.contains("epochs = 2") && recipe.contains("width = 0.5"),
        "{recipe}"
    );
    assert!(dir.join("checkpoint.safetensors").exists());
    assert!(
        std::fs::read_to_string(dir.join("train.log"))
            .unwrap()
            .contains("Completed")
    );
}

/// Starts [`train`] for `epochs` epochs and kills it (SIGKILL) once `after` epochs are recorded,
/// before it finishes.
fn train_killed_after(dir: &Path, epochs: usize, after: usize, extra: &[&str]) {
    let epochs_arg = format!("train.epochs={epochs}");
    let mut args = vec!["train", "--run-dir", dir.to_str().unwrap(), "--set", &epochs_arg];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(extra);
    let mut child = bin()
        .args(&args)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while metrics(dir).len() < after || !dir.join("checkpoint.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        metrics(dir).len() < epochs,
        "the run finished before it could be killed"
    );
    assert!(!dir.join("result.json").exists());
}

#[test]
fn killed_run_resumes_to_the_same_result() {
    let epochs = 6;
    let reference = tempdir("resume-ref");
    assert!(train(&reference, epochs, &[]).status.success());

    let dir = tempdir("resume");
    train_killed_after(&dir, epochs, 2, &[]);

    let out = run(&["train", "--run-dir", dir.to_str().unwrap(), "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
    assert!(log.contains("resumed from epoch"), "{log}");
    let strip = |ms: Vec<Value>| -> Vec<(Value, Value, Value)> {
        ms.into_iter()
            .map(|m| (m["step"].clone(), m["train_loss"].clone(), m["val_acc"].clone()))
            .collect()
    };
    assert_eq!(strip(metrics(&dir)), strip(metrics(&reference)));
    let (a, b) = (
        read_json(&dir.join("result.json")),
        read_json(&reference.join("result.json")),
    );
    assert_eq!(a["final_val_acc"], b["final_val_acc"]);

    // Resuming a completed run does not train again.
    let before = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert!(
        run(&["train", "--run-dir", dir.to_str().unwrap(), "--resume"])
            .status
            .success()
    );
    assert_eq!(std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap(), before);
}

#[test]
fn float16_autocast_with_loss_scaling_trains_and_resumes_exactly() {
    let fp16 = ["--set", "train.amp=fp16"];
    let straight = tempdir("fp16-straight");
    ok(train(&straight, 3, &fp16));
    let result = read_json(&straight.join("result.json"));
    assert!(result["final_val_acc"].as_f64().unwrap() > 0.3, "{result}");
    assert!(
        std::fs::read_to_string(straight.join("train.log"))
            .unwrap()
            .contains("autocast Some(Half)")
    );
    // GradScaler's state is checkpointed: a run killed after its first epoch and resumed gives
    // the straight run's losses and ends with its loss scale and count of finite steps (50 per
    // epoch; without restoring it the resumed run would count only the last 2 epochs).
    let resumed = tempdir("fp16-resumed");
    train_killed_after(&resumed, 3, 1, &fp16);
    ok(run(&["train", "--run-dir", resumed.to_str().unwrap(), "--resume"]));
    let losses = |d: &Path| metrics(d).iter().map(|m| m["train_loss"].clone()).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&straight));
    let scaler = |d: &Path| -> (f64, i64) {
        let ckpt: std::collections::HashMap<String, tch::Tensor> =
            tch::Tensor::read_safetensors(d.join("checkpoint.safetensors"))
                .unwrap()
                .into_iter()
                .collect();
        (
            ckpt["amp.scale"].double_value(&[]),
            ckpt["amp.growth_tracker"].int64_value(&[]),
        )
    };
    let (scale, finite_steps) = scaler(&straight);
    assert!(scale <= 65536.0 && scale.log2().fract() == 0.0, "scale {scale}");
    // How many steps since the last overflow depends on the CPU's half-precision kernels; the
    // equality below is the test (a resumed run that lost the count would differ).
    assert!(finite_steps > 0, "{finite_steps}");
    assert_eq!(scaler(&resumed), (scale, finite_steps));
}

#[test]
fn channels_last_changes_only_float_rounding() {
    let nchw = tempdir("nchw");
    let warm0 = ["--set", "schedule.warmup_epochs=0"];
    ok(train(
        &nchw,
        1,
        &[&warm0[..], &["--set", "train.channels_last=false"]].concat(),
    ));
    let nhwc = tempdir("nhwc");
    ok(train(&nhwc, 1, &warm0));
    let (a, b) = (&metrics(&nchw)[0], &metrics(&nhwc)[0]);
    for key in ["train_loss", "val_loss"] {
        let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        assert!((x - y).abs() < 0.02 * x.abs(), "{key}: {x} vs {y}");
    }
    let log = |d: &Path| std::fs::read_to_string(d.join("train.log")).unwrap();
    assert!(log(&nchw).contains("channels-last false") && log(&nhwc).contains("channels-last true"));
}

#[test]
fn huge_learning_rate_is_reported_as_diverged() {
    let dir = tempdir("diverge");
    let out = train(&dir, 2, &["--set", "optim.lr=1e6", "--set", "schedule.warmup_epochs=0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Diverged"), "{}", stderr(&out));
    let result = read_json(&dir.join("result.json"));
    assert_eq!(result["status"], "diverged");
    assert!(
        std::fs::read_to_string(dir.join("train.log"))
            .unwrap()
            .contains("diverged at step")
    );
}

#[test]
fn recipe_errors_name_the_key_or_file() {
    let out = run(&["train", "--run-dir", "/nonexistent/x", "--set", "model.depth=20"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("model") && e.contains("unknown field `depth`"), "{e}");

    let dir = tempdir("badrecipe");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[optim]\nlr = \n").unwrap();
    let out = run(&["recipe", "--recipe", path.to_str().unwrap()]);
    let e = stderr(&out);
    assert!(
        !out.status.success() && e.contains("bad.toml") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn schedule_prints_one_row_per_step() {
    let out = run(&[
        "schedule",
        "--set",
        "train.epochs=3",
        "--set",
        "train.batch_size=100",
        "--set",
        "schedule.warmup_lr_init=0.001",
        "--set",
        "schedule.wd_policy=linear",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "step,epoch,lr,weight_decay");
    // 1617 training images / 100 = 16 steps per epoch.
    assert_eq!(lines.len(), 1 + 3 * 16);
    // Weight decay ramps linearly from 0 to 2 x 5e-5 over the 48 steps.
    assert_eq!(lines[1], "0,0.0000,1.000000e-3,0.000000e0");
    assert_eq!(
        lines[17], "16,1.0000,1.000000e-1,3.404255e-5",
        "the peak right after one warm-up epoch"
    );
    assert!(lines[48].ends_with(",1.000000e-4"), "{}", lines[48]);
}

#[test]
fn data_inspect_reports_an_image_folder_and_names_a_corrupt_file() {
    let dir = tempdir("inspect");
    for (class, n) in [("ant", 2), ("bee", 3)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..n {
            image::RgbImage::from_pixel(5, 4, image::Rgb([i * 40, 0, 0]))
                .save(dir.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let out = run(&["data", "inspect", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("format:   image folder"), "{text}");
    assert!(text.contains("5x4 pixels, 3 channel(s)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "bee", "3", "-"]),
        "{text}"
    );

    let idx = tempdir("inspect-idx");
    std::fs::write(
        idx.join("train-images-idx3-ubyte"),
        [0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2],
    )
    .unwrap();
    std::fs::write(idx.join("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 9, 1]).unwrap();
    let out = run(&["data", "inspect", idx.to_str().unwrap()]);
    let e = stderr(&out);
    assert!(
        !out.status.success() && e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn idx_dataset_trains_and_reports_test_accuracy() {
    let dir = tempdir("idx-train");
    let write = |name: &str, dims: &[u32], data: &[u8]| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
        b.extend_from_slice(data);
        std::fs::write(dir.join(name), b).unwrap();
    };
    // Two classes that differ in brightness: class 1 images are bright.
    let (n, side) = (64u32, 6u32);
    let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    let pixels: Vec<u8> = labels
        .iter()
        .flat_map(|&l| std::iter::repeat_n(if l == 1 { 200 } else { 30 }, (side * side) as usize))
        .collect();
    write("train-images-idx3-ubyte", &[n, side, side], &pixels);
    write("train-labels-idx1-ubyte", &[n], &labels);
    write("t10k-images-idx3-ubyte", &[n, side, side], &pixels);
    write("t10k-labels-idx1-ubyte", &[n], &labels);
    let run_dir = tempdir("idx-run");
    let path = format!("data.path={}", dir.to_str().unwrap());
    let args = [
        "train",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--threads",
        "1",
        "--set",
        "data.dataset=idx",
        "--set",
        &path,
    ];
    let extra = [
        "--set",
        "train.epochs=6",
        "--set",
        "train.batch_size=16",
        "--set",
        "model.width=0.25",
    ];
    let out = bin().args(args).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let result = read_json(&run_dir.join("result.json"));
    assert!(result["test_acc"].as_f64().unwrap() > 0.9, "{result}");
    assert!(result.get("test_top5").is_none(), "2 classes: no top-5");
    // Its test accuracy deleted by hand: a completed run with a test split records one.
    let mut edited = result.clone();
    edited.as_object_mut().unwrap().remove("test_acc");
    std::fs::write(run_dir.join("result.json"), edited.to_string()).unwrap();
    let out = bin()
        .args(["eval", "--run-dir", run_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && stderr(&out).contains("test_images = 64 without test_acc"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn augment_apply_and_preview_write_images() {
    let dir = tempdir("augment");
    let (a, b, grid) = (dir.join("a.png"), dir.join("b.png"), dir.join("grid.png"));
    image::GrayImage::from_raw(2, 1, vec![10, 250])
        .unwrap()
        .save(&a)
        .unwrap();
    let out = run(&[
        "augment",
        "apply",
        "--op",
        "solarize",
        "--bin",
        "5",
        "--in",
        a.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Bin 5 of Solarize is a threshold of about 113: 250 is inverted, 10 is not.
    assert_eq!(image::open(&b).unwrap().into_luma8().into_raw(), vec![10, 5]);
    let out = run(&["augment", "preview", "--count", "16", "--out", grid.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let g = image::open(&grid).unwrap();
    // 16 digits of 8 px scaled by 8 to 64 px, 8 per row, 2 px borders: 2 rows.
    assert_eq!((g.width(), g.height()), (8 * 66, 2 * 66));
    let e = stderr(&run(&[
        "augment",
        "apply",
        "--op",
        "blur",
        "--in",
        a.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]));
    assert!(e.contains("unknown op `blur`"), "{e}");
}

#[test]
fn photo_folder_decoded_per_batch_trains_and_previews() {
    // data/photos (scripts/photos.sh): 9 real photographs of different sizes, PNG and JPEG,
    // decoded by the loader per batch and cropped to 32x32.
    let dir = tempdir("photos");
    let small = ["--set", "data.image_size=32", "--set", "data.val_fraction=0.3"];
    // One step an epoch: one cosine cycle over both, no warm-up, so the LR leaves lr_min.
    let mut extra = vec![
        "--recipe",
        "recipes/photos.toml",
        "--set",
        "schedule.cycles=1",
        "--set",
        "schedule.warmup_epochs=0.0",
    ];
    extra.extend_from_slice(&small);
    let out = train(&dir, 2, &extra);
    assert!(out.status.success(), "{}", stderr(&out));
    let result = read_json(&dir.join("result.json"));
    assert_eq!(result["status"], "completed", "{result}");
    let m = metrics(&dir);
    assert_eq!(m.len(), 2);
    assert!(m[0]["val_loss"].as_f64().unwrap().is_finite(), "{:?}", m[0]);
    let grid = dir.join("grid.png");
    let mut args = vec!["augment", "preview", "--recipe", "recipes/photos.toml", "--count", "12"];
    args.extend_from_slice(&small);
    args.extend_from_slice(&["--out", grid.to_str().unwrap()]);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let g = image::open(&grid).unwrap().into_rgb8();
    // 12 tiles (the 6 training photos twice) of 32 px scaled by 2, 8 per row: 2 rows.
    assert_eq!((g.width(), g.height()), (8 * 66, 2 * 66));
    let colours: std::collections::HashSet<_> = g.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 1000, "real photographs: {} colours", colours.len());
}

/// The checklists the docs show still plan what their tables report, the Fashion-MNIST
/// campaign its 34 arms and the CPU checklist of results/fashion-mnist its 15
/// (docs/breadth/digits.toml needs its teacher run, so it is left out).
#[test]
fn documented_checklists_plan_their_trials() {
    // (recipe, arms, first-round seeds: the recipe's own, or the default 4)
    for (recipe, arms, seeds) in [
        ("docs/tuning/fixed.toml", 3, 3),
        ("docs/tuning/tuned.toml", 3, 3),
        ("docs/breadth/mobilenet.toml", 7, 3),
        ("recipes/fashion-mnist-campaign.toml", 34, 3),
        ("recipes/fashion-mnist-cpu.toml", 15, 4),
    ] {
        let o = common::bin()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["checklist", "--dry-run", "--recipe", recipe])
            .output()
            .unwrap();
        let text = common::ok(o);
        assert!(
            text.contains(&format!("({arms} arms x {seeds} seeds)")),
            "{recipe}: {text}"
        );
    }
}
