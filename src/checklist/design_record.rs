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
    let Some(r) = read(root)? else {
        return Ok(());
    };
    let d = &r.design;
    let refuse = |key: &str, was: String, now: String| {
        Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "this checklist fixed its design at its first look with {key} = {was}; this run asks for {now}. \
                 Its looks have spent error planned for that design, and changing it after seeing results \
                 would spend it again: rerun with {key} = {was}, or use another --out directory"
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
            e.contains("design.json") && e.contains("checklist.max_seeds = 4") && e.contains("asks for 10"),
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
}
