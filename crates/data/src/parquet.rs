//! Hugging Face datasets as parquet files: the layout `datasets` writes (`to_parquet`,
//! `push_to_hub`): an image column of structs `{bytes, path}` and an integer `ClassLabel` column,
//! the class names in the file's `huggingface` metadata (`info.features`).
//!
//! - `data.path`: one `.parquet` file (the training split), or a folder searched at any depth
//!   for `.parquet` files: those whose file name or folder starts with `train` are the training
//!   split, `test`, `validation`, `valid` or `val` the test split (`data/train-00000-of-00002.parquet`,
//!   `plain_text/test/0000.parquet`); a file that is neither is an error.
//! - Columns: the image is the feature of `_type` `Image` (else a column named `image` or `img`),
//!   the label the `ClassLabel` feature (else `label`, `labels`, `fine_label`, `class`, `target`),
//!   an integer or a class name ([`crate::labels`]).
//! - An image row holds its encoded bytes; where they are null, its `path` is read as a file
//!   relative to the parquet file. A row with neither, or without a label, is an error naming
//!   the file and the row.
//!
//! The encoded images are held in memory (parquet pages are compressed together, so a row
//! cannot be reached alone); `data.decode = "at_load"` decodes them once, `"per_batch"` keeps
//! them encoded. The data fingerprint covers the parquet files and the image files rows name.
use crate::Dataset;
use crate::folder::{self, Reading};
use crate::labels::{self, Label};
use crate::source::Source;
use darkmagic_base::error::{Error, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TRAIN_PREFIXES: [&str; 1] = ["train"];
const TEST_PREFIXES: [&str; 4] = ["test", "validation", "valid", "val"];
const IMAGE_COLUMNS: [&str; 2] = ["image", "img"];
const LABEL_COLUMNS: [&str; 5] = ["label", "labels", "fine_label", "class", "target"];

/// The training and test parquet files at `path`, each sorted by path.
pub fn files(path: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if !path.exists() {
        return Err(Error::data(path, "no such parquet file or folder"));
    }
    if !path.is_dir() {
        darkmagic_base::files::check_regular(path, u64::MAX)?;
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    let mut found = Vec::new();
    darkmagic_base::files::walk_files(path, |p, meta| {
        if p.extension().is_some_and(|e| e == "parquet") {
            // One that cannot be read is an error, not a file left out (a FIFO would block).
            if !meta.is_file() {
                return Err(Error::data(p, "not a regular file (a FIFO, device or socket)"));
            }
            found.push(p.to_path_buf());
        }
        Ok(())
    })?;
    found.sort();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for f in found {
        match split_of(path, &f) {
            Some(true) => test.push(f),
            Some(false) => train.push(f),
            None => {
                return Err(Error::data(
                    &f,
                    "is not in a split: expected its file or folder name to start with train, test, validation or val",
                ));
            }
        }
    }
    if train.is_empty() {
        return Err(Error::data(
            path,
            "holds no training parquet file (expected train-*.parquet, or a train/ folder, at any depth)",
        ));
    }
    Ok((train, test))
}

/// Every file the parquet data set at `path` reads, for the data fingerprint: its parquet files
/// and the image files its rows name by path (where their bytes are null).
pub fn fingerprint_files(path: &Path) -> Result<Vec<PathBuf>> {
    let (train, test) = files(path)?;
    let mut out = [train, test].concat();
    let (mut rows, mut names) = (Vec::new(), None);
    for f in out.clone() {
        read_file(&f, &mut rows, &mut names)?;
    }
    out.extend(rows.into_iter().filter_map(|(source, _, _)| match source {
        Source::File(p) => Some(p),
        _ => None,
    }));
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether `file` under `root` is in the test split (Some(true)) or the training split, from
/// its file name or else the nearest folder name that says.
fn split_of(root: &Path, file: &Path) -> Option<bool> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let starts = |name: &str, prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    rel.iter().rev().find_map(|c| {
        let name = c.to_string_lossy().to_lowercase();
        if starts(&name, &TRAIN_PREFIXES) {
            Some(false)
        } else if starts(&name, &TEST_PREFIXES) {
            Some(true)
        } else {
            None
        }
    })
}

/// Loads the parquet dataset at `path`.
pub fn load(path: &Path, reading: Reading) -> Result<Dataset> {
    let (train, test) = files(path)?;
    let mut rows = Vec::new();
    let mut names: Option<Vec<String>> = None;
    for f in &train {
        read_file(f, &mut rows, &mut names)?;
    }
    let n_train = rows.len();
    for f in &test {
        read_file(f, &mut rows, &mut names)?;
    }
    let labels: Vec<Label> = rows.iter().map(|r| r.1.clone()).collect();
    let (classes, index) = labels::resolve(&labels, names.as_deref(), |i| rows[i].2.clone())?;
    labels::check_test_classes(&index[..n_train], &index[n_train..], |i| rows[n_train + i].2.clone())?;
    let mut all: Vec<(Source, i64)> = rows.into_iter().map(|r| r.0).zip(index).collect();
    let test_rows = all.split_off(n_train);
    if all.is_empty() {
        return Err(Error::data(&train[0], "holds no rows"));
    }
    folder::from_files(
        "parquet",
        classes,
        all,
        (!test.is_empty()).then_some(test_rows),
        reading,
    )
}

/// The columns of one file: the image's and the label's names, and the class names its
/// metadata declares.
struct Columns {
    image: String,
    label: String,
    names: Option<Vec<String>>,
}

/// Appends the rows of parquet file `f` (image, label, the row's name) to `rows`; checks that
/// its class names agree with those of the files before it.
fn read_file(f: &Path, rows: &mut Vec<(Source, Label, PathBuf)>, names: &mut Option<Vec<String>>) -> Result<()> {
    // The parquet reader panics on some corrupt pages rather than returning an error.
    darkmagic_base::error::contain(|| read_rows(f, rows, names))
        .map_err(|m| Error::data(f, format!("cannot read it as parquet: the file is corrupt ({m})")))?
}

/// [`read_file`] itself.
fn read_rows(f: &Path, rows: &mut Vec<(Source, Label, PathBuf)>, names: &mut Option<Vec<String>>) -> Result<()> {
    let bad = |e: parquet::errors::ParquetError| {
        let e = e.to_string();
        let hint = match e.split_once("Disabled feature at compile time: ") {
            Some((_, codec)) => format!(
                "compressed with {codec}, which darkmagic does not read (it reads snappy, gzip, lz4 or none): rewrite it, \
                 e.g. pyarrow's `pq.write_table(pq.read_table(f), f, compression=\"snappy\")`"
            ),
            None => e,
        };
        Error::data(f, format!("cannot read it as parquet: {hint}"))
    };
    let file = std::fs::File::open(f).map_err(|e| Error::io(f, e))?;
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let columns = columns(f, &reader)?;
    if let Some(declared) = &columns.names {
        match names {
            Some(n) if n != declared => {
                return Err(Error::data(
                    f,
                    format!("declares the classes {declared:?}, but the files before it {n:?}"),
                ));
            }
            _ => *names = Some(declared.clone()),
        }
    }
    let base = f.parent().unwrap_or(Path::new("."));
    for (i, row) in reader.get_row_iter(None).map_err(bad)?.enumerate() {
        let row = row.map_err(bad)?;
        let name = row_name(f, i);
        let field = |col: &str| row.get_column_iter().find(|(n, _)| *n == col).map(|(_, v)| v);
        let image = image(field(&columns.image), base, &name)?;
        let label = label(field(&columns.label), &name)?;
        rows.push((image, label, name));
    }
    Ok(())
}

/// `file.parquet:row N`, how messages name a row.
fn row_name(f: &Path, i: usize) -> PathBuf {
    let mut s = f.as_os_str().to_os_string();
    s.push(format!(":row {i}"));
    PathBuf::from(s)
}

/// The image and label columns of a file: from the `huggingface` metadata's features when the
/// file has them, else by name.
fn columns(f: &Path, reader: &SerializedFileReader<std::fs::File>) -> Result<Columns> {
    let meta = reader.metadata().file_metadata();
    let features = meta
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "huggingface"))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .and_then(|v| v["info"]["features"].as_object().cloned())
        .unwrap_or_default();
    let typed = |t: &str| {
        features
            .iter()
            .find(|(_, v)| v["_type"] == t)
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    let fields: Vec<String> = meta
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let by_name = |candidates: &[&str]| {
        candidates
            .iter()
            .find(|c| fields.iter().any(|f| f == *c))
            .map(|c| c.to_string())
    };
    let image = typed("Image")
        .map(|(k, _)| k)
        .or_else(|| by_name(&IMAGE_COLUMNS))
        .ok_or_else(|| {
            Error::data(
                f,
                format!(
                    "has no image column (an `Image` feature, or a column named image or img); its columns: {fields:?}"
                ),
            )
        })?;
    let class_label = typed("ClassLabel");
    let names: Option<Vec<String>> = class_label.as_ref().and_then(|(_, v)| {
        v["names"]
            .as_array()
            .map(|a| a.iter().map(|n| n.as_str().unwrap_or_default().to_string()).collect())
    });
    let label = class_label.map(|(k, _)| k).or_else(|| by_name(&LABEL_COLUMNS)).ok_or_else(|| {
        Error::data(f, format!("has no label column (a `ClassLabel` feature, or a column named label, labels, fine_label, class or target); its columns: {fields:?}"))
    })?;
    if let Some(names) = &names {
        // Class names are printed in reports and CSV files, a line each, and name classes apart.
        let mut seen = std::collections::HashSet::new();
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.chars().any(char::is_control) || !seen.insert(*n))
        {
            return Err(Error::data(
                f,
                format!(
                    "ClassLabel name {bad:?} is empty, holds a control character or is named twice; expected distinct names"
                ),
            ));
        }
    }
    Ok(Columns { image, label, names })
}

/// A row's image: its bytes, else its path beside the parquet file.
fn image(field: Option<&Field>, base: &Path, name: &Path) -> Result<Source> {
    let missing = || Error::data(name, "has no image bytes and no image path");
    match field {
        Some(Field::Bytes(b)) => Ok(bytes_source(b.data(), name)),
        Some(Field::Group(g)) => {
            let get = |key: &str| g.get_column_iter().find(|(n, _)| *n == key).map(|(_, v)| v);
            match (get("bytes"), get("path")) {
                (Some(Field::Bytes(b)), _) => Ok(bytes_source(b.data(), name)),
                (_, Some(Field::Str(p))) if !p.is_empty() => {
                    let rel = Path::new(p);
                    if rel.is_absolute() || rel.components().any(|c| c == std::path::Component::ParentDir) {
                        return Err(Error::data(
                            name,
                            format!(
                                "image bytes are null and its path {p:?} leads out of the parquet file's folder; \
                                 expected a path below it"
                            ),
                        ));
                    }
                    let file = base.join(p);
                    if file.is_file() {
                        Ok(Source::File(file))
                    } else {
                        Err(Error::data(
                            name,
                            format!("image bytes are null and its path {p:?} is not a file beside the parquet file"),
                        ))
                    }
                }
                _ => Err(missing()),
            }
        }
        _ => Err(missing()),
    }
}

fn bytes_source(bytes: &[u8], name: &Path) -> Source {
    Source::Bytes {
        name: name.to_path_buf(),
        bytes: Arc::from(bytes),
    }
}

/// A row's label: an integer class index or a class name.
fn label(field: Option<&Field>, name: &Path) -> Result<Label> {
    Ok(match field {
        Some(Field::Long(v)) => Label::Index(*v),
        Some(Field::Int(v)) => Label::Index(*v as i64),
        Some(Field::Short(v)) => Label::Index(*v as i64),
        Some(Field::Byte(v)) => Label::Index(*v as i64),
        Some(Field::UByte(v)) => Label::Index(*v as i64),
        Some(Field::UShort(v)) => Label::Index(*v as i64),
        Some(Field::UInt(v)) => Label::Index(*v as i64),
        Some(Field::Str(s)) => Label::Name(s.clone()),
        other => {
            let got = other.map_or("nothing".to_string(), |f| f.to_string());
            return Err(Error::data(
                name,
                format!("label is {got}; expected a class index or a class name"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_split_by_their_name_or_folder() {
        let root = Path::new("/d");
        assert_eq!(
            split_of(root, Path::new("/d/data/train-00000-of-00002.parquet")),
            Some(false)
        );
        assert_eq!(
            split_of(root, Path::new("/d/data/validation-00000-of-00001.parquet")),
            Some(true)
        );
        assert_eq!(split_of(root, Path::new("/d/plain_text/test/0000.parquet")), Some(true));
        assert_eq!(split_of(root, Path::new("/d/plain_text/0000.parquet")), None);
    }
}
