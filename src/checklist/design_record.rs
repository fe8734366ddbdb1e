//! `design.json`: the sequential design a checklist fixed at its first look. The error each look
//! may spend depends on the looks planned (the information fraction `n / max_seeds`) and on the
//! number of variants; changing either after results were seen would spend error again (raising
//! `max_seeds` from 4 to 10 after an empty first pass makes a false helps/hurts about twice as
//! likely). So the design is written once, at the first look, and a rerun whose `[checklist]`
//! settings or plan differ from it is refused before anything is written.
use super::sequential::Design;
use crate::error::{Error, Result};
use crate::recipe::ChecklistConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FILE: &str = "design.json";

/// The fixed design and what defined it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub design: Design,
    /// `checklist.margin` as the recipe gave it (pp; None: the default rule).
    pub margin: Option<f64>,
    /// The labels of the variants planned, in plan order.
    pub variants: Vec<String>,
    /// Designs this checklist ran under before (`checklist --redesign`), oldest first: the
    /// report names them, since a design replaced after results were seen is a choice the
    /// reader should know of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<Design>,
    /// Set by `--redesign`: the design is retired and the next look fixes a new one (with this
    /// one added to `replaced`). A retired record judges nothing and constrains no rerun.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// The designs a new record of the checklist in `root` must carry as replaced: those of a
/// retired record, with its own design last; none otherwise.
pub fn replaced(root: &Path) -> Result<Vec<Design>> {
    Ok(match read(root)? {
        Some(r) if r.retired => {
            let mut v = r.replaced;
            v.push(r.design);
            v
        }
        _ => Vec::new(),
    })
}

/// Retires the recorded design (`checklist --redesign`), atomically: the next look fixes the
/// design of the current settings over the same trials. Returns whether there was one.
pub fn retire(root: &Path) -> Result<bool> {
    match read(root)? {
        Some(r) if !r.retired => write(root, &Record { retired: true, ..r }).map(|()| true),
        _ => Ok(false),
    }
}

/// The record of the checklist in `root`; None before its first look.
pub fn read(root: &Path) -> Result<Option<Record>> {
    let path = root.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| Error::RunDir {
        path,
        message: format!("{e}; it records the checklist's design (restore it, or start in another directory)"),
    })
}

/// Writes the record (atomically).
pub fn write(root: &Path, record: &Record) -> Result<()> {
    let json = serde_json::to_string_pretty(record).expect("design record serializes");
    crate::files::write_atomic(&root.join(FILE), format!("{json}\n").as_bytes())
}

/// Whether a rerun with `cfg` and the plan `variants` continues the recorded design; an error
/// naming the first setting that differs, and what the record holds.
pub fn check(root: &Path, cfg: &ChecklistConfig, variants: &[String]) -> Result<()> {
    let Some(r) = read(root)?.filter(|r| !r.retired) else {
        return Ok(());
    };
    let d = &r.design;
    let refuse = |key: &str, was: String, now: String| {
        Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "this checklist fixed its design at its first look with {key} = {was}; this run asks for {now}. \
                 Its looks have spent error planned for that design, and changing it after seeing results \
                 would spend it again: rerun with {key} = {was}, use another --out directory, or replace the design \
                 with --redesign (the report then names the design it replaced)"
            ),
        })
    };
    let counts = [
        ("checklist.seeds", d.first, cfg.seeds),
        ("checklist.max_seeds", d.max, cfg.max_seeds.max(cfg.seeds)),
        ("checklist.round_seeds", d.round, cfg.round_seeds),
    ];
    for (key, was, now) in counts {
        if was != now {
            return refuse(key, was.to_string(), now.to_string());
        }
    }
    if d.alpha != cfg.alpha {
        return refuse("checklist.alpha", d.alpha.to_string(), cfg.alpha.to_string());
    }
    if r.margin != cfg.margin {
        let text = |m: Option<f64>| m.map_or("the default".into(), |m| format!("{m} pp"));
        return refuse("checklist.margin", text(r.margin), text(cfg.margin));
    }
    // A record written before the critical values were stored has none: they are calibrated again.
    if d.comparisons != r.variants.len() || !(d.critical.is_empty() || d.critical.len() == d.comparisons) {
        return Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "design.comparisons = {} and {} rows of design.critical do not match the {} variants the record plans; \
                 the record was edited or damaged (restore it, or use another --out directory)",
                d.comparisons,
                d.critical.len(),
                r.variants.len()
            ),
        });
    }
    if r.variants != variants {
        let added: Vec<&String> = variants.iter().filter(|v| !r.variants.contains(v)).collect();
        let removed: Vec<&String> = r.variants.iter().filter(|v| !variants.contains(v)).collect();
        return refuse(
            "the plan",
            format!("{} variants", r.variants.len()),
            format!("{} (added: {added:?}, removed: {removed:?})", variants.len()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_that_changes_the_design_is_refused_and_names_the_setting() {
        let root = crate::testutil::tempdir("design-record");
        let cfg = ChecklistConfig::default();
        let variants = vec!["a=1".to_string(), "b=2".to_string()];
        check(&root, &cfg, &variants).expect("no record yet: anything goes");
        let record = Record {
            design: Design::new(&cfg, 179, 2),
            margin: None,
            variants: variants.clone(),
            replaced: Vec::new(),
            retired: false,
        };
        write(&root, &record).unwrap();
        assert_eq!(read(&root).unwrap(), Some(record));
        check(&root, &cfg, &variants).expect("the same design continues");
        let more = ChecklistConfig {
            max_seeds: 10,
            ..cfg.clone()
        };
        let e = check(&root, &more, &variants).unwrap_err().to_string();
        assert!(
            e.contains("design.json") && e.contains("checklist.max_seeds = 6") && e.contains("asks for 10"),
            "{e}"
        );
        let e = check(&root, &cfg, &variants[..1]).unwrap_err().to_string();
        assert!(e.contains("removed: [\"b=2\"]"), "{e}");
        let e = check(
            &root,
            &ChecklistConfig {
                margin: Some(1.0),
                ..cfg
            },
            &variants,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("checklist.margin = the default") && e.contains("1 pp"),
            "{e}"
        );
    }

    #[test]
    fn a_retired_design_constrains_nothing_and_is_carried_as_replaced() {
        let root = crate::testutil::tempdir("design-retired");
        let cfg = ChecklistConfig::default();
        let variants = vec!["a=1".to_string()];
        assert!(!retire(&root).unwrap(), "nothing to retire");
        let old = Design::new(&cfg, 0, 1);
        let record = Record {
            design: old.clone(),
            margin: None,
            variants: variants.clone(),
            replaced: Vec::new(),
            retired: false,
        };
        write(&root, &record).unwrap();
        assert_eq!(replaced(&root).unwrap(), Vec::<Design>::new());
        assert!(retire(&root).unwrap());
        let more = ChecklistConfig { max_seeds: 10, ..cfg };
        check(&root, &more, &variants).expect("a retired design constrains no rerun");
        assert_eq!(replaced(&root).unwrap(), vec![old]);
        assert!(read(&root).unwrap().unwrap().retired);
    }
}
