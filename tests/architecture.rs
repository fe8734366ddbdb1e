//! The house rule of docs/architecture.md, in two parts.
//!
//! Between crates the compiler holds it: a crate names only the crates its manifest lists, and
//! `the_checklist_crates_hold_no_libtorch` checks that the crates below `darkmagic` never list
//! tch. Within a crate, a module imports only rooms on lower layers of that crate (no circles,
//! nothing sideways or up): every path that names a module of the same crate is checked, in all
//! of Rust's spellings (`crate::a`, `crate::{a, b::c}`, `crate::Item` re-exported from a module,
//! `super::` from a top-level file), and `use crate as` is refused because it hides them.
use std::path::{Path, PathBuf};

/// One crate of the workspace: where its code is and its rooms by layer, the ground first. A
/// room is a top-level module (`recipe` for `crates/base/src/recipe.rs` and `crates/base/src/recipe/...`); `ROOT_ROOM`
/// is the crate root (`lib.rs`) with the top-level files that `root_files` names. `below`: the
/// names a crate path may reach that live in lower crates (re-exports), allowed from anywhere.
struct Crate {
    src: &'static str,
    layers: &'static [&'static [&'static str]],
    /// Top-level files that belong to the crate root's room (the root's own submodules).
    root_files: &'static [&'static str],
    /// Items of the crate root (`crate::Recipe`) and the room that defines them.
    root_items: &'static [(&'static str, &'static str)],
    below: &'static [&'static str],
}

/// The crate root's room.
const ROOT_ROOM: &str = "lib";

const CRATES: &[Crate] = &[
    Crate {
        src: "crates/base/src",
        layers: &[
            &["uri"],
            &["error", "rng", "stats"],
            &["files", "tensorboard", "launcher"],
            &["recipe"],
            &["schedule", "rundir"],
            &[ROOT_ROOM, "testutil"],
        ],
        root_files: &[],
        root_items: &[("Error", "error"), ("Result", "error"), ("Recipe", "recipe")],
        below: &[],
    },
    Crate {
        src: "crates/data/src",
        layers: &[&["image", "labels", "tar"], &["augment"], &[ROOT_ROOM]],
        // The readers are the crate root's children and share its helpers (`super::read_file`).
        root_files: &[
            "cifar",
            "digits",
            "fingerprint",
            "folder",
            "idx",
            "manifest",
            "parquet",
            "source",
            "webdataset",
        ],
        root_items: &[],
        below: &[],
    },
    Crate {
        src: "crates/checklist/src",
        layers: &[
            &["executor"],
            &["external"],
            &[ROOT_ROOM],
            &["report"],
            &["mlflow"],
            &["session"],
        ],
        // The checklist proper: plan, statistics, analysis, records, around the crate root.
        root_files: &[
            "analysis",
            "calibration",
            "design_record",
            "hparams",
            "lock",
            "outcome",
            "plan",
            "sequential",
            "simulation",
            "tuning",
        ],
        root_items: &[],
        below: &[],
    },
    Crate {
        src: "src",
        layers: &[
            &["loss", "runtime"],
            &["loader", "model"],
            &["optim", "eval"],
            &["bench", "preview"],
            &["train"],
            // The binaries (`main`, its arguments `cli`, the wheel's `bin/darkmagic-core`) and
            // the crate root stand on top.
            &[ROOT_ROOM, "main", "cli", "bin"],
        ],
        root_files: &[],
        root_items: &[],
        // src/lib.rs re-exports the crates below under their module names.
        below: &[
            "Error",
            "Recipe",
            "Result",
            "error",
            "files",
            "launcher",
            "recipe",
            "rng",
            "rundir",
            "schedule",
            "stats",
            "tensorboard",
            "uri",
            "checklist",
            "executor",
            "external",
            "mlflow",
            "report",
            "session",
            "data",
            "augment",
            "image",
            "testutil",
        ],
    },
];

impl Crate {
    fn layer(&self, room: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.contains(&room))
    }

    /// The room of a file under `src` (`crates/base/src/recipe/data.rs` -> `recipe`).
    fn room_of(&self, src: &Path, file: &Path) -> String {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if self.root_files.contains(&top) {
            ROOT_ROOM.to_string()
        } else {
            top.to_string()
        }
    }

    /// The room a crate path's first segment `name` lands in (`src`: the crate's code); None
    /// for what lives below. A name with a file or folder of its own is a module; any other
    /// name is an item of the crate root (`crate::Recipe`, `crate::run`).
    fn room_named(&self, src: &Path, name: &str) -> Option<String> {
        if self.below.contains(&name) {
            return None;
        }
        let module = src.join(format!("{name}.rs")).is_file() || src.join(name).is_dir();
        if module && !self.root_files.contains(&name) {
            return Some(name.to_string());
        }
        let defined_in = self.root_items.iter().find(|(item, _)| *item == name);
        Some(defined_in.map_or(ROOT_ROOM, |(_, room)| room).to_string())
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The first path segments that follow `crate::` in `code`, groups (`crate::{a, b::c}`)
/// expanded; `super::` counts as `crate::` where `super_is_root` (a top-level file, whose parent
/// is the crate root).
fn imports(code: &str, super_is_root: bool) -> Vec<String> {
    let mut names = Vec::new();
    let prefixes: &[&str] = if super_is_root {
        &["crate::", "super::"]
    } else {
        &["crate::"]
    };
    for prefix in prefixes {
        for (i, _) in code.match_indices(prefix) {
            // `super::` inside a longer identifier path (`a::super::`) is not Rust; skip words.
            if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                names.extend(group_heads(group));
            } else {
                names.push(ident(rest));
            }
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// The leading identifier of `s`.
fn ident(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The first segment of each item of a `{...}` group (its text after the `{`), nested groups
/// skipped as part of their item.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = vec![ident(group.trim_start())];
    let mut depth = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(ident(group[i + 1..].trim_start())),
            _ => {}
        }
    }
    heads
}

/// `text` without its unit-test module (`#[cfg(test)]` followed by `mod tests`), which may reach
/// anywhere; other `#[cfg(test)]` items stay checked.
fn without_tests(text: &str) -> &str {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let at = from + i;
        let after = text[at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod tests") || after.starts_with("pub(crate) mod tests") {
            return &text[..at];
        }
        from = at + 1;
    }
    text
}

/// The imports of one crate that break its layers (or land in no layer), as lines to print.
fn violations(krate: &Crate, root: &Path) -> Vec<String> {
    let src = root.join(krate.src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for file in &files {
        // A `tests.rs` beside its module is that module's unit tests.
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let from = krate.room_of(&src, file);
        let Some(from_layer) = krate.layer(&from) else {
            out.push(format!("{}: room {from} is on no layer", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = without_tests(&text);
        if code.contains("use crate as") {
            out.push(format!("{}: `use crate as` hides what it imports", file.display()));
        }
        let rel = file.strip_prefix(&src).unwrap();
        let top_level = rel.components().count() == 1
            || rel.file_name().is_some_and(|n| n == "mod.rs") && rel.components().count() == 2;
        for name in imports(code, top_level) {
            let Some(to) = krate.room_named(&src, &name) else {
                continue;
            };
            if to == from {
                continue;
            }
            match krate.layer(&to) {
                Some(l) if l < from_layer => {}
                Some(_) => out.push(format!("{}: {from} imports {to} (`{name}`)", file.display())),
                None => out.push(format!("{}: imports {name}, on no layer", file.display())),
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_modules_on_lower_layers_of_its_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found: Vec<String> = CRATES.iter().flat_map(|k| violations(k, root)).collect();
    assert!(found.is_empty(), "imports that break the layers:\n{}", found.join("\n"));
}

#[test]
fn every_file_of_every_crate_is_scanned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| format!("crates/{}/src", e.unwrap().file_name().to_string_lossy()))
        .collect();
    for c in &crates {
        assert!(CRATES.iter().any(|k| k.src == c), "{c} has no entry in CRATES");
    }
}

#[test]
fn the_check_sees_every_spelling_of_an_import() {
    assert_eq!(
        imports("use crate::train::run;\nlet x = crate::report::write(a);", false),
        ["train", "report"]
    );
    assert_eq!(
        imports("use crate::{self, eval::{A, B}, Recipe};", false),
        ["eval", "Recipe"]
    );
    assert_eq!(imports("use super::Images;", true), ["Images"]);
    assert!(imports("use super::Images;", false).is_empty());
    let text = "use crate::a;\n#[cfg(test)]\nfn helper() { crate::b::x() }\n#[cfg(test)]\nmod tests { use crate::c; }";
    assert_eq!(imports(without_tests(text), false), ["a", "b"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = &CRATES[0];
    let base_src = root.join(base.src);
    assert_eq!(base.room_named(&base_src, "Recipe").as_deref(), Some("recipe"));
    assert_eq!(base.room_named(&base_src, "files").as_deref(), Some("files"));
    assert_eq!(base.room_named(&base_src, "some_fn").as_deref(), Some(ROOT_ROOM));
    assert!(base.layer("files") < base.layer("recipe") && base.layer("recipe") < base.layer("rundir"));
    let top = &CRATES[3];
    assert_eq!(
        top.room_named(&root.join("src"), "recipe"),
        None,
        "a re-export of a lower crate"
    );
    assert!(top.layer("loader") < top.layer("train"));
}

#[test]
fn an_import_that_runs_up_is_reported() {
    let dir = std::env::temp_dir().join(format!("darkmagic-arch-{}", std::process::id()));
    let src = dir.join("crates/base/src");
    std::fs::create_dir_all(src.join("recipe")).unwrap();
    std::fs::write(src.join("error.rs"), "use crate::{stats, files::read_regular};\n").unwrap();
    std::fs::write(src.join("recipe/mod.rs"), "use super::{Recipe, schedule::Regime};\n").unwrap();
    std::fs::write(src.join("stats.rs"), "use crate as c;\n").unwrap();
    std::fs::write(src.join("files.rs"), "").unwrap();
    std::fs::write(src.join("schedule.rs"), "").unwrap();
    let found = violations(&CRATES[0], &dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let text = found.join("\n");
    assert!(text.contains("error imports files"), "{text}");
    assert!(text.contains("error imports stats"), "{text}");
    assert!(text.contains("recipe imports schedule"), "{text}");
    assert!(!text.contains("imports recipe"), "{text}");
    assert!(text.contains("`use crate as` hides"), "{text}");
}

#[test]
fn the_checklist_crates_hold_no_libtorch() {
    for krate in ["darkmagic-base", "darkmagic-data", "darkmagic-checklist"] {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["tree", "--offline", "-e", "normal,build,dev", "-p", krate])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo tree -p {krate}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.contains(krate), "{tree}");
        let torch: Vec<&str> = tree
            .lines()
            .filter(|l| l.contains(" tch ") || l.contains("torch-sys"))
            .collect();
        assert!(torch.is_empty(), "{krate} depends on libtorch:\n{}", torch.join("\n"));
    }
}
