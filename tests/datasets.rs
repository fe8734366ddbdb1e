//! The data sets users hold, written by the libraries that make them: a Kaggle-style CSV
//! manifest as pandas writes it, over PNGs that PIL writes, read by `data inspect` and by a
//! checklist end to end.
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
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[data]\ndataset = \"manifest\"\npath = \"{}\"\nval_fraction = 0.25\n[model]\nwidth = 0.25\n\
             [train]\nepochs = 2\nbatch_size = 8\n[schedule]\nwarmup_epochs = 0.0\ncycles = 1\n\
             [checklist]\nplan = \"none\"\nseeds = 2\nmax_seeds = 2\ncombine = false\n\
             [checklist.factors.label_smoothing]\n\"0\" = {{ \"loss.label_smoothing\" = 0.0 }}\n",
            manifest.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    ok(checklist(&recipe, &out, &["--parallel", "2"]).output().unwrap());
    let s = read_json(&out.join("summary.json"));
    let seeds = s["baseline"]["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2, "{s}");
    assert!(seeds.iter().all(|x| x["status"] == "completed"), "{s}");
    // The fingerprint covers the images the manifest lists: one rewritten, the rerun is refused.
    let record = read_json(&out.join("trials/baseline/seed-0/trial.json"));
    assert_eq!(record["data"]["files"], 49, "the manifest and its 48 images: {record}");
    let image = dir.join("images/dark, no 0.png");
    let light = std::fs::read(dir.join("images/light, no 1.png")).unwrap();
    std::fs::write(&image, light).unwrap();
    let o = checklist(&recipe, &out, &[]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("trained on other data"), "{e}");
}
