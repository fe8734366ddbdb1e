//! `darkmagic eval` and `darkmagic predict` end to end: a run's checkpoint reproduces the run's
//! own validation figures, and `predict` gives `eval`'s top-1 class image by image.
mod common;
use common::{ok, read_json, run, tempdir};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A small, single-threaded (bit-for-bit repeatable) digits model.
const FAST: [&str; 8] = [
    "--threads",
    "1",
    "--set",
    "model.width=0.5",
    "--set",
    "train.batch_size=16",
    "--set",
    "schedule.warmup_epochs=0.0",
];

fn train(run_dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["train", "--run-dir", run_dir.to_str().unwrap()];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    ok(run(&args));
    read_json(&run_dir.join("result.json"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn eval_reproduces_the_runs_final_validation_accuracy_from_its_checkpoint() {
    let dir = tempdir("eval-digits");
    let run_dir = dir.join("run");
    let result = train(&run_dir, &["--set", "train.epochs=2", "--set", "train.ema_decay=0.9"]);
    let (rd, out) = (run_dir.to_str().unwrap(), dir.join("eval"));
    let text = ok(run(&["eval", "--run-dir", rd, "--out", out.to_str().unwrap()]));

    let v = read_json(&out.join("val.json"));
    assert_eq!(v["top1"], result["final_val_acc"]);
    assert_eq!(v["images"], result["val_images"]);
    let last: Value = serde_json::from_str(read(&run_dir.join("metrics.jsonl")).lines().last().unwrap()).unwrap();
    assert_eq!(v["top5"], last["val_top5"]);
    assert_eq!(v["loss"], last["val_loss"]);
    let top1 = 100.0 * v["top1"].as_f64().unwrap();
    assert!(
        text.starts_with(&format!("val: 179 images, top-1 {top1:.2}%")),
        "{text}"
    );
    // Training wrote the same files from its last epoch.
    for f in [
        "val.json",
        "val-classes.csv",
        "val-confusion.csv",
        "val-predictions.csv",
    ] {
        assert_eq!(read(&out.join(f)), read(&run_dir.join("eval").join(f)), "{f}");
    }
    // Per-class rows add up to the whole.
    let classes = read(&out.join("val-classes.csv"));
    let (mut images, mut correct) = (0, 0);
    for row in classes.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        images += f[2].parse::<usize>().unwrap();
        correct += f[3].parse::<usize>().unwrap();
    }
    assert_eq!(images, 179);
    assert_eq!(correct as f64 / 179.0, v["top1"].as_f64().unwrap());

    ok(run(&["eval", "--run-dir", rd, "--ema", "--out", out.to_str().unwrap()]));
    assert_eq!(
        read_json(&out.join("val-ema.json"))["top1"],
        result["final_val_acc_ema"]
    );

    // A run dir from before model.json (and before result.json was bound to its recipe): the
    // same figures, computed from the run's data.
    let spec = read(&run_dir.join("model.json"));
    assert!(spec.contains("\"classes\"") && spec.contains("\"mean\""), "{spec}");
    std::fs::remove_file(run_dir.join("model.json")).unwrap();
    let mut unbound = read_json(&run_dir.join("result.json"));
    unbound.as_object_mut().unwrap().remove("recipe_digest");
    std::fs::write(run_dir.join("result.json"), unbound.to_string()).unwrap();
    let older = dir.join("older");
    ok(run(&["eval", "--run-dir", rd, "--out", older.to_str().unwrap()]));
    assert_eq!(read(&older.join("val.json")), read(&out.join("val.json")));
}

/// Writes `root/<split>/<class>/<i>.png` for three classes anyone can tell apart (dark, light,
/// striped), of several sizes, gray and RGB mixed.
fn write_folder(root: &Path, split: &str, per_class: u32) {
    for (c, class) in ["dark", "light", "striped"].iter().enumerate() {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let (w, h) = (9 + i % 4, 10 + i % 3);
            let value = |x: u32, y: u32| match c {
                0 => 20 + ((x * 7 + y * 3 + i * 5) % 30) as u8,
                1 => 200 + ((x * 5 + y * 7 + i * 3) % 40) as u8,
                _ => [10, 240][(x / 2 % 2) as usize] + ((y + i) % 5) as u8,
            };
            let path = dir.join(format!("{i}.png"));
            if i % 2 == 0 {
                image::GrayImage::from_fn(w, h, |x, y| image::Luma([value(x, y)]))
                    .save(path)
                    .unwrap();
            } else {
                image::RgbImage::from_fn(w, h, |x, y| image::Rgb([value(x, y); 3]))
                    .save(path)
                    .unwrap();
            }
        }
    }
}

/// `darkmagic train` overrides for the image folder `data` at 8x8, plus `extra` overrides.
fn folder_run(data: &Path, extra: &[&str]) -> Vec<String> {
    let path = format!("data.path=\"{}\"", data.display());
    let mut sets = vec!["data.dataset=folder", &path, "data.image_size=8"];
    sets.extend_from_slice(extra);
    sets.iter().flat_map(|s| ["--set".to_string(), s.to_string()]).collect()
}

/// A run with test-time flips and an EMA records their test accuracies too, equal to what
/// `darkmagic eval --split test` (and `--ema`) computes from its checkpoint.
#[test]
fn test_accuracies_of_the_flipped_scores_and_the_ema_weights_match_eval() {
    let dir = tempdir("eval-test-tta-ema");
    let data = dir.join("data");
    write_folder(&data, "train", 12);
    write_folder(&data, "val", 4);
    let run_dir = dir.join("run");
    let rd = run_dir.to_str().unwrap();
    let args = folder_run(
        &data,
        &["train.epochs=3", "augment.tta_flip=true", "train.ema_decay=0.9"],
    );
    let result = train(&run_dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = dir.join("eval");
    let o = out.to_str().unwrap();
    ok(run(&["eval", "--run-dir", rd, "--split", "test", "--out", o]));
    ok(run(&["eval", "--run-dir", rd, "--split", "test", "--ema", "--out", o]));
    assert!(
        result["test_acc_tta"].is_number() && result["test_acc_ema"].is_number(),
        "{result}"
    );
    assert_eq!(read_json(&out.join("test.json"))["top1"], result["test_acc"]);
    assert_eq!(read_json(&out.join("test-tta.json"))["top1"], result["test_acc_tta"]);
    assert_eq!(read_json(&out.join("test-ema.json"))["top1"], result["test_acc_ema"]);
}

/// The `predicted` column of a `<split>-predictions.csv`, with its `image` column.
fn eval_rows(path: &Path) -> Vec<(String, String)> {
    read(path)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_string(), f[3].to_string())
        })
        .collect()
}

#[test]
fn predict_on_a_folder_gives_evals_top1_image_by_image() {
    let dir = tempdir("eval-folder");
    let data = dir.join("data");
    write_folder(&data, "train", 12);
    write_folder(&data, "val", 4);
    for decode in ["at_load", "per_batch"] {
        let run_dir = dir.join(decode);
        let rd = run_dir.to_str().unwrap();
        let decode_set = format!("data.decode={decode}");
        let args = folder_run(&data, &["train.epochs=3", &decode_set]);
        let result = train(&run_dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
        ok(run(&["eval", "--run-dir", rd, "--split", "test"]));
        let eval_dir = run_dir.join("eval");
        assert_eq!(read_json(&eval_dir.join("test.json"))["top1"], result["test_acc"]);
        let evaluated = eval_rows(&eval_dir.join("test-predictions.csv"));

        let val = data.join("val");
        let csv = ok(run(&[
            "predict",
            "--run-dir",
            rd,
            "--top-k",
            "2",
            val.to_str().unwrap(),
        ]));
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("image,class_1,probability_1,class_2,probability_2"));
        let predicted: Vec<(PathBuf, String)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (PathBuf::from(f[0]), f[1].to_string())
            })
            .collect();
        assert_eq!(predicted.len(), 12);
        let mut classes: Vec<&String> = predicted.iter().map(|p| &p.1).collect();
        classes.sort();
        classes.dedup();
        assert!(classes.len() > 1, "{decode}: a model that tells classes apart: {csv}");
        for (i, ((image, class), (eval_image, eval_class))) in predicted.iter().zip(&evaluated).enumerate() {
            assert_eq!(class, eval_class, "{decode}: image {i} {}", image.display());
            // eval's rows name the files, decoded per batch or at load alike.
            assert_eq!(image, &PathBuf::from(eval_image), "{decode}");
        }

        // One file named on its own gets the same answer, in JSON.
        let (one, class) = &predicted[5];
        let json = ok(run(&[
            "predict",
            "--run-dir",
            rd,
            "--format",
            "json",
            one.to_str().unwrap(),
        ]));
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["top"][0]["class"], class.as_str());
        assert_eq!(v[0]["top"].as_array().unwrap().len(), 3, "top-5 of 3 classes is 3");
    }
    // File names that are not UTF-8 keep their bytes (escaped), so two such files stay apart.
    use std::os::unix::ffi::OsStrExt;
    let odd = dir.join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    let one = data.join("val").read_dir().unwrap().next().unwrap().unwrap().path();
    let one = one.read_dir().unwrap().next().unwrap().unwrap().path();
    for name in [&b"\xff\xfename.png"[..], &b"\xff\xfdname.png"[..]] {
        std::fs::copy(&one, odd.join(std::ffi::OsStr::from_bytes(name))).unwrap();
    }
    let rd = dir.join("at_load");
    let csv = ok(run(&[
        "predict",
        "--run-dir",
        rd.to_str().unwrap(),
        odd.to_str().unwrap(),
    ]));
    for escaped in ["\\xff\\xfdname.png", "\\xff\\xfename.png"] {
        assert!(csv.contains(escaped), "{escaped}: {csv}");
    }
}

#[test]
fn test_time_augmentation_is_recorded_beside_the_plain_accuracy_and_reproduced() {
    let dir = tempdir("eval-tta");
    let run_dir = dir.join("run");
    let result = train(&run_dir, &["--set", "train.epochs=1", "--set", "augment.tta_flip=true"]);
    let last: Value = serde_json::from_str(read(&run_dir.join("metrics.jsonl")).lines().last().unwrap()).unwrap();
    assert!(last["val_acc"].is_number() && last["val_acc_tta"].is_number(), "{last}");
    assert_eq!(result["final_val_acc_tta"], last["val_acc_tta"]);
    assert_eq!(result["final_val_acc"], last["val_acc"]);
    let out = dir.join("eval");
    let text = ok(run(&[
        "eval",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(text.contains("val-tta: 179 images"), "{text}");
    assert_eq!(
        read_json(&out.join("val-tta.json"))["top1"],
        result["final_val_acc_tta"]
    );
    assert_eq!(read_json(&out.join("val.json"))["top1"], result["final_val_acc"]);
    assert_eq!(
        read(&out.join("val-tta.json")),
        read(&run_dir.join("eval/val-tta.json"))
    );
}

#[test]
fn distillation_from_a_teacher_run_changes_the_loss_and_names_a_wrong_teacher() {
    let dir = tempdir("distill");
    let teacher = dir.join("teacher");
    train(&teacher, &["--set", "train.epochs=2"]);
    let t = format!("loss.distill_teacher=\"{}\"", teacher.display());
    let loss = |run_dir: &Path| -> Value {
        let m: Value = serde_json::from_str(read(&run_dir.join("metrics.jsonl")).lines().next().unwrap()).unwrap();
        m["train_loss"].clone()
    };
    let plain = dir.join("plain");
    train(&plain, &["--set", "train.epochs=1"]);
    let weight0 = dir.join("weight0");
    train(
        &weight0,
        &[
            "--set",
            "train.epochs=1",
            "--set",
            &t,
            "--set",
            "loss.distill_weight=0.0",
        ],
    );
    assert_eq!(
        loss(&weight0),
        loss(&plain),
        "weight 0: the task loss alone, bit for bit"
    );
    let student = dir.join("student");
    train(&student, &["--set", "train.epochs=1", "--set", &t]);
    assert_ne!(loss(&student), loss(&plain));
    assert!(read(&student.join("train.log")).contains("distilling from the teacher in"));

    // A teacher of other classes and image shape: the folder of three 8x8 classes.
    let data = dir.join("data");
    write_folder(&data, "train", 6);
    let other = dir.join("other");
    let args = folder_run(&data, &["train.epochs=1", "train.batch_size=4", "schedule.cycles=1"]);
    train(&other, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let wrong = format!("loss.distill_teacher=\"{}\"", other.display());
    let out = run(&["train", "--run-dir", dir.join("x").to_str().unwrap(), "--set", &wrong]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && e.contains("loss.distill_teacher")
            && e.contains("into 3 classes (dark, light, striped); this run (1, 8, 8) into 10 (0, 1, 2, 3, 4, ...)"),
        "{e}"
    );
    // The same count of classes, but other ones (the digits teacher's first class renamed, the
    // record sealed again as a run on such data would have written it).
    let teacher_dir = darkmagic::rundir::RunDir::open(&teacher);
    let mut spec = teacher_dir.read_spec().unwrap().unwrap();
    spec.classes[0] = "zero".into();
    teacher_dir.write_spec(&spec).unwrap();
    let out = run(&["train", "--run-dir", dir.join("y").to_str().unwrap(), "--set", &t]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("into 10 classes (zero, 1, 2, 3, 4, ...)"),
        "{e}"
    );
}
