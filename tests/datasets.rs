//! The data sets users hold, written by the libraries that make them: a Kaggle-style CSV
//! manifest as pandas writes it, over PNGs that PIL writes, Hugging Face parquet files as
//! `datasets` writes them and WebDataset shards as `webdataset.ShardWriter` writes them
//! (scripts/dataset_formats.py), each read by `data inspect` and by a checklist end to end; and
//! those files made hostile (truncated, out-of-range labels, escaping member names), refused.
mod common;
use common::{checklist, ok, read_json, tempdir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's virtualenv Python (scripts/setup.sh installs pandas with its packages).
fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// 48 PIL-written 12x12 RGB PNGs in `dir/images/` (two classes: dark and light noise) and
/// `dir/labels.csv` from a pandas DataFrame: columns `image_path`, `label` (a name) and `split`
/// (`train` for 40, `test` for 8), with a path holding a comma and a space.
fn pandas_manifest(dir: &Path) -> PathBuf {
    let script = r#"
import sys, numpy as np, pandas as pd
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
rows = []
for i in range(48):
    label = ["dark", "light"][i % 2]
    base = 40 if label == "dark" else 200
    px = np.clip(base + rng.integers(-30, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
    name = f"images/{label}, no {i}.png"
    Image.fromarray(px).save(f"{root}/{name}")
    rows.append({"image_path": name, "label": label, "split": "test" if i >= 40 else "train"})
pd.DataFrame(rows).to_csv(f"{root}/labels.csv", index=False)
"#;
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let o = Command::new(python()).arg("-c").arg(script).arg(dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("labels.csv")
}

#[test]
fn a_pandas_csv_manifest_is_inspected_and_runs_a_checklist() {
    let dir = tempdir("pandas-manifest");
    let manifest = pandas_manifest(&dir);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.starts_with("image_path,label,split\n\"images/dark, no 0.png\",dark,train\n"),
        "{text}"
    );
    let inspect = ok(common::run(&["data", "inspect", manifest.to_str().unwrap()]));
    assert!(
        inspect.contains("format:   manifest") && inspect.contains("12x12") && inspect.contains("light"),
        "{inspect}"
    );
    let out = checklist_end_to_end(&dir, "manifest", &manifest, "", 49);
    // The fingerprint covers the images the manifest lists: one rewritten, the rerun is refused.
    let light = std::fs::read(dir.join("images/light, no 1.png")).unwrap();
    std::fs::write(dir.join("images/dark, no 0.png"), light).unwrap();
    refused_as_other_data(&dir.join("r.toml"), &out);
}

/// Runs a two-seed checklist (one factor) on the `dataset` at `path`, with `data_extra` lines in
/// `[data]`, checks that every trial completed and that each trial's fingerprint counts
/// `files`; returns the checklist's folder (its recipe is `dir/r.toml`).
fn checklist_end_to_end(dir: &Path, dataset: &str, path: &Path, data_extra: &str, files: u64) -> PathBuf {
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[data]\ndataset = \"{dataset}\"\npath = \"{}\"\nval_fraction = 0.25\n{data_extra}[model]\nwidth = 0.25\n\
             [train]\nepochs = 2\nbatch_size = 8\n[schedule]\nwarmup_epochs = 0.0\ncycles = 1\n\
             [checklist]\nplan = \"none\"\nseeds = 2\nmax_seeds = 2\ncombine = false\n\
             [checklist.factors.label_smoothing]\n\"0\" = {{ \"loss.label_smoothing\" = 0.0 }}\n",
            path.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    ok(checklist(&recipe, &out, &["--parallel", "2"]).output().unwrap());
    let s = read_json(&out.join("summary.json"));
    let seeds = s["baseline"]["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2, "{s}");
    assert!(seeds.iter().all(|x| x["status"] == "completed"), "{s}");
    let record = read_json(&out.join("trials/baseline/seed-0/trial.json"));
    assert_eq!(record["data"]["files"], files, "{record}");
    out
}

/// Asserts that rerunning the checklist `out` of `recipe` is refused because the data changed.
fn refused_as_other_data(recipe: &Path, out: &Path) {
    let o = checklist(recipe, out, &[]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("trained on other data"), "{e}");
}

/// The 48 noise images of scripts/dataset_formats.py in every format, under `dir`.
fn formats(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dataset_formats.py");
    let o = Command::new(python()).arg(script).arg(dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn hugging_face_parquet_files_are_inspected_and_run_a_checklist() {
    let dir = tempdir("hf-parquet");
    formats(&dir);
    let parquet = dir.join("parquet");
    let inspect = ok(common::run(&["data", "inspect", parquet.to_str().unwrap()]));
    for line in [
        "format:   parquet",
        "12x12 pixels, 3 channel(s)",
        "train:    40 images",
        "test:     8 images",
    ] {
        assert!(inspect.contains(line), "{line}: {inspect}");
    }
    // The class names come from the ClassLabel feature in the files' metadata.
    assert!(inspect.contains("0  dark") && inspect.contains("1  light"), "{inspect}");
    let out = checklist_end_to_end(&dir, "parquet", &parquet, "", 2);
    // A training file rewritten (the same rows, one label flipped): the rerun is refused.
    rewrite(
        &dir.join("parquet/data/train-00000-of-00001.parquet"),
        "t = t.set_column(1, 'label', pa.array([1 - v for v in t.column('label').to_pylist()], pa.int64()))",
    );
    refused_as_other_data(&dir.join("r.toml"), &out);
}

#[test]
fn webdataset_shards_are_inspected_and_run_a_checklist_decoding_per_batch() {
    let dir = tempdir("webdataset");
    formats(&dir);
    let shards = dir.join("webdataset");
    let inspect = ok(common::run(&["data", "inspect", shards.to_str().unwrap()]));
    for line in [
        "format:   WebDataset",
        "12x12 pixels, 3 channel(s)",
        "train:    40 images",
        "test:     8 images",
    ] {
        assert!(inspect.contains(line), "{line}: {inspect}");
    }
    // A brace pattern names the training shards alone.
    let pattern = dir.join("webdataset/train-{000000..000002}.tar");
    let inspect = ok(common::run(&["data", "inspect", pattern.to_str().unwrap()]));
    assert!(
        inspect.contains("train:    40 images") && !inspect.contains("test:"),
        "{inspect}"
    );
    let out = checklist_end_to_end(
        &dir,
        "webdataset",
        &shards,
        "image_size = 12\ndecode = \"per_batch\"\n",
        4,
    );
    // One sample's class flipped in place (the same size, the same modification time): refused.
    let shard = dir.join("webdataset/train-000001.tar");
    let mut bytes = std::fs::read(&shard).unwrap();
    let at = find_member(&bytes, "000016.cls");
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let modified = std::fs::metadata(&shard).unwrap().modified().unwrap();
    std::fs::write(&shard, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    refused_as_other_data(&dir.join("r.toml"), &out);
}

/// The offset of the data of the tar member `name` in `tar` (the block after its header).
fn find_member(tar: &[u8], name: &str) -> usize {
    let header = tar
        .chunks(512)
        .position(|h| h.starts_with(name.as_bytes()))
        .expect("member");
    (header + 1) * 512
}

/// Rewrites the parquet file `path` with pyarrow: `edit` is Python that changes the table `t`;
/// the file's schema metadata (Hugging Face's features) is kept.
fn rewrite(path: &Path, edit: &str) {
    let script = format!(
        "import sys, pyarrow as pa, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\nmeta = t.schema.metadata\n{edit}\n\
         pq.write_table(t.replace_schema_metadata(meta), sys.argv[1])\n"
    );
    let o = Command::new(python()).arg("-c").arg(script).arg(path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn hostile_parquet_files_and_shards_are_refused_naming_the_file_and_row_or_member() {
    let dir = tempdir("hostile-formats");
    formats(&dir);
    let train_parquet = dir.join("parquet/data/train-00000-of-00001.parquet");
    let parquet = std::fs::read(&train_parquet).unwrap();
    let shard = dir.join("webdataset/train-000000.tar");
    let tar = std::fs::read(&shard).unwrap();
    let inspect = |path: &Path| {
        let o = common::run(&["data", "inspect", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let restore = || {
        std::fs::write(&train_parquet, &parquet).unwrap();
        std::fs::write(&shard, &tar).unwrap();
    };
    // Parquet: truncated.
    std::fs::write(&train_parquet, &parquet[..parquet.len() / 2]).unwrap();
    let e = inspect(&dir.join("parquet"));
    assert!(
        e.contains("train-00000-of-00001.parquet") && e.contains("cannot read it as parquet"),
        "{e}"
    );
    restore();
    // Each parquet file rewritten by pyarrow (Python that edits the table `t` or its `meta`), and
    // what the refusal must say: a label beyond the ClassLabel names; a row with no image; zstd;
    // ClassLabel names twice the same (the classes could not be told apart in the report).
    let edits: [(&str, &[&str]); 4] = [
        (
            "t = t.set_column(1, 'label', pa.array([5] + t.column('label').to_pylist()[1:], pa.int64()))",
            &["parquet:row 0", "label 5; expected 0 to 1 (the 2 class names"],
        ),
        (
            "im = t.column('image').to_pylist()\nim[3] = None\nt = t.set_column(0, 'image', pa.array(im, t.schema.field('image').type))",
            &["parquet:row 3", "no image bytes and no image path"],
        ),
        (
            "pq.write_table(t, sys.argv[1] + '.zstd', compression='zstd')\nimport os; os.replace(sys.argv[1] + '.zstd', sys.argv[1])\nsys.exit(0)",
            &[
                "compressed with zstd, which darkmagic does not read",
                "compression=\"snappy\"",
            ],
        ),
        (
            "import json\nh = json.loads(meta[b'huggingface'])\nh['info']['features']['label']['names'] = ['dark', 'dark']\n\
             meta = {**meta, b'huggingface': json.dumps(h).encode()}",
            &["ClassLabel name \"dark\"", "named twice"],
        ),
    ];
    for (edit, needles) in edits {
        rewrite(&train_parquet, edit);
        let e = inspect(&dir.join("parquet"));
        assert!(needles.iter().all(|n| e.contains(n)), "{needles:?}: {e}");
        restore();
    }
    // Files that cannot be read among the data: refused by name, never left out (a FIFO hung).
    let fifo = |path: &Path| assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
    let extra = dir.join("parquet/data/train-00001-of-00001.parquet");
    fifo(&extra);
    let e = inspect(&dir.join("parquet"));
    assert!(
        e.contains("train-00001-of-00001.parquet") && e.contains("not a regular file"),
        "{e}"
    );
    std::fs::remove_file(&extra).unwrap();
    for (name, expected) in [
        ("train-000007.tar", "not a regular file"),
        ("train-000008.tar.gz", "compressed shard"),
    ] {
        let bad = dir.join("webdataset").join(name);
        if name.ends_with(".gz") {
            std::fs::write(&bad, [0x1f, 0x8b, 8, 0]).unwrap();
        } else {
            fifo(&bad);
        }
        let e = inspect(&dir.join("webdataset"));
        assert!(e.contains(name) && e.contains(expected), "{name}: {e}");
        std::fs::remove_file(&bad).unwrap();
    }
    // Named directly: a missing path, and a compressed shard, are said to be what they are.
    let e = inspect(&dir.join("nothing-here"));
    assert!(e.contains("nothing-here: no such file or folder"), "{e}");
    let gz = dir.join("shard.tar.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
    let e = inspect(&gz);
    assert!(e.contains("shard.tar.gz") && e.contains("compressed archive"), "{e}");
    // A shard named twice, or a sample key in two shards, would count samples twice.
    let twice = dir.join("webdataset/train-{000000,000000,000001}.tar");
    let e = inspect(&twice);
    assert!(e.contains("train-000000.tar") && e.contains("is named twice"), "{e}");
    let copy = dir.join("webdataset/train-000005.tar");
    std::fs::copy(dir.join("webdataset/train-000000.tar"), &copy).unwrap();
    let e = inspect(&dir.join("webdataset"));
    assert!(
        e.contains("train-000005.tar:000000") && e.contains("sample key also in"),
        "{e}"
    );
    std::fs::remove_file(&copy).unwrap();
    // WebDataset: a truncated shard; members that escape; a sample without a label; a bad class.
    // Cut inside a member, and at a header (no end-of-archive block: samples 10 on are lost).
    for cut in [tar.len() / 2 + 100, find_member(&tar, "000010.cls") - 512] {
        std::fs::write(&shard, &tar[..cut]).unwrap();
        let e = inspect(&dir.join("webdataset"));
        assert!(
            e.contains("train-000000.tar") && e.contains("truncated"),
            "cut at {cut}: {e}"
        );
    }
    restore();
    let png = format!(
        "open('{}', 'rb').read()",
        dir.join("folder/train/dark/000000.png").display()
    );
    let cases = [
        (
            format!("[('../evil.png', {png}), ('../evil.cls', b'0')]"),
            "without `..`",
        ),
        (format!("[('/abs/evil.png', {png})]"), "without `..`"),
        (format!("[('nolabel.png', {png})]"), "nolabel: sample has no label"),
        (
            format!("[('bad.png', {png}), ('bad.cls', b'x')]"),
            "holds \"x\"; expected a class index",
        ),
        (
            "[('bad.png', b'not a png'), ('bad.cls', b'0')]".to_string(),
            "bad.png: cannot decode image",
        ),
    ];
    for (members, expected) in cases {
        // Python's tarfile (which webdataset's TarWriter wraps) writes the members as named.
        let script = format!(
            "import io, sys, tarfile\nt = tarfile.open(sys.argv[1], 'w')\nfor name, d in {members}:\n\
             \x20   i = tarfile.TarInfo(name)\n    i.size = len(d)\n    t.addfile(i, io.BytesIO(d))\nt.close()\n"
        );
        let evil = dir.join("webdataset/train-000009.tar");
        let o = Command::new(python())
            .arg("-c")
            .arg(&script)
            .arg(&evil)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let e = inspect(&dir.join("webdataset"));
        assert!(e.contains("train-000009.tar") && e.contains(expected), "{members}: {e}");
        std::fs::remove_file(&evil).unwrap();
    }
}

#[test]
fn parquet_rows_that_name_their_images_by_path_read_them_and_fingerprint_them() {
    // `datasets` writes an Image column of paths (bytes null) when the images are not embedded:
    // the files below the parquet file's folder are the images, and a rewrite of one is a change
    // of data; a path that leads out of that folder is refused.
    let dir = tempdir("parquet-paths");
    formats(&dir);
    let script = r#"
import sys, glob, os, shutil
from datasets import ClassLabel, Dataset, Features, Image
root = sys.argv[1]
paths = sorted(glob.glob(f"{root}/folder/train/*/*.png"))
labels = [0 if "/dark/" in p else 1 for p in paths]
os.makedirs(f"{root}/byname/img", exist_ok=True)
rel = []
for p, l in zip(paths, labels):
    rel.append(f"img/{['dark', 'light'][l]}-{os.path.basename(p)}")
    shutil.copy(p, f"{root}/byname/{rel[-1]}")
ds = Dataset.from_dict({"image": [{"bytes": None, "path": r} for r in rel], "label": labels},
                       features=Features({"image": Image(decode=False), "label": ClassLabel(names=["dark", "light"])}))
os.chdir(f"{root}/byname")  # where the relative paths lead from
ds.to_parquet("train.parquet")
"#;
    let o = Command::new(python()).arg("-c").arg(script).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let parquet = dir.join("byname/train.parquet");
    let inspect = ok(common::run(&["data", "inspect", parquet.to_str().unwrap()]));
    assert!(
        inspect.contains("train:    40 images") && inspect.contains("0  dark"),
        "{inspect}"
    );
    let cfg = darkmagic::recipe::DataConfig {
        dataset: darkmagic::recipe::DatasetKind::Parquet,
        path: Some(parquet.clone()),
        ..Default::default()
    };
    let before = darkmagic::data::fingerprint::of(&cfg, None).unwrap().unwrap();
    assert_eq!(before.files, 41, "the parquet file and its 40 images");
    let light = std::fs::read(dir.join("byname/img/light-000001.png")).unwrap();
    std::fs::write(dir.join("byname/img/dark-000000.png"), light).unwrap();
    let after = darkmagic::data::fingerprint::of(&cfg, None).unwrap().unwrap();
    assert!(!before.same_data(&after), "an image rewritten is other data");
    let escape = "import sys, pyarrow as pa, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\n\
                  im = t.column('image').to_pylist()\nim[0] = {'bytes': None, 'path': '../../etc/passwd'}\n\
                  t = t.set_column(0, 'image', pa.array(im, t.schema.field('image').type))\n\
                  pq.write_table(t.replace_schema_metadata(t.schema.metadata), sys.argv[1])\n";
    let o = Command::new(python())
        .arg("-c")
        .arg(escape)
        .arg(&parquet)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::run(&["data", "inspect", parquet.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("train.parquet:row 0") && e.contains("leads out of the parquet file's folder"),
        "{e}"
    );
}
