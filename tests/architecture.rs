//! The house rule of docs/architecture.md: a module of the library imports only modules on a
//! lower layer (no circles, nothing running up). Every `crate::<module>` path in the library's
//! code (unit tests left out) is checked against the layers below.
use std::path::Path;

/// The library's modules by layer, the ground first. Modules on one layer do not import each
/// other.
const LAYERS: &[&[&str]] = &[
    &["error", "rng", "stats", "loss", "uri"],
    &["files", "tensorboard", "launcher"],
    &["recipe"],
    &["image", "runtime", "schedule"],
    &["augment"],
    &["data"],
    &["model", "rundir"],
    &["optim", "eval", "executor"],
    &["bench", "external", "preview"],
    &["train", "checklist"],
    &["report"],
    &["mlflow"],
    &["session"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file of `src/` belongs to (`src/recipe/data.rs` -> `recipe`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let top = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    top.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules named by `crate::<name>` in `code`.
fn imports(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn every_module_imports_only_modules_on_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let from = module_of(&src, file);
        // The binaries (`main`, its arguments `cli`, the wheel's `bin/darkmagic-core`), the crate
        // root and test helpers stand on top.
        if ["main", "cli", "bin", "lib", "testutil"].contains(&from.as_str()) {
            continue;
        }
        let Some(from_layer) = layer(&from) else {
            unplaced.push(from.clone());
            continue;
        };
        // Unit tests (a `tests.rs` beside its module, or after `#[cfg(test)]`) may reach anywhere.
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for to in imports(code) {
            if to == from {
                continue;
            }
            match layer(&to) {
                Some(l) if l < from_layer => {}
                Some(_) => upward.push(format!("{} imports {to}", file.display())),
                None => unplaced.push(to),
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(unplaced.is_empty(), "modules on no layer of LAYERS: {unplaced:?}");
    assert!(
        upward.is_empty(),
        "imports of a module on the same or a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_that_runs_up() {
    assert_eq!(
        imports("use crate::train::run;\nlet x = crate::report::write(a);"),
        ["train", "report"]
    );
    assert!(layer("recipe") < layer("train") && layer("files") < layer("recipe"));
}
