//! Manifests: a CSV file (Kaggle's layout, as pandas writes it) or JSON lines of image path and
//! label, one row per image.
//!
//! - The path column is the first of `path`, `image`, `file`, `filename`, `filepath`,
//!   `image_path` (any case); the label column the first of `label`, `class`, `target`,
//!   `category`. A path is taken relative to the manifest's folder (absolute paths as they are).
//! - Labels are names or integers: the classes are the distinct labels, sorted (numerically
//!   when every label is an integer), as `ImageFolder` sorts its folders.
//! - Splits: a `split` column (`train`; `test`, `val`, `valid` or `validation` for the test
//!   split), or a folder holding `train.csv` and `test.csv` or `val.csv` (or `.jsonl`); a
//!   manifest alone is the training split.
//!
//! Every row is checked as it is read: a missing column, an empty label or path, a path that is
//! not a file or an unknown split is an error naming the manifest and the line.
use crate::Dataset;
use crate::folder::{self, Reading};
use darkmagic_base::error::{Error, Result};
use std::path::{Path, PathBuf};

const PATH_COLUMNS: [&str; 6] = ["path", "image", "file", "filename", "filepath", "image_path"];
const LABEL_COLUMNS: [&str; 4] = ["label", "class", "target", "category"];
const TEST_SPLITS: [&str; 4] = ["test", "val", "valid", "validation"];
/// The largest manifest read (ten million rows of short paths fit).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// One image of a manifest.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    path: PathBuf,
    label: String,
    /// From the `split` column: whether the row belongs to the test split.
    test: Option<bool>,
}

/// The manifests at `path`: the file itself, or a folder's `train` and `test`/`val` manifests.
fn manifests(path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    if !path.is_dir() {
        return Ok((path.to_path_buf(), None));
    }
    let find = |stems: &[&str]| {
        stems
            .iter()
            .flat_map(|s| ["csv", "jsonl"].map(|ext| path.join(format!("{s}.{ext}"))))
            .find(|p| p.is_file())
    };
    let train = find(&["train"]).ok_or_else(|| {
        Error::data(
            path,
            "holds no train.csv or train.jsonl (a manifest dataset's training split)",
        )
    })?;
    Ok((train, find(&["test", "val"])))
}

/// Reads a manifest's rows (CSV, or JSON lines for `.jsonl`).
fn read_rows(manifest: &Path) -> Result<Vec<Row>> {
    let bytes = darkmagic_base::files::read_regular(manifest, MAX_MANIFEST_BYTES)?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let records = if manifest.extension().is_some_and(|e| e == "jsonl") {
        json_records(manifest, &bytes)?
    } else {
        csv_records(manifest, &bytes)?
    };
    let mut rows = Vec::with_capacity(records.len());
    for (line, fields) in records {
        let bad = |what: String| Error::data(manifest, format!("line {line}: {what}"));
        let get = |names: &[&str]| {
            fields
                .iter()
                .find(|(k, _)| names.contains(&k.to_lowercase().as_str()))
                .map(|(_, v)| v.trim().to_string())
        };
        let path = get(&PATH_COLUMNS).filter(|p| !p.is_empty()).ok_or_else(|| {
            bad(format!(
                "no image path (a column named one of {})",
                PATH_COLUMNS.join(", ")
            ))
        })?;
        let label = get(&LABEL_COLUMNS)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad(format!("no label (a column named one of {})", LABEL_COLUMNS.join(", "))))?;
        if label.chars().any(char::is_control) {
            // A class name is printed in reports and CSV files, a line each.
            return Err(bad(format!("label {label:?} holds a control character")));
        }
        let test = match get(&["split"]).map(|s| s.to_lowercase()) {
            None => None,
            Some(s) if s == "train" => Some(false),
            Some(s) if TEST_SPLITS.contains(&s.as_str()) => Some(true),
            Some(s) => {
                return Err(bad(format!(
                    "split `{s}`: expected train, or {} for the test split",
                    TEST_SPLITS.join(", ")
                )));
            }
        };
        let path = base.join(&path);
        if !path.is_file() {
            return Err(bad(format!("`{}` is not a file", path.display())));
        }
        rows.push(Row { path, label, test });
    }
    if rows.is_empty() {
        return Err(Error::data(manifest, "lists no images"));
    }
    Ok(rows)
}

/// A manifest's record: its line and its `(column, value)` pairs.
type Record = (u64, Vec<(String, String)>);

/// A CSV file's records, the first row naming the columns.
fn csv_records(manifest: &Path, bytes: &[u8]) -> Result<Vec<Record>> {
    let bad = |e: csv::Error| Error::data(manifest, format!("not a CSV file: {e}"));
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    // A byte-order mark (as Excel writes UTF-8 CSV) is not part of the first column's name.
    let header: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let line = record.position().map_or(0, |p| p.line());
        out.push((
            line,
            header.iter().cloned().zip(record.iter().map(String::from)).collect(),
        ));
    }
    Ok(out)
}

/// A JSON-lines file's records: one object per non-empty line; numbers and strings as text.
fn json_records(manifest: &Path, bytes: &[u8]) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |what: String| Error::data(manifest, format!("line {line_no}: {what}"));
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        let object = value.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
        let fields = object
            .iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                _ => None,
            })
            .collect();
        out.push((line_no, fields));
    }
    Ok(out)
}

/// The classes of `labels`, sorted: numerically when every label is an integer.
fn classes<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = labels.map(String::from).collect();
    names.sort();
    names.dedup();
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().expect("checked"));
    }
    names
}

/// Loads the manifest dataset at `path` (a manifest file or a folder of them).
pub fn load(path: &Path, reading: Reading) -> Result<Dataset> {
    let (train_manifest, test_manifest) = manifests(path)?;
    let mut train = read_rows(&train_manifest)?;
    let mut test = test_manifest.as_deref().map(read_rows).transpose()?;
    if train.iter().any(|r| r.test.is_some()) {
        let (test_rows, train_rows): (Vec<Row>, Vec<Row>) = train.into_iter().partition(|r| r.test == Some(true));
        train = train_rows;
        test.get_or_insert_with(Vec::new).extend(test_rows);
    }
    let names = classes(train.iter().chain(test.iter().flatten()).map(|r| r.label.as_str()));
    let index: std::collections::HashMap<&str, i64> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i as i64)).collect();
    let indexed = |rows: Vec<Row>| -> Vec<(PathBuf, i64)> {
        rows.into_iter().map(|r| (r.path, index[r.label.as_str()])).collect()
    };
    if train.is_empty() {
        return Err(Error::data(
            &train_manifest,
            "lists no training images (every row is split test)",
        ));
    }
    let (train, test) = (indexed(train), test.filter(|t| !t.is_empty()).map(indexed));
    folder::from_files(
        "manifest",
        names,
        folder::sources(train),
        test.map(folder::sources),
        reading,
    )
}

/// Every file a manifest dataset at `path` reads: its manifests and the images they list (for
/// the data fingerprint).
pub fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let (train, test) = manifests(path)?;
    let mut out = vec![train.clone()];
    out.extend(test.clone());
    for m in std::iter::once(train).chain(test) {
        out.extend(read_rows(&m)?.into_iter().map(|r| r.path));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkmagic_base::recipe::{Decode, Interpolation};

    const READING: Reading = Reading {
        image_size: None,
        decode: Decode::AtLoad,
        interp: Interpolation::Bilinear,
    };

    /// A folder with 4x4 gray PNGs `name` of brightness `v`, and a manifest `text` beside them.
    fn folder(name: &str, images: &[(&str, u8)], manifest: (&str, &str)) -> PathBuf {
        let dir = darkmagic_base::testutil::tempdir(name);
        for (file, v) in images {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            ::image::GrayImage::from_pixel(4, 4, ::image::Luma([*v]))
                .save(path)
                .unwrap();
        }
        std::fs::write(dir.join(manifest.0), manifest.1).unwrap();
        dir
    }

    #[test]
    fn csv_rows_give_classes_splits_and_pixels() {
        let images = [("a, b.png", 10), ("img/c.png", 20), ("img/d.png", 30), ("e.png", 40)];
        // Quoted paths with commas, integer labels sorted by value, a split column in any case,
        // a byte-order mark before the header.
        let text =
            "\u{feff}Image,Target,split\n\"a, b.png\",10,train\nimg/c.png,2,TRAIN\nimg/d.png,10,val\ne.png,2,test\n";
        let dir = folder("manifest-csv", &images, ("m.csv", text));
        let d = load(&dir.join("m.csv"), READING).unwrap();
        assert_eq!(d.format, "manifest");
        assert_eq!(d.classes, ["2", "10"]);
        assert_eq!(d.train.labels, [1, 0]);
        let test = d.test.unwrap();
        assert_eq!(test.labels, [1, 0]);
        assert_eq!((d.train.height, d.train.width, d.train.channels), (4, 4, 1));
        let first = |i: &crate::Images| i.image(0)[0];
        assert_eq!((first(&d.train), first(&test)), (10, 30));
        let listed = files(&dir.join("m.csv")).unwrap();
        assert_eq!(listed.len(), 5, "the manifest and its four images: {listed:?}");
    }

    #[test]
    fn json_lines_and_a_folder_of_train_and_test_manifests() {
        let images = [("x.png", 1), ("y.png", 2), ("z.png", 3)];
        let dir = folder(
            "manifest-jsonl",
            &images,
            (
                "train.jsonl",
                "{\"path\": \"x.png\", \"label\": \"shirt\"}\n\n{\"path\": \"y.png\", \"label\": \"coat\", \"extra\": [1]}\n",
            ),
        );
        std::fs::write(dir.join("test.jsonl"), "{\"file\": \"z.png\", \"class\": \"shirt\"}\n").unwrap();
        let d = load(&dir, READING).unwrap();
        assert_eq!(d.classes, ["coat", "shirt"]);
        assert_eq!(d.train.labels, [1, 0]);
        assert_eq!(d.test.unwrap().labels, [1]);
    }

    #[test]
    fn bad_rows_are_named_by_manifest_and_line() {
        let images = [("x.png", 1)];
        let cases = [
            (
                "path,name\nx.png,a\n",
                "line 2: no label (a column named one of label, class, target, category)",
            ),
            ("path,label\nx.png,a\nmissing.png,b\n", "line 3: `"),
            (
                "path,label,split\nx.png,a,holdout\n",
                "line 2: split `holdout`: expected train, or test, val",
            ),
            ("path,label\nx.png,\n", "line 2: no label"),
            ("path,label\n", "lists no images"),
            ("path,label\nx.png,a,extra\n", "not a CSV file"),
            (
                "path,label\nx.png,\"two\nlines\"\n",
                r#"line 2: label "two\nlines" holds a control character"#,
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let dir = folder(&format!("manifest-bad-{i}"), &images, ("m.csv", text));
            let e = load(&dir.join("m.csv"), READING).unwrap_err().to_string();
            assert!(e.contains("m.csv") && e.contains(want), "{text:?}: {e}");
        }
        let dir = folder(
            "manifest-bad-json",
            &images,
            ("m.jsonl", "{\"path\": \"x.png\", \"label\": 1}\n[1]\n"),
        );
        let e = load(&dir.join("m.jsonl"), READING).unwrap_err().to_string();
        assert!(e.contains("m.jsonl: line 2: not a JSON object"), "{e}");
        let e = load(&darkmagic_base::testutil::tempdir("manifest-empty-dir"), READING)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no train.csv or train.jsonl"), "{e}");
    }
}
