//! Bad and hostile input, as a careful user and an attacker would give it: every case ends in a
//! clear error that names the file, key or option and what was expected, with a failing exit
//! status and no panic or abort; data is either counted whole or refused. Generated Slurm
//! scripts carry no injected command.
mod common;
use common::{ok, run, tempdir};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Asserts that `out` failed cleanly (no panic, no abort) with every one of `needles` in its
/// stderr; returns the stderr.
fn fails(out: Output, needles: &[&str]) -> String {
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "succeeded, expected an error with {needles:?}\n{e}"
    );
    assert_eq!(out.status.code(), Some(1), "exit status of a clean error\n{e}");
    for bad in ["panicked", "RUST_BACKTRACE", "Aborted", "memory allocation of"] {
        assert!(!e.contains(bad), "{bad:?} in stderr:\n{e}");
    }
    for n in needles {
        assert!(e.contains(n), "{n:?} missing from stderr:\n{e}");
    }
    e
}

/// `darkmagic train` of a 1-epoch narrow ResNet-20 into a fresh run dir, plus `extra`.
fn train(name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let dir = tempdir(name).join("run");
    (common::train_one_epoch(&dir, extra), dir)
}

/// Writes an IDX file of u8 data: magic, dimensions, data.
fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

/// An IDX data set folder: `n` 4x4 training images with `labels`, and a test split.
fn idx_dir(name: &str, labels: &[u8], test_labels: &[u8]) -> PathBuf {
    let dir = tempdir(name);
    for (split, labels) in [("train", labels), ("t10k", test_labels)] {
        let n = labels.len() as u32;
        let images = vec![7; 16 * n as usize];
        write_idx(&dir.join(format!("{split}-images-idx3-ubyte")), &[n, 4, 4], &images);
        write_idx(&dir.join(format!("{split}-labels-idx1-ubyte")), &[n], labels);
    }
    dir
}

fn idx_args(dir: &Path) -> Vec<String> {
    vec![
        "--set".into(),
        "data.dataset=idx".into(),
        "--set".into(),
        format!("data.path={:?}", dir.to_str().unwrap()),
    ]
}

fn train_idx(name: &str, dir: &Path) -> Output {
    let args = idx_args(dir);
    train(name, &args.iter().map(String::as_str).collect::<Vec<_>>()).0
}

#[test]
fn idx_files_that_lie_are_refused_with_the_file_named() {
    // 0 images: nothing to train on (the run was once recorded `completed` with loss null).
    let empty = tempdir("idx-empty");
    write_idx(&empty.join("train-images-idx3-ubyte"), &[0, 4, 4], &[]);
    write_idx(&empty.join("train-labels-idx1-ubyte"), &[0], &[]);
    fails(
        train_idx("idx-empty-run", &empty),
        &["train-images-idx3-ubyte", "at least 1 image"],
    );
    // Height 0.
    let flat = tempdir("idx-flat");
    write_idx(&flat.join("train-images-idx3-ubyte"), &[2, 0, 4], &[]);
    write_idx(&flat.join("train-labels-idx1-ubyte"), &[2], &[0, 1]);
    fails(
        run(&["data", "inspect", flat.to_str().unwrap()]),
        &["train-images-idx3-ubyte", "1x1 pixels"],
    );
    // Dimensions whose product overflows.
    let huge = tempdir("idx-overflow");
    write_idx(
        &huge.join("train-images-idx3-ubyte"),
        &[u32::MAX, u32::MAX, u32::MAX],
        &[1, 2, 3],
    );
    write_idx(&huge.join("train-labels-idx1-ubyte"), &[1], &[0]);
    fails(
        run(&["data", "inspect", huge.to_str().unwrap()]),
        &["train-images-idx3-ubyte", "claims more data"],
    );
    // Test labels beyond the training classes: inspect and train.
    let beyond = idx_dir("idx-beyond", &[0, 1, 0, 1], &[0, 5]);
    let e = fails(
        run(&["data", "inspect", beyond.to_str().unwrap()]),
        &["t10k-labels-idx1-ubyte", "label 5"],
    );
    assert!(e.contains("not a training class"), "{e}");
    fails(
        train_idx("idx-beyond-run", &beyond),
        &["t10k-labels-idx1-ubyte", "label 5"],
    );
    // One label of 200 among 0 and 1 would make 201 classes, 198 of them empty.
    let sparse = idx_dir("idx-sparse", &[0, 1, 200, 1], &[0]);
    fails(
        run(&["data", "inspect", sparse.to_str().unwrap()]),
        &["train-labels-idx1-ubyte", "class 2 has no image"],
    );
}

#[test]
fn splits_without_training_or_validation_images_are_refused() {
    let (o, dir) = train("split-noval", &["--set", "data.val_fraction=0.0"]);
    fails(o, &["data.val_fraction", "no validation image"]);
    let result = std::fs::read_to_string(dir.join("result.json")).unwrap();
    assert!(
        result.contains("\"failed\"") && result.contains("no validation image"),
        "{result}"
    );
    let (o, _) = train("split-notrain", &["--set", "data.val_fraction=0.999"]);
    fails(o, &["data.val_fraction", "no training image is left"]);
}

#[test]
fn recipe_values_are_checked_before_any_work() {
    for (set, needles) in [
        ("data.image_size=100000", vec!["data.image_size", "1 to 4096"]),
        ("data.mean=[0.5]", vec!["data.std", "give both or neither"]),
        ("data.std=[0.5, 0.5]", vec!["data.mean", "give both or neither"]),
        ("optim.weight_decay=inf", vec!["optim.weight_decay", "finite"]),
        ("optim.eps=inf", vec!["optim.eps", "finite"]),
        ("schedule.warmup_lr_init=inf", vec!["schedule.warmup_lr_init", "finite"]),
        ("loss.aux_weight=inf", vec!["loss.aux_weight", "finite"]),
        (
            "augment.randaugment_mstd=inf",
            vec!["augment.randaugment_mstd", "finite"],
        ),
        ("optim.lr=nan", vec!["optim.lr", "finite"]),
        ("train.epochs=0", vec!["train.epochs", "expected 1 to"]),
        (
            "seed=9223372036854775807",
            vec!["`seed`", "expected 0 to 4611686018427387904"],
        ),
        (
            "seed=18446744073709551615",
            vec!["`seed`", "integers in a recipe are TOML's"],
        ),
        (
            "train.loader=\"device\"",
            vec!["train.loader", "cannot run augment.policy"],
        ),
        ("train.epochs=1000000", vec!["train.epochs", "expected 1 to 100000"]),
        (
            "checklist.seeds=1000000000",
            vec!["checklist.seeds", "expected 1 to 1000"],
        ),
        (
            "train.stop_reference=\"/no/such/run\"",
            vec!["train.stop_reference", "not a folder"],
        ),
        (
            "checklist.max_seeds=0",
            vec!["checklist.max_seeds", "expected 1 to 1000"],
        ),
        ("checklist.alpha=0.7", vec!["checklist.alpha", "(0, 0.5)"]),
        (
            "checklist.confirm_epochs=0",
            vec!["checklist.confirm_epochs", "expected 1 to 100000"],
        ),
    ] {
        let e = fails(run(&["recipe", "--set", set]), &needles);
        assert!(!e.contains("warmup_epochs"), "{set}: {e}");
    }
    // Two values fit no data set; three do not fit a gray one.
    let (o, _) = train(
        "meanstd-gray",
        &["--set", "data.mean=[0.5, 0.5, 0.5]", "--set", "data.std=[0.2]"],
    );
    fails(o, &["data.mean", "1 value for this 1-channel data set"]);
    let e = fails(
        run(&["recipe", "--set", "data.mean=[0.5, 0.5]", "--set", "data.std=[1.0]"]),
        &["data.mean"],
    );
    assert!(e.contains("1 or 3"), "{e}");
    // A cosine cycle of fewer than 2 steps would train at lr_min without a word.
    let (o, _) = train(
        "cycles",
        &["--set", "train.batch_size=4096", "--set", "schedule.warmup_epochs=0.0"],
    );
    fails(o, &["schedule.cycles", "at least 2 steps"]);
    // The dry run's estimate stays a number at the largest epoch count (an empty recipe: the
    // defaults, on the digits).
    let defaults = tempdir("dry-run-defaults").join("defaults.toml");
    std::fs::write(&defaults, "").unwrap();
    let out = run(&[
        "checklist",
        "--recipe",
        defaults.to_str().unwrap(),
        "--dry-run",
        "--set",
        "train.epochs=100000",
        "--set",
        "checklist.plan=none",
        "--set",
        "checklist.factors={lr={low={\"optim.lr\"=0.01}}}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    // 2 arms x 4 seeds x 100000 epochs x 25 steps x 64 images.
    assert!(
        out.status.success() && text.contains("1.280e9 training images"),
        "{text}"
    );
    // A plan without variants would run nothing and say nothing; so would a teacher that only
    // the default and extended plans use; the confirmation's length would undo a variant whose
    // change is its length.
    let cases: [(&[&str], [&str; 2]); 3] = [
        (&[], ["checklist.plan", "the plan has no variants"]),
        (
            &["checklist.teacher=\"/tmp\""],
            ["checklist.teacher", "list it in [checklist.factors]"],
        ),
        (
            &[
                "checklist.factors={len={more={\"train.epochs\"=4}}}",
                "checklist.confirm_epochs=2",
            ],
            ["checklist.confirm_epochs", "`len=more` changes train.epochs"],
        ),
    ];
    for (sets, needles) in cases {
        let mut args = vec!["checklist", "--dry-run", "--set", "checklist.plan=none"];
        for set in sets {
            args.extend(["--set", set]);
        }
        fails(run(&args), &needles);
    }
}

/// A folder data set with `classes`, each holding `n` 3x3 PNGs.
fn folder(root: &Path, classes: &[&str], n: usize) {
    for c in classes {
        std::fs::create_dir_all(root.join(c)).unwrap();
        for i in 0..n {
            image::GrayImage::from_pixel(3, 3, image::Luma([40 * i as u8]))
                .save(root.join(c).join(format!("{i}.png")))
                .unwrap();
        }
    }
}

fn inspect(dir: &Path) -> Output {
    run(&["data", "inspect", dir.to_str().unwrap()])
}

#[test]
fn image_folders_are_counted_whole_or_refused() {
    use std::os::unix::ffi::OsStrExt;
    // A class folder whose name is not UTF-8 once lost all its images.
    let dir = tempdir("folder-utf8");
    folder(&dir, &["ok"], 2);
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    folder(&bad, &[""], 2);
    fails(inspect(&dir), &["caf", "not valid UTF-8"]);
    // An empty class folder, and a link to the root (`up -> .`), were classes of 0 images.
    let dir = tempdir("folder-empty");
    folder(&dir, &["a", "b"], 2);
    std::fs::create_dir_all(dir.join("c")).unwrap();
    fails(inspect(&dir), &["/c", "holds no PNG or JPEG file"]);
    let dir = tempdir("folder-link");
    folder(&dir, &["a", "b"], 2);
    std::os::unix::fs::symlink(".", dir.join("up")).unwrap();
    fails(
        inspect(&dir),
        &["/up", "is a link to the data set's folder or one above it"],
    );
    // A class that is another under a second name (a link) would be two classes at once.
    std::fs::remove_file(dir.join("up")).unwrap();
    std::os::unix::fs::symlink("a", dir.join("alias")).unwrap();
    fails(inspect(&dir), &["the folder of class `a`, through a link"]);
    std::fs::remove_file(dir.join("alias")).unwrap();
    // So is a link one level down, into another class (or, below, into another split).
    std::os::unix::fs::symlink("../b", dir.join("a/bs")).unwrap();
    fails(inspect(&dir), &["a/bs/0.png", "is the same image file as"]);
    std::fs::remove_file(dir.join("a/bs")).unwrap();
    // An image in a format ImageFolder reads and darkmagic does not is named, not left out.
    std::fs::write(dir.join("a/photo.webp"), b"RIFF").unwrap();
    fails(inspect(&dir), &["photo.webp", "a format darkmagic does not read"]);
    std::fs::remove_file(dir.join("a/photo.webp")).unwrap();
    // An image name that is not a regular file (a FIFO) is named, not left out.
    let fifo = dir.join("a/fifo.png");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    fails(inspect(&dir), &["fifo.png", "not a regular file"]);
    std::fs::remove_file(&fifo).unwrap();
    // A val/ class that train/ lacks was dropped with its images.
    let dir = tempdir("folder-val");
    folder(&dir.join("train"), &["a", "b"], 2);
    folder(&dir.join("val"), &["a", "zebra"], 1);
    fails(inspect(&dir), &["val/zebra", "not in the training split"]);
    // Every image on disk is counted, in a class folder's subfolders too (as torchvision's
    // ImageFolder finds them); hidden folders are no class.
    let dir = tempdir("folder-count");
    folder(&dir.join("train"), &["a", "b"], 3);
    folder(&dir.join("train/a/sub"), &[""], 2);
    folder(&dir.join("train/.ipynb_checkpoints"), &[""], 1);
    folder(&dir.join("val"), &["b"], 2);
    folder(&dir.join("test"), &["b"], 1);
    let o = inspect(&dir);
    let warned = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        warned.contains("holds both val/ and test/: val/ is read as the held-out split"),
        "{warned}"
    );
    std::fs::remove_dir_all(dir.join("test")).unwrap();
    let out = common::ok(inspect(&dir));
    assert!(
        out.contains("train:    8 images") && out.contains("test:     2 images") && !out.contains("ipynb"),
        "{out}"
    );
    std::os::unix::fs::symlink("../../train/a", dir.join("val/b/train-a")).unwrap();
    fails(
        inspect(&dir),
        &["val/b/train-a/", "in training and in the held-out split at once"],
    );
    std::fs::remove_file(dir.join("val/b/train-a")).unwrap();
    // A file linked beside itself is one image, and a held-out split linked to the training
    // one is no held-out split; an image linked in once from a pool folder is fine.
    std::os::unix::fs::symlink("0.png", dir.join("train/a/dup0.png")).unwrap();
    fails(inspect(&dir), &["dup0.png", "is the same image file as"]);
    std::fs::remove_file(dir.join("train/a/dup0.png")).unwrap();
    std::fs::rename(dir.join("val"), dir.join("val-aside")).unwrap();
    std::os::unix::fs::symlink("train", dir.join("val")).unwrap();
    fails(inspect(&dir), &["is the same image file as"]);
    std::fs::remove_file(dir.join("val")).unwrap();
    std::fs::rename(dir.join("val-aside"), dir.join("val")).unwrap();
    folder(&dir.join("pool"), &[""], 1);
    std::os::unix::fs::symlink("../../pool/0.png", dir.join("train/b/pooled.png")).unwrap();
    let out = common::ok(inspect(&dir));
    assert!(out.contains("train:    9 images"), "{out}");
}

/// A small real JPEG whose SOF header is rewritten to claim `w` x `h` pixels.
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut bytes)
        .encode(&[90u8; 8 * 8 * 3], 8, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xff, 0xc0]).expect("baseline JPEG");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

/// A 1x1 PNG whose IHDR (with its CRC recomputed) claims `w` x `h` pixels.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(1, 1, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    bytes
}

#[test]
fn image_header_bombs_are_refused_before_decoding() {
    for (name, bytes) in [
        ("bomb.jpg", jpeg_claiming(60000, 60000)),
        ("bomb.png", png_claiming(60000, 60000)),
    ] {
        let dir = tempdir(&format!("bomb-{name}"));
        folder(&dir, &["a"], 1);
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("b").join(name), &bytes).unwrap();
        assert!(bytes.len() < 1000, "{name}: {} bytes", bytes.len());
        fails(
            inspect(&dir),
            &[name, "60000x60000", "Pillow's decompression-bomb limit"],
        );
    }
}

#[test]
fn cli_options_are_checked() {
    let out = tempdir("cli-opts").join("out");
    let o = out.to_str().unwrap();
    let checklist = |extra: &[&str]| {
        let mut args = vec!["checklist", "--out", o, "--set", "checklist.plan=none"];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Sizes that become memory or work are bounded before anything is allocated.
    let png = tempdir("bounded").join("g.png");
    let png = png.to_str().unwrap();
    for (args, needles) in [
        (
            vec!["augment", "preview", "--out", png, "--count", "100000000000"],
            vec!["--count", "expected 1 to 4096"],
        ),
        (
            vec!["bench", "augment", "--images", "1000000000000"],
            vec!["--images", "expected 1 to 1048576"],
        ),
        (
            vec!["bench", "train", "--batch", "100000000"],
            vec!["--batch", "expected 1 to 65536"],
        ),
        (
            vec!["bench", "train", "--image", "3x100000x100000"],
            vec!["--image", "expected 1 to 4096"],
        ),
        (
            vec!["bench", "train", "--batch", "65536", "--image", "3x4096x4096"],
            vec!["--batch x --image", "at most 2147483648"],
        ),
        (
            vec!["bench", "train", "--steps", "0"],
            vec!["--steps", "expected 1 to 1048576"],
        ),
    ] {
        fails(run(&args), &needles);
    }
    // --detach means "submit and return": only Slurm's trials outlive the command.
    for executor in ["local", "ray"] {
        fails(
            checklist(&["--detach", "--executor", executor]),
            &["--detach", "only the slurm executor", executor],
        );
    }
    assert!(!out.exists(), "nothing written");
    // --status reads a checklist's state: any other flag with it would be ignored, so it is refused.
    let o = run(&["checklist", "--status", out.to_str().unwrap(), "--redesign"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "a usage error: {e}");
    assert!(
        e.contains("'--status <DIR>' cannot be used with one or more of the other specified arguments"),
        "{e}"
    );
    // Credentials in a server's address are refused and never printed.
    for (args, shown) in [
        (
            ["--mlflow", "http://alice:s3cretPW@127.0.0.1:15001"],
            "alice:***@127.0.0.1:15001",
        ),
        (
            ["--ray-address", "http://bob:s3cretPW@127.0.0.1:8265"],
            "bob:***@127.0.0.1:8265",
        ),
        // A password holding a `/`, and a scheme typed with one slash.
        (
            ["--mlflow", "http://alice:s3cret/PW@127.0.0.1:15001"],
            "alice:***@127.0.0.1:15001",
        ),
        (
            ["--ray-address", "http:/bob:s3cretPW@127.0.0.1:8265"],
            "bob:***@127.0.0.1:8265",
        ),
    ] {
        let e = fails(
            checklist(&[&["--executor", "ray"][..], &args[..]].concat()),
            &["credentials", shown],
        );
        assert!(!e.contains("s3cretPW") && !e.contains("s3cret/PW"), "{e}");
    }
    // Slurm's resources are checked against its syntax and ranges before anything is submitted.
    for (flag, value) in [
        ("--mem", "16GGGGkK"),
        ("--mem", "1.5G"),
        ("--time", "1:2:3:4"),
        ("--time", "2-"),
    ] {
        fails(
            checklist(&["--executor", "slurm", flag, value]),
            &[flag, &format!("{value:?}")],
        );
    }
    for (gpus, shown) in [
        ("0.5", "0.5"),
        ("-2", "-2"),
        ("nan", "NaN"),
        ("inf", "inf"),
        ("1e300", "1e300"),
    ] {
        let flag = format!("--gpus={gpus}");
        fails(
            checklist(&["--executor", "slurm", &flag]),
            &["--gpus", shown, "whole number"],
        );
    }
    fails(checklist(&["--executor", "ray", "--gpus=-1"]), &["--gpus"]);
    // A cluster's setting with the executor that has no use for it is refused, not ignored.
    for (args, flag, why) in [
        (&["--partition", "gpu"][..], "--partition", "do nothing"),
        (&["--mem", "8G"], "--mem", "do nothing"),
        (&["--sbatch-line=--account=lab"], "--sbatch-line", "do nothing"),
        (
            &["--ray-address", "http://10.0.0.1:8265"],
            "--ray-address",
            "do nothing",
        ),
        (&["--gpus", "1"], "--gpus", "a cluster setting"),
        (&["--attempts", "2"], "--attempts", "a cluster setting"),
    ] {
        fails(checklist(&[&["--dry-run"][..], args].concat()), &[flag, why]);
    }
    fails(
        checklist(&["--executor", "ray", "--time", "1:00:00"]),
        &["--time", "a slurm setting"],
    );
    fails(
        checklist(&["--executor", "slurm", "--threads", "0"]),
        &["--threads", "at least 1 CPU"],
    );
    fails(
        checklist(&["--executor", "slurm", "--attempts", "0"]),
        &["--attempts", "expected 1 to 100"],
    );
    fails(checklist(&["--parallel", "0"]), &["--parallel", "expected 1 to 1024"]);
    // An executor darkmagic has not: clap's usage error (exit 2) lists the ones it has.
    let o = checklist(&["--executor", "pbs"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("'pbs' for '--executor <EXECUTOR>'") && e.contains("local, slurm, ray"),
        "{e}"
    );
    fails(
        checklist(&["--dry-run", "--seeds", "1000000000"]),
        &["checklist.seeds", "1 to 1000"],
    );
    fails(
        checklist(&["--dry-run", "--set", "checklist.tune.fields={\"optim.lrr\"=[1.0]}"]),
        &["checklist.tune.fields.optim.lrr", "not a numeric field"],
    );
    fails(
        checklist(&["--dry-run", "--set", "checklist.tune.fields={\"optim.lr\"=[]}"]),
        &["checklist.tune.fields.optim.lr", "non-empty list"],
    );
    // A checklist directory whose name is not UTF-8: Slurm and Ray get run dirs as text.
    let bad_out = std::ffi::OsStr::from_bytes(b"/tmp/darkmagic-out-\xff");
    let o = common::bin()
        .args(["checklist", "--set", "checklist.plan=\"none\"", "--out"])
        .arg(bad_out)
        .output()
        .unwrap();
    fails(o, &["--out", "is not valid UTF-8"]);
    assert!(!std::path::Path::new(bad_out).exists(), "nothing written");
    // Fields a trial ignores would make every candidate the same run.
    for field in ["seed", "train.threads", "checklist.alpha"] {
        let set = format!("checklist.tune.fields={{\"{field}\"=[1.0, 2.0]}}");
        fails(
            checklist(&["--dry-run", "--set", &set]),
            &[
                &format!("checklist.tune.fields.{field}"),
                "every candidate would run the same",
            ],
        );
    }
    // A grid bounded per field but not in total: 1000 candidates x 1000 tuning seeds.
    let grid: Vec<String> = (1..=1000).map(|i| format!("{i}.0")).collect();
    let set = format!("checklist.tune.fields={{\"optim.lr\"=[{}]}}", grid.join(","));
    fails(
        checklist(&["--dry-run", "--set", &set, "--set", "checklist.tune.seeds=1000"]),
        &["checklist.tune.fields", "at most 1000 tuning runs per arm"],
    );
    fails(
        checklist(&[
            "--dry-run",
            "--set",
            "checklist.plan=default",
            "--set",
            "checklist.tune.variants={\"optimizer=adma\"={\"optim.lr\"=[1.0]}}",
        ]),
        &[
            "checklist.tune.variants.optimizer=adma",
            "no such variant",
            "optimizer=adam",
        ],
    );
    assert!(!out.join("trials").exists(), "nothing ran");
    // Variants named `a b` and `a_b` would share one run dir.
    let dir = tempdir("cli-collide");
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        "[checklist]\nplan = \"none\"\n[checklist.factors.f]\n\"a b\" = { \"optim.lr\" = 0.2 }\n\"a_b\" = { \"optim.lr\" = 0.3 }\n",
    )
    .unwrap();
    fails(
        run(&["checklist", "--dry-run", "--recipe", recipe.to_str().unwrap()]),
        &["checklist.factors.f", "`f=a b` and `f=a_b`", "trials/f=a_b"],
    );
}

#[test]
fn errors_say_each_thing_once_and_under_the_right_name() {
    let e = fails(
        run(&["recipe", "--recipe", "/no/such/recipe.toml"]),
        &["/no/such/recipe.toml"],
    );
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    let dir = tempdir("init-label");
    let weights = dir.join("w.safetensors");
    std::fs::write(&weights, b"not safetensors").unwrap();
    let (o, _) = train("init-label-run", &["--init", weights.to_str().unwrap()]);
    let e = fails(o, &["weights:", "w.safetensors", "not a safetensors file"]);
    assert!(!e.contains("data:"), "{e}");
}

#[test]
fn schedule_into_a_closed_pipe_ends_quietly() {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("'{}' schedule | head -1", env!("CARGO_BIN_EXE_darkmagic")))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && e.is_empty(), "{e}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "step,epoch,lr,weight_decay\n");
    // Standard output on a full disk: one error line and exit 1, no panic.
    for args in [&["recipe"][..], &["schedule"]] {
        let out = common::bin()
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(
            e.starts_with("error: cannot write to standard output: No space left on device") && !e.contains("panicked"),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn report_reads_nothing_outside_its_directory() {
    let dir = tempdir("confine");
    let secret = dir.join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("train.log"), "SECRET-LOG\n").unwrap();
    std::fs::write(
        secret.join("result.json"),
        r#"{"status":"failed","epochs":0,"final_val_acc":null,"best_val_acc":null,"wall_seconds":0.0,"device":"x","val_images":0,"error":"SECRET-RESULT"}"#,
    )
    .unwrap();
    // trial.json pointing its `dir` at an absolute path elsewhere.
    let root = dir.join("checklist");
    let seed = root.join("trials/baseline/seed-0");
    std::fs::create_dir_all(&seed).unwrap();
    let trial = format!(
        r#"{{"arm":{{"kind":"baseline"}},"seed":0,"seed_index":0,"dir":{:?}}}"#,
        secret.to_str().unwrap()
    );
    std::fs::write(seed.join("trial.json"), trial).unwrap();
    let o = run(&["report", root.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("panicked"), "{all}");
    for f in ["report.html", "summary.json", "summary.md"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
        assert!(
            !text.contains("SECRET"),
            "{f} embeds a file outside the checklist:\n{text}"
        );
    }
    let md = std::fs::read_to_string(root.join("summary.md")).unwrap();
    assert!(md.contains(" 0.0 minutes") && !md.contains("-0.0"), "{md}");
    // An arm folder that is a link out of the checklist is refused.
    std::fs::remove_dir_all(root.join("trials/baseline")).unwrap();
    std::fs::create_dir_all(secret.join("seed-0")).unwrap();
    std::fs::write(
        secret.join("seed-0/trial.json"),
        r#"{"arm":{"kind":"baseline"},"seed":0,"seed_index":0,"dir":"x"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, root.join("trials/baseline")).unwrap();
    fails(
        run(&["report", root.to_str().unwrap()]),
        &["trials/baseline/seed-0", "outside the checklist directory"],
    );
    // A failed trial inside the checklist whose train.log links to a file outside it: the
    // report shows no log rather than that file.
    std::fs::remove_file(root.join("trials/baseline")).unwrap();
    let seed = root.join("trials/baseline/seed-0");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(
        seed.join("trial.json"),
        r#"{"arm":{"kind":"baseline"},"seed":0,"seed_index":0,"dir":"x"}"#,
    )
    .unwrap();
    std::fs::copy(secret.join("result.json"), seed.join("result.json")).unwrap();
    let failed = std::fs::read_to_string(seed.join("result.json"))
        .unwrap()
        .replace("SECRET-RESULT", "oom");
    std::fs::write(seed.join("result.json"), failed).unwrap();
    std::os::unix::fs::symlink(secret.join("train.log"), seed.join("train.log")).unwrap();
    // (A trial with a result is judged with the settings of baseline.toml, the defaults here,
    // and its recipe.toml must be the one they run.)
    std::fs::write(root.join("baseline.toml"), "").unwrap();
    std::fs::write(seed.join("recipe.toml"), ok(run(&["recipe"]))).unwrap();
    ok(run(&["report", root.to_str().unwrap()]));
    for f in ["report.html", "summary.json", "summary.md"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        assert!(!text.contains("SECRET"), "{f} embeds a linked train.log:\n{text}");
    }
}

/// Every resource field of a Slurm submission and the checklist's `--out` path, fed a newline
/// and a command, `$(...)`, backticks, quotes and `%j`: either the value is refused with the
/// option named, or the generated script, run by bash with its `exec` line replaced, runs no
/// injected command and lists the run dirs exactly.
#[test]
fn slurm_scripts_carry_no_injected_command() {
    use darkmagic::executor::{Job, slurm::Slurm};
    let dir = tempdir("slurm-inject");
    let marker = dir.join("pwned");
    let m = marker.to_str().unwrap();
    let payloads = [
        format!("x\ntouch {m}"),
        format!("x$(touch {m})"),
        format!("x`touch {m}`"),
        format!("x\"; touch {m}; '"),
        "x%j".to_string(),
    ];
    let base = Slurm {
        exe: "/opt/darkmagic".into(),
        root: dir.join("out"),
        cpus_per_task: 1,
        partition: None,
        time: None,
        mem: None,
        gpus: 0,
        extra: Vec::new(),
        attempts: 1,
        detach: false,
        poll: std::time::Duration::from_secs(1),
    };
    let (mut refused, mut accepted) = (0, 0);
    for p in &payloads {
        let cases: [(&str, Slurm); 5] = [
            (
                "--partition",
                Slurm {
                    partition: Some(p.clone()),
                    ..base.clone()
                },
            ),
            (
                "--time",
                Slurm {
                    time: Some(p.clone()),
                    ..base.clone()
                },
            ),
            (
                "--mem",
                Slurm {
                    mem: Some(p.clone()),
                    ..base.clone()
                },
            ),
            (
                "--sbatch-line",
                Slurm {
                    extra: vec![format!("--comment={p}")],
                    ..base.clone()
                },
            ),
            (
                "--out",
                Slurm {
                    root: dir.join(format!("out {p}")),
                    ..base.clone()
                },
            ),
        ];
        for (flag, s) in cases {
            if let Err(e) = s.check() {
                let e = e.to_string();
                assert!(
                    e.starts_with(flag) && (e.contains("expected") || e.contains("cannot hold")),
                    "{e}"
                );
                refused += 1;
                continue;
            }
            accepted += 1;
            let jobs: Vec<Job> = (0..2)
                .map(|k| Job {
                    dir: s.root.join(format!("trials/it's/seed-{k}")),
                    label: "t".into(),
                    epochs: 1,
                })
                .collect();
            let listed = dir.join("listed");
            let script: String = s
                .script(&jobs)
                .lines()
                .map(|l| {
                    if l.starts_with("exec ") {
                        format!("printf '%s\\n' \"${{dirs[@]}}\" > '{}'", listed.display())
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let path = dir.join("submit.sh");
            std::fs::write(&path, &script).unwrap();
            let out = Command::new("bash").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{flag} {p:?}: {}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!marker.exists(), "{flag} = {p:?} ran a command:\n{script}");
            let want: Vec<String> = jobs.iter().map(|j| j.dir.display().to_string() + "\n").collect();
            assert_eq!(std::fs::read_to_string(&listed).unwrap(), want.concat(), "{flag} {p:?}");
            let sbatch_lines = script.lines().skip(1).take_while(|l| l.starts_with('#'));
            assert!(
                sbatch_lines.count() >= 3,
                "{flag} {p:?}: the #SBATCH block ends early:\n{script}"
            );
        }
    }
    // Newlines are refused in every field (5); partition, time and mem admit none of the other
    // payloads (12); --sbatch-line and --out take them as inert text (8).
    assert_eq!((refused, accepted), (17, 8));
}

/// Runs darkmagic with `args` under `ulimit -v limit_kb` (address space, KiB).
fn under_ulimit(limit_kb: u64, args: &[&str]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -v {limit_kb} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_darkmagic"))
        .args(args)
        .output()
        .unwrap()
}

/// The smallest address-space limit (KiB, in 100 MB steps) under which darkmagic starts and
/// inspects the digits.
fn startup_limit() -> u64 {
    (20..100)
        .map(|i| i * 100_000)
        .find(|&kb| under_ulimit(kb, &["data", "inspect", "digits"]).status.success())
        .expect("darkmagic starts under some limit below 10 GB")
}

/// An image inside the pixel limit but of extreme aspect ratio (178956970x1, Pillow's most
/// pixels in one row, 179 MB decoded) brought to the digits model's 8x8: resizing its shorter
/// side to 8 first would make 1.4 GB, so under 1 GB of address space beyond darkmagic's own it
/// is predicted only if just the centre crop of the resize is computed.
#[test]
fn an_extreme_aspect_ratio_costs_only_the_crop() {
    let (out, run_dir) = train("aspect", &[]);
    ok(out);
    let wide = tempdir("aspect-image").join("wide.png");
    image::GrayImage::new(178_956_970, 1).save(&wide).unwrap();
    let o = under_ulimit(
        startup_limit() + 1_000_000,
        &[
            "predict",
            "--run-dir",
            run_dir.to_str().unwrap(),
            wide.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wide.png"));
}

/// Files whose headers (or sizes) claim 430-620 MB, inspected with about 300-400 MB of address
/// space left after darkmagic has loaded libtorch: each ends in an error naming the file, not
/// in an abort.
#[test]
fn header_bombs_under_a_memory_limit_end_in_clear_errors() {
    use std::io::Write;
    let limit = startup_limit() + 300_000;
    let dir = tempdir("ulimit");
    let jpeg = dir.join("jpeg");
    folder(&jpeg, &["a"], 1);
    std::fs::create_dir_all(jpeg.join("b")).unwrap();
    std::fs::write(jpeg.join("b/big.jpg"), jpeg_claiming(15000, 10000)).unwrap();
    let png = dir.join("png");
    folder(&png, &["a"], 1);
    std::fs::create_dir_all(png.join("b")).unwrap();
    std::fs::write(png.join("b/big.png"), png_claiming(12000, 12000)).unwrap();
    // An IDX gzip bomb: 600 MB of zeros in about 0.6 MB.
    let idx = dir.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    let n: u32 = 765_000;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut header = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    gz.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(n as usize * 784) >> 20 {
        gz.write_all(&zeros).unwrap();
    }
    std::fs::write(idx.join("train-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    write_idx(&idx.join("train-labels-idx1-ubyte"), &[1], &[0]);
    // A CIFAR-10 batch of 614 MB that is all holes (a sparse file).
    let cifar = dir.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    let f = std::fs::File::create(cifar.join("data_batch_1.bin")).unwrap();
    f.set_len(3073 * 200_000).unwrap();
    for (data, file) in [
        (&jpeg, "big.jpg"),
        (&png, "big.png"),
        (&idx, "train-images-idx3-ubyte.gz"),
        (&cifar, "data_batch_1.bin"),
    ] {
        let o = under_ulimit(limit, &["data", "inspect", data.to_str().unwrap()]);
        fails(o, &[file, "cannot allocate", "out of memory"]);
    }
}

#[test]
fn further_cases_found_by_trying() {
    let dir = tempdir("further");
    let file = dir.join("afile");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    fails(
        run(&["train", "--run-dir", f]),
        &["afile", "exists and is not a folder"],
    );
    let r = dir.join("r");
    fails(
        run(&["train", "--run-dir", r.to_str().unwrap(), "--threads", "100000"]),
        &["train.threads", "0 (all cores) to 1024"],
    );
    fails(
        run(&["checklist", "--out", f, "--threads", "100000"]),
        &["--threads", "expected 0 to 1024"],
    );
    let grid = dir.join("g.png");
    fails(
        run(&["augment", "preview", "--count", "0", "--out", grid.to_str().unwrap()]),
        &["--count", "expected 1 to 4096"],
    );
    let e = fails(
        run(&[
            "augment",
            "apply",
            "--op",
            "Nope",
            "--in",
            f,
            "--out",
            grid.to_str().unwrap(),
        ]),
        &["--op", "unknown op `Nope`"],
    );
    assert!(!e.contains("recipe"), "{e}");
    fails(
        run(&["bench", "train", "--image", "3x0x32", "--steps", "1"]),
        &["--image", "at least 1"],
    );
    // `augment apply` reads its input as a data set's image: header limits included.
    let bomb = dir.join("bomb.jpg");
    std::fs::write(&bomb, jpeg_claiming(60000, 60000)).unwrap();
    fails(
        run(&[
            "augment",
            "apply",
            "--op",
            "Invert",
            "--in",
            bomb.to_str().unwrap(),
            "--out",
            grid.to_str().unwrap(),
        ]),
        &["bomb.jpg", "decompression-bomb limit"],
    );
}

#[test]
fn eval_and_predict_name_the_missing_checkpoint_the_class_count_and_the_bad_image() {
    let (out, run_dir) = train("eval-bad", &[]);
    ok(out);
    let rd = run_dir.to_str().unwrap();
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--run-dir", rd];
        args.extend_from_slice(extra);
        run(&args)
    };

    // --resume of a finished run returns its result; with another recipe it says that nothing
    // trains again instead of ignoring the change.
    ok(run(&["train", "--run-dir", rd, "--resume"]));
    fails(
        run(&["train", "--run-dir", rd, "--resume", "--set", "optim.lr=0.5"]),
        &[
            "recipe.toml",
            "--resume: this run has finished",
            "train into another run dir",
        ],
    );

    let fresh = tempdir("eval-no-checkpoint");
    std::fs::copy(run_dir.join("recipe.toml"), fresh.join("recipe.toml")).unwrap();
    fails(
        run(&["eval", "--run-dir", fresh.to_str().unwrap()]),
        &["checkpoint.safetensors", "missing: the run has no trained weights yet"],
    );
    fails(
        eval(&["--ema"]),
        &["--ema", "kept no EMA weights (train.ema_decay = 0)"],
    );
    fails(eval(&["--split", "test"]), &["--split", "no test split"]);

    let other = tempdir("eval-three-classes");
    folder(&other, &["ant", "bee", "cat"], 2);
    fails(
        eval(&["--data", other.to_str().unwrap()]),
        &[
            "eval-three-classes",
            "class count: the data set has 3 classes (ant, bee, cat); the model has 10 (0, 1, 2, 3, 4, ...)",
        ],
    );

    // Ten classes, as the model has, but other ones.
    let renamed = tempdir("eval-ten-other-classes");
    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    folder(&renamed, &names.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    fails(
        eval(&["--data", renamed.to_str().unwrap()]),
        &[
            "eval-ten-other-classes",
            "classes: the data set's class 0 is `c0`, the model's `0`",
        ],
    );

    // The model's classes with two images each: the validation split (a tenth of each class,
    // rounded) holds none, and scoring it would print "top-1 0.00%".
    let tiny = tempdir("eval-empty-split");
    let digits: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    folder(&tiny, &digits.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    fails(
        eval(&[
            "--data",
            tiny.to_str().unwrap(),
            "--split",
            "val",
            "--set",
            "data.image_size=8",
        ]),
        &[
            "--split",
            "val: the split holds no images (data.val_fraction = 0.1 of each class, rounded); use another split",
        ],
    );
    // Two data sets of one folder name keep their figures apart in the run's eval folder.
    for parent in ["one", "two"] {
        let same = tiny.join(parent).join("same");
        folder(&same, &digits.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        let args = [
            "--data",
            same.to_str().unwrap(),
            "--split",
            "all",
            "--set",
            "data.image_size=8",
        ];
        ok(eval(&args));
    }
    let written: Vec<String> = std::fs::read_dir(run_dir.join("eval"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("same-"))
        .collect();
    assert_eq!(written.len(), 2, "{written:?}");

    let broken = other.join("broken.png");
    std::fs::write(&broken, b"\x89PNG not really").unwrap();
    let good = other.join("ant/0.png");
    let (good, broken) = (good.to_str().unwrap(), broken.to_str().unwrap());
    fails(
        run(&["predict", "--run-dir", rd, good, broken]),
        &["broken.png", "cannot decode"],
    );
    fails(
        run(&["predict", "--run-dir", "/nonexistent/run", good]),
        &["/nonexistent/run", "not a folder"],
    );
    fails(
        run(&["predict", "--run-dir", rd, "/nonexistent/y.png"]),
        &["/nonexistent/y.png", "no such file or folder"],
    );
    fails(
        run(&["predict", "--run-dir", rd, "--top-k", "0", good]),
        &["--top-k", "expected at least 1"],
    );
    let before = std::fs::read(good).unwrap();
    fails(
        run(&["predict", "--run-dir", rd, "--out", good, good]),
        &["--out", "is one of the images to classify"],
    );
    assert_eq!(std::fs::read(good).unwrap(), before, "the image is left as it was");
}

#[test]
fn external_trainer_errors_name_the_command_the_metric_and_the_unmapped_factor() {
    let dir = tempdir("external-bad");
    let recipe = dir.join("r.toml");
    let write = |text: &str| std::fs::write(&recipe, text).unwrap();
    let r = recipe.to_str().unwrap();
    let dry_run = || run(&["checklist", "--dry-run", "--recipe", r]);
    let base = "[external]\ncommand = [\"/nonexistent/trainer\"]\n[external.metric]\nregex = \"acc=([0-9.]+)\"\n";

    write(&format!(
        "[checklist]\nplan = \"none\"\n[checklist.factors.lr]\nbig = {{ \"--lr\" = 1.0 }}\n{base}"
    ));
    let out = dir.join("out");
    fails(
        run(&["checklist", "--recipe", r, "--out", out.to_str().unwrap()]),
        &["external.command", "`/nonexistent/trainer` not found"],
    );
    assert!(!out.join("trials").exists(), "nothing ran");

    write(&format!(
        "[checklist]\nplan = \"none\"\n[checklist.factors.se]\noff = {{ \"model.se\" = false }}\n{base}"
    ));
    fails(
        dry_run(),
        &["checklist.factors.se.off", "`model.se` is a darkmagic field"],
    );
    write(base);
    fails(dry_run(), &["checklist.plan", "use `timm`"]);
    write("[checklist]\nplan = \"timm\"\n");
    fails(dry_run(), &["checklist.plan", "needs an [external] trainer"]);
    write("[checklist]\nplan = \"none\"\n[external]\ncommand = [\"x\"]\n[external.metric]\ncsv = \"s.csv\"\n");
    fails(dry_run(), &["external.metric.key", "required with `csv`"]);
    write("[checklist]\nplan = \"none\"\n[external]\ncommand = [\"x\"]\n[external.metric]\nregex = \"acc=[0-9.]+\"\n");
    fails(dry_run(), &["external.metric.regex", "no capture group"]);
    // A pattern whose compiled program is huge: matching one long line took minutes.
    write(
        "[checklist]\nplan = \"none\"\n[external]\ncommand = [\"x\"]\n[external.metric]\nregex = \"(?:a{0,100}){100}([0-9])\"\n",
    );
    fails(dry_run(), &["external.metric.regex", "size limit"]);
    write(
        "[checklist]\nplan = \"none\"\n[external]\ncommand = [\"x\"]\n[external.args]\nlr = 0.1\n[external.metric]\nregex = \"(.)\"\n",
    );
    fails(dry_run(), &["external.args.lr", "not a flag"]);
    for outside in ["/etc/shadow", "{run_dir}/../../etc/passwd"] {
        write(&format!(
            "[checklist]\nplan = \"none\"\n[external]\ncommand = [\"x\"]\n[external.metric]\ncsv = \"{outside}\"\nkey = \"acc\"\n"
        ));
        fails(
            dry_run(),
            &["external.metric.csv", "must name a file inside the run dir"],
        );
    }
    write(&format!("[checklist]\nplan = \"none\"\nearly_stop = true\n{base}"));
    fails(dry_run(), &["checklist.early_stop", "needs darkmagic's trainer"]);
}

/// Files darkmagic wrote itself, edited into values no run could have: `model.json` with a side
/// of 0 or no std, `"epoch": 0` in metrics.jsonl, a tuning index of 1e11 in trial.json. Each is
/// an error naming the file and the field; never a panic or an allocation to the OOM killer.
#[test]
fn run_records_edited_into_impossible_values_are_named_or_handled() {
    let (dir, recipe, out) = tiny_checklist("impossible-records", "seeds = 1\nmax_seeds = 1\n");
    let out_s = out.to_str().unwrap();
    let run_dir = out.join("trials/baseline/seed-0");
    let rd = run_dir.to_str().unwrap();
    let spec_path = run_dir.join("model.json");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let edit = |from: &str, to: &str| {
        let edited = spec.replacen(from, to, 1);
        assert_ne!(edited, spec, "{from} in {spec}");
        std::fs::write(&spec_path, edited).unwrap();
    };
    edit("\"height\": 8", "\"height\": 0");
    fails(
        run(&["eval", "--run-dir", rd]),
        &["model.json", "expected sides of 1 to 4096"],
    );
    edit("\"height\": 8", "\"height\": 100000");
    fails(
        run(&["eval", "--run-dir", rd]),
        &["model.json", "expected sides of 1 to 4096"],
    );
    let std_values = spec.split("\"std\": [").nth(1).unwrap().split(']').next().unwrap();
    edit(&format!("\"std\": [{std_values}]"), "\"std\": []");
    fails(
        run(&["eval", "--run-dir", rd]),
        &["model.json", "mean and std have 1 and 0 values; expected 1 value each"],
    );
    std::fs::write(&spec_path, &spec).unwrap();

    let metrics_path = run_dir.join("metrics.jsonl");
    let metrics = std::fs::read_to_string(&metrics_path).unwrap();
    std::fs::write(&metrics_path, metrics.replacen("\"epoch\":1", "\"epoch\":0", 1)).unwrap();
    fails(
        run(&["report", out_s]),
        &[
            "metrics.jsonl",
            "line 1: epoch = 0",
            "in a checklist, the trial's folder",
        ],
    );
    std::fs::write(&metrics_path, &metrics).unwrap();
    ok(run(&["report", out_s]));

    // result.json: an accuracy no run could record is not judged with (nor silently dropped).
    let result_path = run_dir.join("result.json");
    let result = std::fs::read_to_string(&result_path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&result).unwrap();
    edited["final_val_acc"] = 2.0.into();
    std::fs::write(&result_path, edited.to_string()).unwrap();
    fails(
        run(&["report", out_s]),
        &["result.json", "final_val_acc = 2: expected a fraction in [0, 1]"],
    );
    fails(
        common::checklist(&recipe, &out, &[]).output().unwrap(),
        &["result.json", "final_val_acc = 2"],
    );
    std::fs::write(&result_path, &result).unwrap();
    // A trial folder copied under another seed's name would count one seed twice.
    let copy = out.join("trials/baseline/seed-5");
    ok(Command::new("cp").arg("-r").arg(&run_dir).arg(&copy).output().unwrap());
    fails(
        run(&["report", out_s]),
        &[
            "seed-5/trial.json",
            "records `baseline` seed index 0, which belongs in trials/baseline/seed-0",
        ],
    );
    // Without baseline.toml (records from before it was written) the copy is still one too many.
    let (baseline_toml, aside) = (out.join("baseline.toml"), dir.join("baseline.toml"));
    std::fs::rename(&baseline_toml, &aside).unwrap();
    fails(
        run(&["report", out_s]),
        &["seed-5/trial.json", "records the same trial (baseline, seed index 0)"],
    );
    std::fs::rename(&aside, &baseline_toml).unwrap();
    std::fs::remove_dir_all(&copy).unwrap();
    // baseline.toml's [checklist] section sets alpha and the margin: unreadable is an error, not the defaults.
    let baseline_path = out.join("baseline.toml");
    let baseline = std::fs::read_to_string(&baseline_path).unwrap();
    std::fs::write(&baseline_path, "[checklist]\nalpha = \"high\"\n").unwrap();
    fails(run(&["report", out_s]), &["baseline.toml", "[checklist]", "alpha"]);
    std::fs::write(&baseline_path, &baseline).unwrap();
    ok(run(&["report", out_s]));
    // A completed result whose epoch count is neither its recipe's nor its metrics.jsonl's, or
    // whose accuracy is no count of its validation images.
    let report = || run(&["report", out_s]);
    let trained = serde_json::from_str::<serde_json::Value>(&result).unwrap()["epochs"].clone();
    let seven = json_edited(&result_path, |v| v["epochs"] = 7.into());
    let seven_words = format!("epochs = 7 in a completed run whose recipe.toml trains {trained}");
    refused_while_edited(&result_path, &seven, report, &["result.json", &seven_words]);
    let uncounted = json_edited(&result_path, |v| v["val_images"] = 0.into());
    refused_while_edited(
        &result_path,
        &uncounted,
        report,
        &["result.json", "val_images = 0 beside final_val_acc"],
    );
    // Another count of the same images, in final and best alike: not what metrics.jsonl says.
    let recounted = json_edited(&result_path, |v| {
        let n = v["val_images"].as_f64().unwrap();
        let other = ((v["final_val_acc"].as_f64().unwrap() * n).round() - 1.0).max(0.0) / n;
        v["final_val_acc"] = other.into();
        v["best_val_acc"] = other.into();
    });
    refused_while_edited(
        &result_path,
        &recounted,
        report,
        &["result.json", "final_val_acc = ", "but metrics.jsonl's epochs give"],
    );
    // The run's one epoch renumbered 2 in metrics.jsonl; the trial's trial.json deleted.
    let metrics_path = run_dir.join("metrics.jsonl");
    let renumbered = text_edited(&metrics_path, "\"epoch\":1,", "\"epoch\":2,");
    refused_while_edited(
        &metrics_path,
        &renumbered,
        report,
        &["metrics.jsonl", "line 1: epoch = 2, where darkmagic records epoch 1"],
    );
    let trial_record = std::fs::read(run_dir.join("trial.json")).unwrap();
    std::fs::remove_file(run_dir.join("trial.json")).unwrap();
    fails(
        run(&["report", out_s]),
        &["seed-0/trial.json", "missing beside a finished result.json"],
    );
    std::fs::write(run_dir.join("trial.json"), trial_record).unwrap();
    std::fs::write(&result_path, &result).unwrap();
    // The trial's recipe.toml edited to another learning rate than its arm's: it would be
    // judged as the baseline while it trained something else.
    let recipe_path = run_dir.join("recipe.toml");
    let other = text_edited(&recipe_path, "\nlr = 0.1\n", "\nlr = 0.01\n");
    refused_while_edited(
        &recipe_path,
        &other,
        report,
        &[
            "seed-0/recipe.toml",
            "holds a different recipe than this checklist would run (optim.lr = 0.01, where it runs optim.lr = 0.1) (checked against baseline.toml",
        ],
    );
    // A completed result without its accuracy is refused, not dropped from the arm.
    let no_acc = json_edited(&result_path, |v| {
        v.as_object_mut().unwrap().remove("final_val_acc");
    });
    refused_while_edited(
        &result_path,
        &no_acc,
        report,
        &["result.json", "completed without final_val_acc"],
    );
    // A finished trial without trial.json, or without a readable recipe.toml, cannot be matched.
    let trial_json = run_dir.join("trial.json");
    let trial_text = std::fs::read_to_string(&trial_json).unwrap();
    std::fs::remove_file(&trial_json).unwrap();
    fails(
        common::checklist(&recipe, &out, &[]).output().unwrap(),
        &["trial.json", "missing beside a finished result.json"],
    );
    std::fs::write(&trial_json, &trial_text).unwrap();
    let recipe_path = run_dir.join("recipe.toml");
    let recipe_text = std::fs::read_to_string(&recipe_path).unwrap();
    std::fs::remove_file(&recipe_path).unwrap();
    fails(
        common::checklist(&recipe, &out, &["--set", "model.width=0.5"])
            .output()
            .unwrap(),
        &["recipe.toml", "is missing beside a finished result.json"],
    );
    std::fs::write(&recipe_path, &recipe_text).unwrap();
    // An arm the design never planned (a copied variant under another label) is not judged.
    let stray = out.join("trials/lr=high/seed-0");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    ok(Command::new("cp")
        .arg("-r")
        .arg(out.join("trials/lr=low/seed-0"))
        .arg(&stray)
        .output()
        .unwrap());
    let stray_trial = std::fs::read_to_string(stray.join("trial.json")).unwrap();
    std::fs::write(stray.join("trial.json"), stray_trial.replace("\"low\"", "\"high\"")).unwrap();
    fails(
        run(&["report", out_s]),
        &[
            "lr=high/seed-0/trial.json",
            "`lr=high` is not among the 1 variants design.json planned",
        ],
    );
    std::fs::remove_dir_all(out.join("trials/lr=high")).unwrap();
    // The design of the trials' look is gone: report refuses as the checklist does.
    let design = std::fs::read(out.join("design.json")).unwrap();
    std::fs::remove_file(out.join("design.json")).unwrap();
    // The last summary says a design was fixed: report and resume refuse.
    fails(run(&["report", out_s]), &["design.json", "is missing"]);
    fails(
        common::checklist(&recipe, &out, &[]).output().unwrap(),
        &["design.json", "is missing"],
    );
    // Trials that completed their look after the last run ended (a --detach'ed round finished on
    // the cluster: the last summary has no fixed design) get their design fixed by the resume.
    let summary_path = out.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    summary["design"]["fixed"] = false.into();
    std::fs::write(&summary_path, summary.to_string()).unwrap();
    ok(common::checklist(&recipe, &out, &[]).output().unwrap());
    assert!(out.join("design.json").exists(), "the resume fixed the design");
    std::fs::write(out.join("design.json"), design).unwrap();
    // predict does not write over the run's own files.
    let png = dir.join("x.png");
    image::GrayImage::new(8, 8).save(&png).unwrap();
    let weights = run_dir.join("checkpoint.safetensors");
    fails(
        run(&[
            "predict",
            "--run-dir",
            rd,
            "--out",
            weights.to_str().unwrap(),
            png.to_str().unwrap(),
        ]),
        &["--out", "one of the run's own files"],
    );
    ok(run(&["report", out_s]));

    // design.json edited consistently with its digest removed: judged by no one.
    let design_path = out.join("design.json");
    let design = std::fs::read_to_string(&design_path).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&design).unwrap();
    forged.as_object_mut().unwrap().remove("digest");
    forged["margin"] = 50.0.into();
    forged["design"]["margin"] = 0.5.into();
    std::fs::write(&design_path, forged.to_string()).unwrap();
    fails(
        run(&["report", out_s]),
        &[
            "design.json",
            "holds checklist.margin = 50 pp, but the checklist ran with the default",
        ],
    );
    std::fs::write(&design_path, &design).unwrap();
    // design.json and summary.json deleted, then a rerun with another alpha: refused.
    let summary_text = std::fs::read(&summary_path).unwrap();
    std::fs::remove_file(&design_path).unwrap();
    std::fs::remove_file(&summary_path).unwrap();
    fails(
        common::checklist(&recipe, &out, &["--set", "checklist.alpha=0.2"])
            .output()
            .unwrap(),
        &["baseline.toml", "checklist.alpha = 0.05", "asks for 0.2"],
    );
    // With baseline.toml gone too, the settings that judged the results are unknown: refused.
    let baseline_text = std::fs::read(out.join("baseline.toml")).unwrap();
    std::fs::remove_file(out.join("baseline.toml")).unwrap();
    fails(
        common::checklist(&recipe, &out, &["--set", "checklist.alpha=0.2"])
            .output()
            .unwrap(),
        &["baseline.toml", "is missing, and so is design.json"],
    );
    // The report cannot judge them either: the defaults could reverse a verdict.
    fails(
        run(&["report", out_s]),
        &["baseline.toml", "is missing, and so is design.json"],
    );
    assert!(!summary_path.exists(), "nothing judged, nothing written");
    std::fs::write(out.join("baseline.toml"), baseline_text).unwrap();
    std::fs::write(&design_path, &design).unwrap();
    std::fs::write(&summary_path, &summary_text).unwrap();
    // A result claiming an external trainer's unbounded metric in a checklist without one.
    edited["final_val_acc"] = 2.0.into();
    edited["device"] = "external".into();
    std::fs::write(&result_path, edited.to_string()).unwrap();
    fails(
        run(&["report", out_s]),
        &[
            "result.json",
            "device = \"external\", but the checklist's recipe has no [external] trainer",
        ],
    );
    std::fs::write(&result_path, &result).unwrap();
    ok(run(&["report", out_s]));
    // A variant's trial copied, consistently, to a seed index beyond the design's last.
    let extra = out.join("trials/lr=low/seed-1");
    ok(Command::new("cp")
        .arg("-r")
        .arg(out.join("trials/lr=low/seed-0"))
        .arg(&extra)
        .output()
        .unwrap());
    let moved = std::fs::read_to_string(extra.join("trial.json")).unwrap();
    let moved = moved
        .replace("\"seed_index\": 0", "\"seed_index\": 1")
        .replace("\"seed\": 0", "\"seed\": 1");
    std::fs::write(extra.join("trial.json"), moved.replace("seed-0", "seed-1")).unwrap();
    let recipe_text = std::fs::read_to_string(extra.join("recipe.toml")).unwrap();
    std::fs::write(
        extra.join("recipe.toml"),
        recipe_text.replacen("seed = 0", "seed = 1", 1),
    )
    .unwrap();
    // (Its result is bound to the recipe it ran: refused as such. Made to look like a record from
    // before the seals, the seed index gives it away.)
    fails(
        run(&["report", out_s]),
        &["lr=low/seed-1/recipe.toml", "is not the recipe this run trained"],
    );
    common::make_legacy(&extra);
    fails(
        run(&["report", out_s]),
        &[
            "lr=low/seed-1/trial.json",
            "seed index 1 of `lr=low`: the design plans its seeds at indices 0 to 0",
        ],
    );
    std::fs::remove_dir_all(&extra).unwrap();
    // A variant's overrides edited in its trial.json: the record is named, not its recipe.toml.
    let low = out.join("trials/lr=low/seed-0/trial.json");
    let low_text = std::fs::read_to_string(&low).unwrap();
    let edited_low = low_text.replacen("0.01", "0.02", 1);
    assert_ne!(edited_low, low_text, "{low_text}");
    std::fs::write(&low, edited_low).unwrap();
    fails(
        common::checklist(&recipe, &out, &[]).output().unwrap(),
        &[
            "lr=low/seed-0/trial.json",
            "records the overrides {optim.lr = 0.02}; the plan's are {optim.lr = 0.01}",
        ],
    );
    std::fs::write(&low, &low_text).unwrap();

    let trial_path = out.join("trials/lr=low/seed-0/trial.json");
    let trial = std::fs::read_to_string(&trial_path).unwrap();
    let tuned = trial.replacen("\"seed_index\": 0,", "\"seed_index\": 0, \"tune\": 100000000000,", 1);
    assert_ne!(tuned, trial, "{trial}");
    std::fs::write(&trial_path, tuned).unwrap();
    fails(run(&["report", out_s]), &["trial.json", "tune below 1000"]);
}

/// Inputs that are not regular files: a FIFO or /dev/zero as the recipe or as weights would
/// block forever or read until the OOM killer came. Each is refused at once, by name.
#[test]
fn fifos_and_devices_are_refused_as_files() {
    let dir = tempdir("fifo");
    let fifo = dir.join("recipe.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    fails(
        run(&[
            "train",
            "--recipe",
            fifo.to_str().unwrap(),
            "--run-dir",
            dir.join("r").to_str().unwrap(),
        ]),
        &["recipe.toml", "not a regular file"],
    );
    fails(
        run(&[
            "train",
            "--recipe",
            "/dev/zero",
            "--run-dir",
            dir.join("r").to_str().unwrap(),
        ]),
        &["/dev/zero", "not a regular file"],
    );
    let image = dir.join("x.png");
    image::GrayImage::new(8, 8).save(&image).unwrap();
    fails(
        run(&["predict", "--weights", "/dev/zero", image.to_str().unwrap()]),
        &["/dev/zero", "not a regular file"],
    );
    // A FIFO named like an image: as the image to augment, and inside a data set, which the
    // checklist's data fingerprint reads whole.
    let fifo_png = dir.join("f.png");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo_png)
            .status()
            .unwrap()
            .success()
    );
    let out_png = dir.join("o.png");
    fails(
        run(&[
            "augment",
            "apply",
            "--op",
            "Rotate",
            "--in",
            fifo_png.to_str().unwrap(),
            "--out",
            out_png.to_str().unwrap(),
        ]),
        &["f.png", "not a regular file"],
    );
    // ... and as an output: neither blocked on nor replaced, nor a link written through; a
    // name without an image extension is told so, and leaves no file.
    let real = dir.join("real.png");
    image::GrayImage::from_pixel(4, 4, image::Luma([9]))
        .save(&real)
        .unwrap();
    let link = dir.join("link.png");
    std::os::unix::fs::symlink("kept.txt", &link).unwrap();
    std::fs::write(dir.join("kept.txt"), "kept").unwrap();
    let apply_to = |out: &Path| {
        run(&[
            "augment",
            "apply",
            "--op",
            "Rotate",
            "--in",
            real.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    fails(apply_to(&fifo_png), &["f.png", "a FIFO, not a regular file"]);
    fails(apply_to(&link), &["link.png", "a symbolic link, not a regular file"]);
    assert_eq!(std::fs::read_to_string(dir.join("kept.txt")).unwrap(), "kept");
    fails(
        apply_to(&dir.join("x.bmp")),
        &["x.bmp", "expected a file name ending in .png, .jpg or .jpeg"],
    );
    assert!(!dir.join("x.bmp").exists());
    fails(
        run(&[
            "augment",
            "apply",
            "--op",
            "Invert",
            "--negate",
            "--in",
            real.to_str().unwrap(),
            "--out",
            out_png.to_str().unwrap(),
        ]),
        &["--negate", "Invert has no sign to negate"],
    );
    let data = dir.join("data");
    for (class, v) in [("a", 0), ("b", 255)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..4 {
            image::GrayImage::from_pixel(8, 8, image::Luma([v]))
                .save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    // predict on it says what it is, not that it is missing.
    fails(
        run(&["predict", "--weights", "/dev/null", fifo_png.to_str().unwrap()]),
        &["f.png", "not a regular file (a FIFO, device or socket)"],
    );
    // An IDX folder whose images file is a FIFO: named as such, not as a folder without classes.
    let idx = dir.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(idx.join("train-images-idx3-ubyte"))
            .status()
            .unwrap()
            .success()
    );
    fails(
        run(&["data", "inspect", idx.to_str().unwrap()]),
        &["train-images-idx3-ubyte", "not a regular file"],
    );
    // A CIFAR batch that is a FIFO: refused when read, not waited on.
    let cifar = dir.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(cifar.join("data_batch_1.bin"))
            .status()
            .unwrap()
            .success()
    );
    fails(
        run(&["data", "inspect", cifar.to_str().unwrap()]),
        &["data_batch_1.bin", "not a regular file"],
    );
    std::fs::rename(&fifo_png, data.join("a/zz.png")).unwrap();
    let recipe = dir.join("c.toml");
    let body = format!(
        "[data]\ndataset = \"folder\"\npath = \"{}\"\nval_fraction = 0.25\n[checklist]\nplan = \"none\"\n\
         [checklist.factors.lr]\nlow = {{ \"optim.lr\" = 0.01 }}\n",
        data.display()
    );
    std::fs::write(&recipe, body).unwrap();
    fails(
        common::checklist(&recipe, &dir.join("out"), &[]).output().unwrap(),
        &["a/zz.png", "not a regular file"],
    );
    assert!(started.elapsed().as_secs() < 30, "nothing blocked");
}

/// Every numeric argument of every command and subcommand, given values past any range (0,
/// 10^11, 1e300, NaN): each run ends with exit code 0, 1 or 2 and, when it fails, an `error:`
/// line; never a panic, an abort on a huge allocation, a signal (checklist --threads 10^11 had
/// libtorch start threads until the kernel killed it) or a hang (3 minutes: a dry run times
/// training steps, slow on a loaded machine). Each command is pointed at something that ends
/// it fast when the value is accepted (a missing run dir, a dry run, one tiny step).
#[test]
fn every_numeric_argument_is_bounded_or_refused() {
    let dir = tempdir("numeric-args");
    let recipe = dir.join("r.toml");
    std::fs::write(&recipe, "[model]\nwidth = 0.25\n[train]\nepochs = 1\n").unwrap();
    let (r, out) = (recipe.to_str().unwrap(), dir.join("out"));
    let o = out.to_str().unwrap().to_string();
    let png = dir.join("p.png").to_str().unwrap().to_string();
    // Each command's arguments that end it fast, and its numeric flags.
    let dry = ["checklist", "--recipe", r, "--out", &o, "--dry-run"];
    let slurm = [&dry[..], &["--executor", "slurm"]].concat();
    let predict = ["predict", "--run-dir", "/nonexistent", "/nonexistent.png"];
    let apply = [
        "augment",
        "apply",
        "--op",
        "Rotate",
        "--in",
        "/nonexistent.png",
        "--out",
        &png,
    ];
    let commands: [(&[&str], &[&str]); 9] = [
        (
            &["train", "--recipe", "/nonexistent.toml", "--run-dir", &o],
            &["--threads"],
        ),
        (&["eval", "--run-dir", "/nonexistent"], &["--threads"]),
        (&predict, &["--threads", "--top-k"]),
        (
            &dry,
            &[
                "--seeds",
                "--max-seeds",
                "--parallel",
                "--threads",
                "--trials-per-gpu",
                "--attempts",
            ],
        ),
        (&slurm, &["--gpus"]),
        (&apply, &["--bin", "--fill"]),
        (&["augment", "preview", "--recipe", r, "--out", &png], &["--count"]),
        (&["bench", "augment", "--images", "1"], &["--threads"]),
        (&["bench", "augment", "--threads", "1"], &["--images"]),
    ];
    let cases: Vec<(Vec<&str>, &str)> = commands
        .iter()
        .flat_map(|(args, flags)| flags.iter().map(move |f| (args.to_vec(), *f)))
        .collect();
    let tiny = [
        "--batch",
        "1",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--image",
        "1x8x8",
        "--classes",
        "2",
        "--threads",
        "1",
    ];
    let mut all = cases;
    let refused = [
        ("--parallel", "expected 1 to 1024"),
        ("--threads", "expected 0 to 1024"),
        ("--attempts", "expected 1 to 100"),
    ];
    for (flag, want) in refused {
        let o = run(&[
            "checklist",
            "--recipe",
            r,
            "--out",
            &o,
            "--dry-run",
            flag,
            "99999999999",
        ]);
        fails(o, &[flag, want]);
    }
    for flag in ["--batch", "--steps", "--warmup", "--classes", "--threads"] {
        // One tiny step of training, the flag under test overriding its tiny value.
        let mut args = vec!["bench", "train"];
        for pair in tiny.chunks(2).filter(|p| p[0] != flag) {
            args.extend(pair);
        }
        all.push((args, flag));
    }
    // (-1 and 2^64 end in clap's parser as NaN does; one case of each kind is enough.)
    let values = ["0", "99999999999", "1e300", "nan"];
    let runs: Vec<Vec<String>> = all
        .iter()
        .flat_map(|(args, flag)| {
            values.iter().map(move |v| {
                let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                a.extend([flag.to_string(), v.to_string()]);
                a
            })
        })
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(args) = runs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    let started = std::time::Instant::now();
                    let out = common::bin()
                        .args(args)
                        .env("DARKMAGIC_NO_PROGRESS", "1")
                        .output()
                        .unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let errors: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("warning:")).collect();
                    let sound = match out.status.code() {
                        Some(0) => true,
                        // 2: clap's usage error (a value that is no number, `-1` read as a flag).
                        Some(1 | 2) => {
                            !stderr.contains("panicked") && errors.first().is_some_and(|l| l.starts_with("error:"))
                        }
                        _ => false,
                    };
                    if !sound || started.elapsed() > std::time::Duration::from_secs(180) {
                        failures.lock().unwrap().push(format!(
                            "darkmagic {}: {:?} in {:.1?}: {}",
                            args.join(" "),
                            out.status,
                            started.elapsed(),
                            stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} runs:\n{}",
        failures.len(),
        runs.len(),
        failures.join("\n")
    );
}

/// `train` into a run dir that holds a run, without `--resume`, used to start over and replace
/// its checkpoint, metrics and result. It is refused, naming the folder and what it holds, and
/// the run is left as it was; `--resume` returns the finished run.
#[test]
fn training_into_a_run_dir_that_holds_a_run_is_refused_without_resume() {
    let dir = tempdir("run-dir-taken");
    let run_dir = dir.join("run");
    ok(common::train_one_epoch(&run_dir, &[]));
    let files = ["result.json", "metrics.jsonl", "checkpoint.safetensors"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(run_dir.join(f)).unwrap()).collect();
    let after = || -> Vec<Vec<u8>> { files.iter().map(|f| std::fs::read(run_dir.join(f)).unwrap()).collect() };
    fails(
        common::train_one_epoch(&run_dir, &[]),
        &[
            &format!("{}: holds a completed run (result.json)", run_dir.display()),
            "--resume continues it",
        ],
    );
    assert!(after() == before, "the finished run was left as it was");
    ok(common::train_one_epoch(&run_dir, &["--resume"]));
    assert!(after() == before, "--resume returns a finished run without training");
    // An unfinished run (killed before its result) is one too.
    std::fs::remove_file(run_dir.join("result.json")).unwrap();
    fails(
        common::train_one_epoch(&run_dir, &[]),
        &["holds an unfinished run (checkpoint.safetensors)"],
    );
    // Its --resume is held to its own training: another recipe given, or metrics that are not
    // the checkpoint's, are refused rather than mixed into one curve.
    fails(
        common::train_one_epoch(&run_dir, &["--resume", "--set", "optim.lr=0.5"]),
        &[
            "--resume: this run has trained with optim.lr = ",
            "the one given sets optim.lr = 0.5",
        ],
    );
    refused_while_edited(
        &run_dir.join("metrics.jsonl"),
        b"",
        || common::train_one_epoch(&run_dir, &["--resume"]),
        &["metrics.jsonl", "records 0 of the 1 epochs the checkpoint has trained"],
    );
    let saved = run_dir.join("recipe.toml");
    let aside = dir.join("recipe.toml");
    std::fs::rename(&saved, &aside).unwrap();
    fails(
        common::train_one_epoch(&run_dir, &["--resume"]),
        &[
            "--resume:",
            "recipe.toml is missing, and the run's checkpoint needs the recipe it trained with",
        ],
    );
    std::fs::rename(&aside, &saved).unwrap();
    // Without recipe.toml, a recipe given is held to the one model.json was built from.
    std::fs::rename(&saved, &aside).unwrap();
    fails(
        common::train_one_epoch(
            &run_dir,
            &["--resume", "--recipe", aside.to_str().unwrap(), "--set", "optim.lr=0.5"],
        ),
        &["recipe.toml", "is not the recipe this model was built from"],
    );
    std::fs::rename(&aside, &saved).unwrap();
    // A lost checkpoint beside two epochs of metrics: --resume would start over unsaid.
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let kept_checkpoint = std::fs::read(&checkpoint).unwrap();
    let metrics = run_dir.join("metrics.jsonl");
    let one = std::fs::read_to_string(&metrics).unwrap();
    let two = format!("{one}{}", one.replace("\"epoch\":1", "\"epoch\":2"));
    std::fs::write(&metrics, &two).unwrap();
    std::fs::remove_file(&checkpoint).unwrap();
    std::fs::remove_file(run_dir.join("result.json")).unwrap();
    fails(
        common::train_one_epoch(&run_dir, &["--resume"]),
        &[
            "checkpoint.safetensors",
            "is missing, but metrics.jsonl records 2 epochs",
        ],
    );
    std::fs::write(&metrics, one).unwrap();
    std::fs::write(&checkpoint, kept_checkpoint).unwrap();
    // A damaged checkpoint says how to start the run again, rather than fail the same way on
    // every retry.
    refused_while_edited(
        &run_dir.join("checkpoint.safetensors"),
        b"not a checkpoint",
        || common::train_one_epoch(&run_dir, &["--resume"]),
        &[
            "checkpoint.safetensors",
            "cannot be resumed: delete checkpoint.safetensors and metrics.jsonl",
        ],
    );
    // A folder with only a recipe (a checklist's trial before it ran) is free to train into.
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(run_dir.join("recipe.toml"), fresh.join("recipe.toml")).unwrap();
    ok(common::train_one_epoch(&fresh, &[]));
    // A run dir that another training holds now (here util-linux `flock`, which takes the lock
    // darkmagic train takes): refused, not mixed; free again once the holder is gone.
    let busy = dir.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    let mut holder = std::process::Command::new("flock");
    holder.arg(&busy).args(["sleep", "120"]);
    let mut holder = std::os::unix::process::CommandExt::process_group(&mut holder, 0)
        .spawn()
        .unwrap();
    let free = || {
        std::process::Command::new("flock")
            .arg("-n")
            .arg(&busy)
            .arg("true")
            .status()
            .unwrap()
            .success()
    };
    while free() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    fails(
        common::train_one_epoch(&busy, &[]),
        &["another darkmagic train is training into this run dir now"],
    );
    // The group: `flock` and the `sleep` that inherited the lock.
    let group = format!("-{}", holder.id());
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    holder.wait().unwrap();
    ok(common::train_one_epoch(&busy, &[]));
}

/// A model libtorch cannot allocate (ResNet-56 at 16x width, about 3.5 GB of weights and
/// optimizer state, under a 4 GB address-space limit): the run is recorded as failed with
/// libtorch's message, its C++ stack frames left out, and what to lower; exit 1, no backtrace
/// (with RUST_BACKTRACE=1 capturing one needed memory there was none of: the process aborted
/// and hung).
#[test]
fn a_model_too_large_for_memory_fails_with_a_clear_error_and_no_hang() {
    let dir = tempdir("out-of-memory");
    let run_dir = dir.join("run");
    let script = format!(
        "ulimit -v 4000000; exec timeout 300 '{}' train --set model.width=16 --set 'model.arch=\"resnet56\"' \
         --set train.epochs=1 --threads 1 --run-dir '{}'",
        env!("CARGO_BIN_EXE_darkmagic"),
        run_dir.display()
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let e = fails(
        o,
        &[
            "libtorch: training: ",
            "can't allocate memory",
            "out of memory: lower train.batch_size",
        ],
    );
    assert!(!e.contains("frame #") && !e.contains("stack backtrace"), "{e}");
    let result = common::read_json(&run_dir.join("result.json"));
    assert_eq!(result["status"], "failed", "{result}");
    assert!(result["error"].as_str().unwrap().contains("out of memory"), "{result}");
}

/// FIFOs and devices where a run dir or checklist keeps its own files: a checkpoint, train.log
/// or the checklist's lock that is a FIFO hung resume and the checklist (even with
/// --break-lock), a /dev/zero checkpoint filled memory. Each is refused at once, by name.
#[test]
fn fifos_in_run_dirs_and_checklists_are_refused_not_waited_on() {
    let dir = tempdir("fifo-records");
    let run_dir = dir.join("run");
    ok(common::train_one_epoch(&run_dir, &[]));
    let within = |args: &[&str]| {
        let o = Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_darkmagic"))
            .args(args)
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(124), "darkmagic {args:?} blocked");
        o
    };
    let mkfifo = |p: &Path| {
        let _ = std::fs::remove_file(p);
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    };
    let rd = run_dir.to_str().unwrap();
    std::fs::remove_file(run_dir.join("result.json")).unwrap();
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let weights = std::fs::read(&checkpoint).unwrap();
    mkfifo(&checkpoint);
    fails(
        within(&["train", "--run-dir", rd, "--resume"]),
        &["checkpoint.safetensors", "not a regular file"],
    );
    std::fs::remove_file(&checkpoint).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &checkpoint).unwrap();
    fails(
        within(&["train", "--run-dir", rd, "--resume"]),
        &["checkpoint.safetensors", "not a regular file"],
    );
    std::fs::remove_file(&checkpoint).unwrap();
    std::fs::write(&checkpoint, weights).unwrap();
    mkfifo(&run_dir.join("train.log"));
    fails(
        within(&["train", "--run-dir", rd, "--resume"]),
        &["train.log", "not a regular file"],
    );
    // A log that links to another file would have the run's log appended to it.
    std::fs::remove_file(run_dir.join("train.log")).unwrap();
    std::fs::write(dir.join("elsewhere.txt"), "kept\n").unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere.txt"), run_dir.join("train.log")).unwrap();
    fails(
        within(&["train", "--run-dir", rd, "--resume"]),
        &["train.log", "is a symbolic link"],
    );
    assert_eq!(std::fs::read_to_string(dir.join("elsewhere.txt")).unwrap(), "kept\n");

    let out = dir.join("checklist");
    std::fs::create_dir_all(&out).unwrap();
    mkfifo(&out.join("checklist.lock"));
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        "[model]\nwidth = 0.25\n[train]\nepochs = 1\n[checklist]\nplan = \"none\"\n",
    )
    .unwrap();
    let args = [
        "checklist",
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    fails(within(&args), &["checklist.lock"]);
    // --break-lock removes it (a plan of no variants then has nothing to compare: refused after).
    let o = within(&[&args[..], &["--break-lock"]].concat());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("checklist.lock"), "{o:?}");
    assert!(!out.join("checklist.lock").exists());
}

/// A checklist of the embedded digits, one epoch of a quarter-width model against one variant
/// (`lr=low`), with the `[checklist]` seed settings `seeds` (TOML lines), run in a new folder
/// `name`: the folder, the recipe and the checklist's directory.
fn tiny_checklist(name: &str, seeds: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tempdir(name);
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[model]\nwidth = 0.25\n[schedule]\nwarmup_epochs = 0.0\n[train]\nepochs = 1\n[checklist]\nplan = \"none\"\n\
             {seeds}[checklist.factors.lr]\nlow = {{ \"optim.lr\" = 0.01 }}\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    ok(common::checklist(&recipe, &out, &[]).output().unwrap());
    (dir, recipe, out)
}

/// Writes `edited` over `path`, expects `command` to fail naming every one of `words`, and
/// puts the file's bytes back.
fn refused_while_edited(path: &Path, edited: &[u8], command: impl Fn() -> Output, words: &[&str]) {
    let kept = std::fs::read(path).unwrap();
    std::fs::write(path, edited).unwrap();
    fails(command(), words);
    std::fs::write(path, kept).unwrap();
}

/// `path`'s text with the first `from` replaced by `to` (which it must hold), as bytes.
fn text_edited(path: &Path, from: &str, to: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text, "{from:?} in {}", path.display());
    edited.into_bytes()
}

/// `path`'s JSON with `edit` applied, as bytes.
fn json_edited(path: &Path, edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    v.to_string().into_bytes()
}

/// The records a checklist reads back are held to each other: a look's design survives the loss
/// of design.json and summary.json (a later round's trial proves it), a deleted arm stays in the
/// report, results are judged only beside baseline.toml, a status or test accuracy the metrics
/// and data contradict is named, unknown fields are refused, and model.json is sealed.
#[test]
fn records_read_back_are_held_to_each_other() {
    // Two rounds of one seed each: the second is planned only after the first look.
    let (dir, recipe, out) = tiny_checklist("records-held", "seeds = 1\nmax_seeds = 2\nround_seeds = 1\n");
    let out_s = out.to_str().unwrap();
    let report = || run(&["report", out_s]);
    let resume = || common::checklist(&recipe, &out, &[]).output().unwrap();
    assert!(out.join("trials/lr=low/seed-1/result.json").exists(), "two rounds ran");

    // design.json and summary.json both gone: seed-1 of a later round proves a look fixed one.
    let aside = dir.join("aside");
    std::fs::create_dir(&aside).unwrap();
    for f in ["design.json", "summary.json"] {
        std::fs::rename(out.join(f), aside.join(f)).unwrap();
    }
    let proof = "trials/baseline/seed-1 belongs to a round planned after a look";
    fails(report(), &["design.json", "is missing", proof]);
    fails(resume(), &["design.json", "is missing", proof]);
    for f in ["design.json", "summary.json"] {
        std::fs::rename(aside.join(f), out.join(f)).unwrap();
    }

    // A whole arm deleted is listed with no seeds, not left out of the report.
    std::fs::rename(out.join("trials/lr=low"), aside.join("lr=low")).unwrap();
    ok(report());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let arms: Vec<(String, usize)> = summary["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                t["seeds"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(arms, [("lr=low".to_string(), 0)]);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| lr=low | 0 |"), "{md}");
    std::fs::rename(aside.join("lr=low"), out.join("trials/lr=low")).unwrap();
    ok(report());

    // Results are judged only beside baseline.toml; the rerun checks the trials and writes it.
    std::fs::rename(out.join("baseline.toml"), aside.join("baseline.toml")).unwrap();
    fails(
        report(),
        &["baseline.toml", "is missing while trials here have results"],
    );
    ok(resume());
    assert!(
        out.join("baseline.toml").is_file(),
        "the rerun wrote baseline.toml again"
    );

    // result.json: a status, test accuracy or field that the run's other records contradict.
    let result = out.join("trials/lr=low/seed-0/result.json");
    let edited = |key: &'static str, value: serde_json::Value| json_edited(&result, move |v| v[key] = value.clone());
    let cases: [(&str, serde_json::Value, &str); 4] = [
        (
            "status",
            "diverged".into(),
            "epochs = 1 in a diverged run whose recipe.toml trains 1",
        ),
        (
            "status",
            "stopped".into(),
            "in a stopped run whose recipe.toml trains 1 with no train.stop_reference to stop against",
        ),
        (
            "test_acc",
            0.5.into(),
            "test_acc = 0.5 in a run with test_images = 0: a run without a test split has no test accuracy",
        ),
        ("note", "x".into(), "unknown field `note`"),
    ];
    for (key, value, words) in cases {
        refused_while_edited(&result, &edited(key, value), report, &["result.json", words]);
    }
    let no_count = json_edited(&result, |v| {
        v.as_object_mut().unwrap().remove("val_images");
    });
    refused_while_edited(
        &result,
        &no_count,
        report,
        &["result.json", "missing field `val_images`"],
    );
    let trial = out.join("trials/lr=low/seed-0/trial.json");
    let arm_note = json_edited(&trial, |v| v["arm"]["note"] = "x".into());
    refused_while_edited(&trial, &arm_note, report, &["trial.json", "unknown field `note`"]);
    // Records made to look older than they are: a field one darkmagic writes with others, gone.
    let no_binding = json_edited(&result, |v| {
        v.as_object_mut().unwrap().remove("recipe_digest");
    });
    refused_while_edited(
        &result,
        &no_binding,
        report,
        &["result.json", "has no recipe_digest while trial.json has settings"],
    );
    let unstamped = json_edited(&trial, |v| {
        v.as_object_mut().unwrap().remove("settings");
    });
    refused_while_edited(
        &trial,
        &unstamped,
        report,
        &["trial.json", "has no settings while result.json has recipe_digest"],
    );
    let test_count = json_edited(&result, |v| v["test_images"] = 5.into());
    refused_while_edited(
        &result,
        &test_count,
        report,
        &["result.json", "test_images = 5 without test_acc"],
    );
    // A count of its own, with an accuracy counted on it: the checklist's trials share one.
    let test_count = json_edited(&result, |v| {
        v["test_images"] = 5.into();
        v["test_acc"] = 0.4.into();
    });
    refused_while_edited(
        &result,
        &test_count,
        report,
        &["result.json", "test_images = 5, where", "counts 0"],
    );
    // A completed run relabelled failed would drop its seed; failed runs record why, and no count.
    let failed = json_edited(&result, |v| v["status"] = "failed".into());
    refused_while_edited(
        &result,
        &failed,
        report,
        &["result.json", "status = failed with no error"],
    );
    // Another count of the same validation images (41/179 = 82/358): the trials share one split.
    let doubled = json_edited(&result, |v| {
        v["val_images"] = (2 * v["val_images"].as_u64().unwrap()).into()
    });
    refused_while_edited(
        &result,
        &doubled,
        report,
        &["result.json", "the checklist's trials share one data set and split"],
    );
    // One seed's result and curve swapped between two arms: each result is bound to its recipe.
    let (base_dir, low_dir) = (out.join("trials/baseline/seed-1"), out.join("trials/lr=low/seed-1"));
    let swap = || {
        for f in ["result.json", "metrics.jsonl"] {
            let (a, b) = (
                std::fs::read(base_dir.join(f)).unwrap(),
                std::fs::read(low_dir.join(f)).unwrap(),
            );
            std::fs::write(base_dir.join(f), b).unwrap();
            std::fs::write(low_dir.join(f), a).unwrap();
        }
    };
    swap();
    fails(report(), &["recipe.toml", "is not the recipe this run trained"]);
    swap();
    // A result deleted: its seed is left out of the verdicts, and the report names it.
    let kept = std::fs::read(&result).unwrap();
    std::fs::remove_file(&result).unwrap();
    ok(report());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("1 trial(s) have no result and are left out of the verdicts: trials/lr=low/seed-0"),
        "{md}"
    );
    std::fs::write(&result, kept).unwrap();
    ok(report());

    // model.json is sealed: an edited mean is refused, with or without its digest.
    let run_dir = out.join("trials/lr=low/seed-0");
    let eval = || run(&["eval", "--run-dir", run_dir.to_str().unwrap()]);
    let spec = run_dir.join("model.json");
    let shifted = |keep_digest: bool| {
        json_edited(&spec, move |v| {
            v["mean"][0] = (v["mean"][0].as_f64().unwrap() + 0.1).into();
            if !keep_digest {
                v.as_object_mut().unwrap().remove("digest");
            }
        })
    };
    refused_while_edited(
        &spec,
        &shifted(true),
        eval,
        &["model.json", "does not match the record's fields"],
    );
    refused_while_edited(
        &spec,
        &shifted(false),
        eval,
        &[
            "model.json",
            "carries no digest, but result.json shows a darkmagic that seals it",
        ],
    );
    // The run's recipe.toml edited after it finished (half the images as validation): refused.
    let recipe_toml = run_dir.join("recipe.toml");
    let halved = text_edited(&recipe_toml, "val_fraction = 0.1\n", "val_fraction = 0.5\n");
    refused_while_edited(
        &recipe_toml,
        &halved,
        eval,
        &["recipe.toml", "is not the recipe this run trained"],
    );
    // The same with result.json gone: model.json holds the recipe the model was built from.
    let result = run_dir.join("result.json");
    let aside_result = dir.join("result.json");
    std::fs::rename(&result, &aside_result).unwrap();
    refused_while_edited(
        &recipe_toml,
        &halved,
        eval,
        &["recipe.toml", "is not the recipe this model was built from"],
    );
    std::fs::rename(&aside_result, &result).unwrap();
    // model.json deleted beside a bound result: the classes would be the data set's as it is now.
    let aside_spec = dir.join("model.json");
    std::fs::rename(&spec, &aside_spec).unwrap();
    fails(eval(), &["model.json", "is missing beside a result.json"]);
    std::fs::rename(&aside_spec, &spec).unwrap();
    // Another split's figures would go over the run's own (which the report links).
    fails(
        run(&[
            "eval",
            "--run-dir",
            run_dir.to_str().unwrap(),
            "--set",
            "data.val_fraction=0.5",
        ]),
        &["--out: needed with --set data.* or seed= on a run dir"],
    );
    // A checkpoint that is not a regular file is named as such, not as missing.
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let aside_ckpt = dir.join("checkpoint.safetensors");
    std::fs::rename(&checkpoint, &aside_ckpt).unwrap();
    std::fs::create_dir(&checkpoint).unwrap();
    fails(eval(), &["checkpoint.safetensors", "not a regular file"]);
    std::fs::remove_dir(&checkpoint).unwrap();
    std::fs::rename(&aside_ckpt, &checkpoint).unwrap();
    // Records from before the seals (result.json unbound, model.json without its digest): the
    // normalisation is held to the data set; one the data set confirms is read as written.
    let unbound = json_edited(&result, |v| {
        v.as_object_mut().unwrap().remove("recipe_digest");
    });
    std::fs::write(&result, unbound).unwrap();
    refused_while_edited(
        &spec,
        &shifted(false),
        eval,
        &[
            "model.json",
            "carries no digest and differs from what the run's data set gives",
        ],
    );
    let unsealed = json_edited(&spec, |v| {
        v.as_object_mut().unwrap().remove("digest");
    });
    std::fs::write(&spec, unsealed).unwrap();
    ok(eval());
}

/// The records that hold a checklist's settings, `baseline.toml` and `design.json`, edited
/// together after the trials ran: each trial's own record of the settings it was started under
/// tells them apart; `--redesign` judges the trials under new settings on purpose.
#[test]
fn settings_edited_in_every_record_that_holds_them_are_told_from_the_trials() {
    let (_dir, recipe, out) = tiny_checklist("settings-stamp", "seeds = 1\nmax_seeds = 1\n");
    let out_s = out.to_str().unwrap();
    let trial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trials/lr=low/seed-0/trial.json")).unwrap()).unwrap();
    let stamp = trial["settings"].as_str().unwrap().to_string();
    // One round: no trial proves a look, so with both records of the design gone, baseline.toml
    // alone holds the settings; edited to alpha 0.2, it is contradicted by the trials.
    for f in ["design.json", "summary.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let baseline_path = out.join("baseline.toml");
    let edited = text_edited(&baseline_path, "alpha = 0.05\n", "alpha = 0.2\n");
    refused_while_edited(
        &baseline_path,
        &edited,
        || run(&["report", out_s]),
        &["trial.json", "was started under other checklist settings", &stamp],
    );
    ok(run(&["report", out_s]));
    // design.json retired by hand, its digest removed: a lock lifted without --redesign.
    ok(common::checklist(&recipe, &out, &[]).output().unwrap());
    let design = out.join("design.json");
    let retired = json_edited(&design, |v| {
        v["retired"] = true.into();
        v.as_object_mut().unwrap().remove("digest");
    });
    refused_while_edited(
        &design,
        &retired,
        || {
            common::checklist(&recipe, &out, &["--set", "checklist.max_seeds=3"])
                .output()
                .unwrap()
        },
        &["design.json", "retired = true without a digest"],
    );
    // --redesign fixes a design under the new settings over the same trials, openly.
    ok(
        common::checklist(&recipe, &out, &["--redesign", "--set", "checklist.alpha=0.2"])
            .output()
            .unwrap(),
    );
    let trial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trials/lr=low/seed-0/trial.json")).unwrap()).unwrap();
    assert_ne!(trial["settings"].as_str().unwrap(), stamp, "restamped by --redesign");
    ok(run(&["report", out_s]));
}

/// A checklist stopped before any trial finished judged nothing: a rerun may change the
/// settings a design is fixed from (the trials it prepared are stamped again when they run).
#[test]
fn settings_may_change_while_no_trial_has_a_result() {
    let (_dir, recipe, out) = tiny_checklist("unjudged", "seeds = 1\nmax_seeds = 1\n");
    for f in ["design.json", "summary.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    for arm in ["baseline", "lr=low"] {
        std::fs::remove_file(out.join(format!("trials/{arm}/seed-0/result.json"))).unwrap();
    }
    ok(common::checklist(&recipe, &out, &["--set", "checklist.alpha=0.2"])
        .output()
        .unwrap());
    let design: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("design.json")).unwrap()).unwrap();
    assert_eq!(design["design"]["alpha"], 0.2);
    ok(run(&["report", out.to_str().unwrap()]));
}

/// Tuning runs are held to their definition by `report` as by a resume, and an arm's seeds to
/// the choice its tuning runs make: a deleted or edited tuning run would show a choice the
/// seeds never trained with.
#[test]
fn tuning_records_are_held_like_the_others() {
    let (dir, recipe, out) = tiny_checklist(
        "tuning-records",
        "seeds = 1\nmax_seeds = 1\n[checklist.tune.fields]\n\"optim.lr\" = [0.5, 2.0]\n",
    );
    let out_s = out.to_str().unwrap();
    let report = || run(&["report", out_s]);
    ok(report());
    let tune = out.join("trials/baseline/tune-0-seed-0");
    let edited = json_edited(&tune.join("trial.json"), |v| {
        let lr = v["tuned"]["optim.lr"].as_f64().unwrap();
        v["tuned"]["optim.lr"] = (lr * 3.0).into();
    });
    refused_while_edited(
        &tune.join("trial.json"),
        &edited,
        report,
        &["tune-0-seed-0/trial.json", "tuning candidate 0 of `baseline` ran"],
    );
    // A tuning run copied to a tuning seed checklist.tune.seeds does not plan.
    let copy = out.join("trials/baseline/tune-0-seed-1");
    ok(Command::new("cp").arg("-r").arg(&tune).arg(&copy).output().unwrap());
    let moved = json_edited(&copy.join("trial.json"), |v| {
        v["seed_index"] = 1.into();
        v["seed"] = (v["seed"].as_u64().unwrap() + 1).into();
        v["dir"] = "trials/baseline/tune-0-seed-1".into();
    });
    std::fs::write(copy.join("trial.json"), moved).unwrap();
    fails(
        report(),
        &[
            "tune-0-seed-1/trial.json",
            "tuning seed index 1, where checklist.tune.seeds plans 1",
        ],
    );
    std::fs::remove_dir_all(&copy).unwrap();
    // Every tuning run of an arm deleted: its seeds ran with a choice nothing here makes.
    let aside = dir.join("aside");
    std::fs::create_dir(&aside).unwrap();
    for k in 0..2 {
        let name = format!("tune-{k}-seed-0");
        std::fs::rename(out.join("trials/lr=low").join(&name), aside.join(&name)).unwrap();
    }
    fails(
        report(),
        &["lr=low/seed-0/trial.json", "but the tuning runs here choose nothing"],
    );
    // Combined trials in a checklist rerun without combining would stay in its report.
    let combined = out.join("trials/combined/seed-1");
    std::fs::create_dir_all(&combined).unwrap();
    let base_trial = std::fs::read_to_string(out.join("trials/baseline/seed-0/trial.json")).unwrap();
    let as_combined = base_trial
        .replace("\"kind\": \"baseline\"", "\"kind\": \"combined\", \"variants\": []")
        .replace("trials/baseline/seed-0", "trials/combined/seed-1")
        .replace("\"seed_index\": 0", "\"seed_index\": 1")
        .replace("\"seed\": 0", "\"seed\": 1");
    std::fs::write(combined.join("trial.json"), as_combined).unwrap();
    fails(
        common::checklist(&recipe, &out, &["--set", "checklist.combine=false"])
            .output()
            .unwrap(),
        &[
            "combined/seed-1",
            "is a trial of the combined recipe, but this run sets checklist.combine = false",
        ],
    );
    std::fs::remove_dir_all(out.join("trials/combined")).unwrap();
    // A folder where the checklist's lock file goes is named, with or without --break-lock.
    let lock = out.join("checklist.lock");
    std::fs::create_dir(&lock).unwrap();
    let rerun = |extra: &[&str]| common::checklist(&recipe, &out, extra).output().unwrap();
    fails(
        rerun(&[]),
        &["checklist.lock", "is a folder, not a lock file darkmagic writes"],
    );
    fails(
        rerun(&["--break-lock"]),
        &[
            "checklist.lock",
            "--break-lock: is a folder, not a lock file darkmagic writes",
        ],
    );
}
