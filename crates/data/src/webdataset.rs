//! WebDataset shards: plain tar files in which each sample is the members sharing a key (the
//! member name up to the first dot of its file name, as webdataset's `base_plus_ext`), e.g.
//! `000017.png` and `000017.cls`.
//!
//! - `data.path`: one shard, a folder of `.tar` shards, or a brace pattern
//!   (`shards/train-{000000..000009}.tar`, `{a,b}`; webdataset's `braceexpand`). Shards whose
//!   file name starts with `test`, `val`, `valid` or `validation` are the test split, the rest
//!   the training split, in name order.
//! - The image: the sample's `.jpg`, `.jpeg` or `.png` member (the first of them, as timm's
//!   `image_key = "jpg;png"`); the label: its `.cls` member (an integer as text), else its
//!   `.json` member's `label`, `cls` or `class` field (an integer or a class name), see
//!   [`crate::labels`].
//! - Shards are listed in place (`crate::tar`) and images read by offset: memory holds the
//!   index, not the shards, and the training shuffle, the loader's workers and a checklist's
//!   parallel trials reach any sample directly (no shuffle buffer to tune, the same order as
//!   every other format for the same seed). With `data.decode = "per_batch"` images are decoded
//!   as batches need them.
//!
//! A sample without an image or a label, a member without an extension, a key twice in a shard
//! and every refusal of `crate::tar` are errors naming the shard and the member: nothing is
//! skipped.
use crate::Dataset;
use crate::folder::{self, Reading};
use crate::labels::{self, Label};
use crate::source::Source;
use crate::tar;
use darkmagic_base::error::{Error, Result};
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
const TEST_PREFIXES: [&str; 4] = ["test", "val", "valid", "validation"];
const JSON_LABEL_FIELDS: [&str; 3] = ["label", "cls", "class"];
/// The largest `.cls` or `.json` member read as a label.
const MAX_LABEL_BYTES: u64 = 1 << 20;
/// The most shards a brace pattern may expand to.
const MAX_SHARDS: usize = 1 << 20;

/// The training and test shards at `path`, each in name order.
pub fn shards(path: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let text = path.to_str().unwrap_or_default();
    let all: Vec<PathBuf> = if text.contains('{') {
        let expanded = expand(text).map_err(|e| Error::data(path, e))?;
        let files: Vec<PathBuf> = expanded.into_iter().map(PathBuf::from).collect();
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            return Err(Error::data(
                missing,
                "no such shard (from the brace pattern in data.path)",
            ));
        }
        for f in &files {
            darkmagic_base::files::check_regular(f, u64::MAX)?;
        }
        files
    } else if path.is_dir() {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let p = entry.map_err(|e| Error::io(path, e))?.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            if [".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"]
                .iter()
                .any(|e| name.ends_with(e))
            {
                return Err(Error::data(
                    &p,
                    "is a compressed shard; expected plain .tar shards (decompress them, e.g. `gunzip`)",
                ));
            }
            if name.ends_with(".tar") {
                // A shard that cannot be read is an error, not a shard left out.
                darkmagic_base::files::check_regular(&p, u64::MAX)?;
                found.push(p);
            }
        }
        found.sort();
        found
    } else if path.exists() {
        darkmagic_base::files::check_regular(path, u64::MAX)?;
        vec![path.to_path_buf()]
    } else {
        return Err(Error::data(path, "no such shard or folder of shards"));
    };
    let mut seen = HashSet::new();
    if let Some(twice) = all
        .iter()
        .find(|p| !seen.insert(p.canonicalize().unwrap_or_else(|_| p.to_path_buf())))
    {
        return Err(Error::data(
            twice,
            "is named twice (data.path): its samples would count twice",
        ));
    }
    let is_test = |p: &PathBuf| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        TEST_PREFIXES.iter().any(|t| {
            name.strip_prefix(t)
                .is_some_and(|rest| rest.starts_with(['-', '_', '.']))
        })
    };
    let (test, train): (Vec<PathBuf>, Vec<PathBuf>) = all.into_iter().partition(is_test);
    if train.is_empty() {
        return Err(Error::data(
            path,
            "holds no training shard (expected .tar files; those named test*, val* are the test split)",
        ));
    }
    Ok((train, test))
}

/// Loads the WebDataset at `path`.
pub fn load(path: &Path, reading: Reading) -> Result<Dataset> {
    let (train, test) = shards(path)?;
    let mut samples = Vec::new();
    let mut n_train = 0;
    // A key is one sample of the data set: the same key in two shards would count it twice.
    let mut keys: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for (k, shard) in train.iter().chain(&test).enumerate() {
        if k == train.len() {
            n_train = samples.len();
        }
        for (source, label) in read_shard(shard)? {
            if let Source::Member { name, .. } = &source {
                let key = split_name(shard, name)?.0.to_string();
                if let Some(first) = keys.insert(key.clone(), shard.clone()) {
                    return Err(member_error(
                        shard,
                        &key,
                        format!("sample key also in {}", first.display()),
                    ));
                }
            }
            samples.push((source, label));
        }
    }
    if test.is_empty() {
        n_train = samples.len();
    }
    let labels: Vec<Label> = samples.iter().map(|s| s.1.clone()).collect();
    let (classes, index) = labels::resolve(&labels, None, |i| samples[i].0.name())?;
    labels::check_test_classes(&index[..n_train], &index[n_train..], |i| samples[n_train + i].0.name())?;
    let mut all: Vec<(Source, i64)> = samples.into_iter().map(|s| s.0).zip(index).collect();
    let test_samples = all.split_off(n_train);
    if all.is_empty() {
        return Err(Error::data(
            &train[0],
            "holds no sample (no member with an image extension)",
        ));
    }
    let test_samples = (!test.is_empty()).then_some(test_samples);
    folder::from_files("WebDataset", classes, all, test_samples, reading)
}

/// Every shard of the WebDataset at `path` (for the data fingerprint).
pub fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let (mut train, test) = shards(path)?;
    train.extend(test);
    Ok(train)
}

/// The samples of one shard: each image's member and its label.
fn read_shard(shard: &Path) -> Result<Vec<(Source, Label)>> {
    let archive = Arc::new(shard.to_path_buf());
    let mut file = std::fs::File::open(shard).map_err(|e| Error::io(shard, e))?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let members = tar::members(shard)?;
    let mut rest = members.as_slice();
    while let Some(first) = rest.first() {
        let (key, _) = split_name(shard, &first.name)?;
        let n = rest
            .iter()
            .take_while(|m| split_name(shard, &m.name).is_ok_and(|(k, _)| k == key))
            .count();
        let (sample, tail) = rest.split_at(n);
        rest = tail;
        if !seen.insert(key.to_string()) {
            return Err(member_error(
                shard,
                &first.name,
                format!("sample key {key:?} appears twice in this shard"),
            ));
        }
        out.push(read_sample(&mut file, &archive, key, sample)?);
    }
    Ok(out)
}

/// A member name's sample key and extension (lower-cased): `dir/000017.seg.png` is key
/// `dir/000017`, extension `seg.png`.
fn split_name<'a>(shard: &Path, name: &'a str) -> Result<(&'a str, String)> {
    let base = name.rfind('/').map_or(0, |i| i + 1);
    match name[base..].find('.') {
        Some(dot) if dot > 0 => Ok((&name[..base + dot], name[base + dot + 1..].to_lowercase())),
        _ => Err(member_error(
            shard,
            name,
            "member without an extension; expected KEY.EXT (e.g. 000017.png, 000017.cls)".into(),
        )),
    }
}

/// One sample (the members sharing `key`): its image and label.
fn read_sample(
    file: &mut std::fs::File,
    archive: &Arc<PathBuf>,
    key: &str,
    members: &[tar::Member],
) -> Result<(Source, Label)> {
    let shard = archive.as_path();
    let by_ext = |ext: &str| {
        members
            .iter()
            .find(|m| split_name(shard, &m.name).is_ok_and(|(_, e)| e == ext))
    };
    let mut exts = HashSet::new();
    for m in members {
        if !exts.insert(split_name(shard, &m.name)?.1) {
            return Err(member_error(shard, &m.name, "appears twice in its sample".into()));
        }
    }
    let image = IMAGE_EXTENSIONS.iter().find_map(|e| by_ext(e)).ok_or_else(|| {
        member_error(
            shard,
            key,
            "sample has no image member; expected KEY.jpg, KEY.jpeg or KEY.png".into(),
        )
    })?;
    let label = if let Some(cls) = by_ext("cls") {
        let text = read_member(file, shard, cls)?;
        let text = String::from_utf8_lossy(&text);
        let v = text.trim().parse().map_err(|_| {
            member_error(
                shard,
                &cls.name,
                format!("holds {:?}; expected a class index (an integer)", text.trim()),
            )
        })?;
        Label::Index(v)
    } else if let Some(json) = by_ext("json") {
        json_label(shard, json, &read_member(file, shard, json)?)?
    } else {
        return Err(member_error(
            shard,
            key,
            "sample has no label; expected KEY.cls (a class index) or KEY.json with a `label` field".into(),
        ));
    };
    let source = Source::Member {
        archive: archive.clone(),
        name: image.name.clone(),
        offset: image.offset,
        len: image.size,
    };
    Ok((source, label))
}

/// The label of a `.json` member: its `label`, `cls` or `class` field, an integer or a name.
fn json_label(shard: &Path, m: &tar::Member, bytes: &[u8]) -> Result<Label> {
    let bad = |what: String| member_error(shard, &m.name, what);
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let field = JSON_LABEL_FIELDS
        .iter()
        .find_map(|f| value.get(f))
        .ok_or_else(|| bad("has no `label`, `cls` or `class` field".into()))?;
    match field {
        serde_json::Value::Number(n) if n.is_i64() => Ok(Label::Index(n.as_i64().expect("checked"))),
        serde_json::Value::String(s) => Ok(Label::Name(s.clone())),
        other => Err(bad(format!("label {other}; expected an integer or a class name"))),
    }
}

/// The bytes of a label member, bounded.
fn read_member(file: &mut std::fs::File, shard: &Path, m: &tar::Member) -> Result<Vec<u8>> {
    if m.size > MAX_LABEL_BYTES {
        return Err(member_error(
            shard,
            &m.name,
            format!("{} bytes; expected at most {MAX_LABEL_BYTES} for a label", m.size),
        ));
    }
    let mut bytes = vec![0u8; m.size as usize];
    file.seek(SeekFrom::Start(m.offset)).map_err(|e| Error::io(shard, e))?;
    file.read_exact(&mut bytes).map_err(|e| Error::io(shard, e))?;
    Ok(bytes)
}

/// An error naming `shard:member`.
fn member_error(shard: &Path, member: &str, what: String) -> Error {
    let mut name = shard.as_os_str().to_os_string();
    name.push(":");
    name.push(member);
    Error::data(PathBuf::from(name), what)
}

/// Brace expansion as webdataset's `braceexpand`: `{a,b}` alternatives and `{000..009}` integer
/// ranges (zero-padded to the wider bound), several braces multiplied out.
pub fn expand(pattern: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = open
        + pattern[open..]
            .find('}')
            .ok_or_else(|| format!("brace pattern {pattern:?} has a `{{` without its `}}`"))?;
    let inner = &pattern[open + 1..close];
    if inner.contains('{') {
        return Err(format!(
            "brace pattern {pattern:?} nests braces; expected {{a,b}} or {{000..009}}"
        ));
    }
    let options: Vec<String> = match inner.split_once("..") {
        Some((a, b)) => {
            let bad = || {
                format!("brace range {{{inner}}}; expected two non-negative integers, the first not above the second")
            };
            let (lo, hi): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if lo > hi || hi - lo >= MAX_SHARDS as u64 {
                return Err(format!(
                    "brace range {{{inner}}}; expected at most {MAX_SHARDS} shards, from low to high"
                ));
            }
            let width = if a.starts_with('0') || b.starts_with('0') {
                a.len().max(b.len())
            } else {
                0
            };
            (lo..=hi).map(|v| format!("{v:0width$}")).collect()
        }
        None => inner.split(',').map(String::from).collect(),
    };
    let mut out = Vec::new();
    for rest in expand(&pattern[close + 1..])? {
        for o in &options {
            out.push(format!("{}{o}{rest}", &pattern[..open]));
            if out.len() > MAX_SHARDS {
                return Err(format!(
                    "brace pattern {pattern:?} expands to more than {MAX_SHARDS} shards"
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_as_braceexpand() {
        assert_eq!(
            expand("s-{000..002}.tar").unwrap(),
            ["s-000.tar", "s-001.tar", "s-002.tar"]
        );
        assert_eq!(
            expand("{a,b}-{1..2}.tar").unwrap(),
            ["a-1.tar", "a-2.tar", "b-1.tar", "b-2.tar"]
        );
        assert_eq!(expand("plain.tar").unwrap(), ["plain.tar"]);
        for bad in [
            "s-{1..x}.tar",
            "s-{3..1}.tar",
            "s-{0..99999999}.tar",
            "s-{a,{b}}.tar",
            "s-{1..2.tar",
        ] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_split_into_key_and_extension() {
        let shard = Path::new("s.tar");
        assert_eq!(
            split_name(shard, "dir/000017.seg.PNG").unwrap(),
            ("dir/000017", "seg.png".to_string())
        );
        let e = split_name(shard, "dir.x/README").unwrap_err().to_string();
        assert!(
            e.contains("s.tar:dir.x/README") && e.contains("without an extension"),
            "{e}"
        );
    }
}
