//! `design.json`: the sequential design a checklist fixed at its first look. The error each look
//! may spend depends on the looks planned (the information fraction `n / max_seeds`) and on the
//! number of variants; changing either after results were seen would spend error again (raising
//! `max_seeds` from 4 to 10 after an empty first pass makes a false helps/hurts about twice as
//! likely). So the design is written once, at the first look, and a rerun whose `[checklist]`
//! settings or plan differ from it is refused before anything is written.
use super::sequential::Design;
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::ChecklistConfig;
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
    /// CRC-32C (hex) of the record's other fields as JSON, set on write and checked on read: a
    /// hand edit of any field, those the rerun check compares and those it cannot (the replaced
    /// designs), is refused. None in records written before the digest; [`check`] adds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Record {
    /// The digest of every field but the digest itself.
    fn computed_digest(&self) -> String {
        darkmagic_base::rundir::json_digest(&Record {
            digest: None,
            ..self.clone()
        })
    }

    /// The designs this record has replaced: for a retired record, its own design too (last).
    pub fn superseded(&self) -> Vec<Design> {
        let mut v = self.replaced.clone();
        if self.retired {
            v.push(self.design.clone());
        }
        v
    }
}

/// The designs a new record of the checklist in `root` must carry as replaced: those of a
/// retired record, with its own design last; none otherwise.
pub fn replaced(root: &Path) -> Result<Vec<Design>> {
    Ok(read(root)?
        .filter(|r| r.retired)
        .map(|r| r.superseded())
        .unwrap_or_default())
}

/// Retires the recorded design (`checklist --redesign`), atomically: the next look fixes the
/// design of the current settings over the same trials. Returns whether there was one.
pub fn retire(root: &Path) -> Result<bool> {
    match read(root)? {
        Some(r) if !r.retired => write(root, &Record { retired: true, ..r }).map(|()| true),
        _ => Ok(false),
    }
}

/// The most bytes a design record may hold (a 1000-variant design's critical table fits).
const LIMIT: u64 = 16 << 20;

/// The record of the checklist in `root`; None before its first look. Read through the bounded
/// regular-file reader and checked field by field ([`validate`]): an edited or damaged record is
/// refused with the field named, never judged with.
pub fn read(root: &Path) -> Result<Option<Record>> {
    let path = root.join(FILE);
    // A link to nowhere is there, and refused by the reader below.
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let bad = |message: String| Error::RunDir {
        path: path.clone(),
        message: format!("{message}; it records the checklist's design (restore it, or start in another directory)"),
    };
    let bytes = darkmagic_base::files::read_regular(&path, LIMIT)?;
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    validate(&record).map_err(bad)?;
    if let Some(d) = record.digest.as_ref().filter(|d| **d != record.computed_digest()) {
        return Err(bad(format!(
            "digest = {d:?} does not match the record's fields: the record was edited by hand"
        )));
    }
    // `--redesign` retires a record by writing it sealed; an unsealed retired one is an edit
    // that would lift the design's lock without it.
    if record.retired && record.digest.is_none() {
        return Err(bad(
            "retired = true without a digest: only `darkmagic checklist --redesign` retires a design, and it seals \
             the record; rerun with --redesign to replace the design"
                .into(),
        ));
    }
    Ok(Some(record))
}

/// Every field of a record within what a design can hold: counts in range, alpha in (0, 0.5),
/// a positive finite margin, one unique label per planned variant, and a critical table of one
/// row per variant and one value per look, positive, finite, and growing with the row (as
/// `calibration::table` makes it).
pub fn validate(r: &Record) -> std::result::Result<(), String> {
    let d = &r.design;
    if d.comparisons != r.variants.len() {
        return Err(format!(
            "design.comparisons = {} but the record plans {} variants",
            d.comparisons,
            r.variants.len()
        ));
    }
    for d in r.replaced.iter().chain(std::iter::once(&r.design)) {
        validate_design(d)?;
    }
    let mut labels: Vec<&String> = r.variants.iter().collect();
    labels.sort();
    if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("variants: {:?} appears twice", w[0]));
    }
    if let Some(m) = r.margin.filter(|m| !(m.is_finite() && *m > 0.0)) {
        return Err(format!("margin = {m}: expected a positive number of pp"));
    }
    Ok(())
}

/// One design's fields (see [`validate`]).
fn validate_design(d: &Design) -> std::result::Result<(), String> {
    if !(1..=1000).contains(&d.first) || !(d.first..=1000).contains(&d.max) || d.round == 0 {
        return Err(format!(
            "design.first = {}, design.max = {}, design.round = {}: expected 1 <= first <= max <= 1000 and round >= 1",
            d.first, d.max, d.round
        ));
    }
    if !(d.alpha > 0.0 && d.alpha < 0.5) {
        return Err(format!("design.alpha = {}: expected a number in (0, 0.5)", d.alpha));
    }
    // Two validation images of a tiny split can make the default margin a whole 1.0 or more.
    if !(d.margin.is_finite() && d.margin > 0.0) {
        return Err(format!("design.margin = {}: expected a positive fraction", d.margin));
    }
    if d.comparisons == 0 || d.comparisons > 10_000 {
        return Err(format!("design.comparisons = {}: expected 1 to 10000", d.comparisons));
    }
    // A record written before the critical values were stored has none: they are calibrated again.
    if d.critical.is_empty() {
        return Ok(());
    }
    let looks = d.looks().len();
    if d.critical.len() != d.comparisons || d.critical.iter().any(|row| row.len() != looks) {
        return Err(format!(
            "design.critical: expected {} rows of {looks} values (one per variant, one per look)",
            d.comparisons
        ));
    }
    for l in 0..looks {
        let column: Vec<Option<f64>> = d.critical.iter().map(|row| row[l]).collect();
        if column.iter().flatten().any(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(format!(
                "design.critical, look {}: expected positive finite values",
                l + 1
            ));
        }
        let values: Vec<f64> = column.iter().flatten().copied().collect();
        if values.len() != column.len() && !values.is_empty() || values.windows(2).any(|w| w[0] > w[1]) {
            return Err(format!(
                "design.critical, look {}: expected all values or none, growing with the row",
                l + 1
            ));
        }
    }
    Ok(())
}

/// Whether two critical tables agree to a relative 1e-3: the calibration is deterministic, but
/// another machine's libm may round a random draw's logarithm differently in the last bit.
fn same_table(a: &[super::calibration::Row], b: &[super::calibration::Row]) -> bool {
    let close = |x: &Option<f64>, y: &Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-3 * y.abs(),
        (None, None) => true,
        _ => false,
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(r, s)| r.len() == s.len() && r.iter().zip(s).all(|(x, y)| close(x, y)))
}

/// A record without a digest (written before digests) is not sealed: its critical values must
/// then be the calibration of the design it records, as a rerun checks ([`check`]), so that an
/// edit with the digest removed judges nothing.
pub fn check_unsealed(root: &Path, r: &Record) -> Result<()> {
    if r.digest.is_some()
        || r.design.critical.is_empty()
        || same_table(&r.design.critical, &r.design.calibrated_table())
    {
        return Ok(());
    }
    Err(Error::RunDir {
        path: root.join(FILE),
        message: "design.critical differs from the calibration of the design it records, and the record carries no \
                  digest: it was edited (restore it, or use another --out directory)"
            .into(),
    })
}

/// A record whose margin came from the default rule (`checklist.margin` unset) must hold that
/// rule's margin for the validation split the trials report: 0.5 pp or two validation images,
/// whichever is larger.
pub fn check_margin(root: &Path, r: &Record, val_images: usize) -> Result<()> {
    if r.margin.is_some() || val_images == 0 {
        return Ok(());
    }
    let want = super::sequential::default_margin(val_images);
    if (r.design.margin - want).abs() > 1e-12 {
        return Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "design.margin = {} but the default rule gives {want} for {val_images} validation images: the record was \
                 edited (restore it, or use another --out directory)",
                r.design.margin
            ),
        });
    }
    Ok(())
}

/// Writes the record (atomically), with its digest.
pub fn write(root: &Path, record: &Record) -> Result<()> {
    let record = Record {
        digest: Some(record.computed_digest()),
        ..record.clone()
    };
    let json = serde_json::to_string_pretty(&record).expect("design record serializes");
    darkmagic_base::files::write_atomic(&root.join(FILE), format!("{json}\n").as_bytes())
}

/// Whether a rerun with `cfg` and the plan `variants` continues the recorded design; an error
/// naming the first setting that differs, and what the record holds.
pub fn check(root: &Path, cfg: &ChecklistConfig, variants: &[String]) -> Result<()> {
    let Some(r) = read(root)?.filter(|r| !r.retired) else {
        return Ok(());
    };
    if let (Some((key, was, now)), None) = (difference(&r, cfg, variants), &r.digest) {
        // Without its digest the record may be an edit: its values are not advice to follow.
        return Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "holds {key} = {was} and carries no digest, and this run asks for {now}: the record may have been \
                 edited. Restore it, replace the design with --redesign, or use another --out directory"
            ),
        });
    }
    if let Some((key, was, now)) = difference(&r, cfg, variants) {
        return Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "this checklist fixed its design at its first look with {key} = {was}; this run asks for {now}. \
                 Its looks have spent error planned for that design, and changing it after seeing results \
                 would spend it again: rerun with {key} = {was}, use another --out directory, or replace the design \
                 with --redesign (the report then names the design it replaced)"
            ),
        });
    }
    check_calibrated(root, &r)?;
    // A record from before digests that passed every check above is sealed as it is, when it
    // also agrees with the settings the checklist last ran with (baseline.toml, not yet rewritten
    // by this run): a rerun that merely asks for an edited record's values does not seal it.
    if r.digest.is_none() && agrees_with_last_run(root, &r) {
        write(root, &r)?;
    }
    Ok(())
}

/// Whether record `r` holds the settings and plan of the checklist's `baseline.toml` (true
/// where there is none to compare with).
fn agrees_with_last_run(root: &Path, r: &Record) -> bool {
    let Ok(last) = darkmagic_base::recipe::Recipe::load(Some(&root.join(super::BASELINE)), &[]) else {
        return true;
    };
    let Ok(variants) = super::plan::variants(&last) else {
        return true;
    };
    let labels: Vec<String> = variants.iter().map(super::plan::Variant::label).collect();
    difference(r, &last.checklist, &labels).is_none()
}

/// Whether the record agrees with the `[checklist]` section of the checklist's `baseline.toml`
/// (`cfg`) and its plan (`variants`), as [`check`] holds a rerun to it: a report judges with the
/// record, so a record edited with its digest removed must not judge with other settings than
/// the checklist ran.
pub fn check_against_baseline(
    root: &Path,
    r: &Record,
    cfg: &ChecklistConfig,
    variants: &[String],
    source: &Path,
) -> Result<()> {
    if let Some((key, was, now)) = difference(r, cfg, variants) {
        return Err(Error::RunDir {
            path: root.join(FILE),
            message: format!(
                "holds {key} = {was}, but the checklist ran with {now} ({}): the record was edited (restore it, \
                 or use another --out directory)",
                source.display()
            ),
        });
    }
    check_calibrated(root, r)
}

/// The first setting in which record `r` and the `[checklist]` settings `cfg` with the plan
/// `variants` differ: its key, the record's value and `cfg`'s.
/// The digest (CRC-32C, hex) of the settings a design is fixed from: `checklist.seeds`,
/// `max_seeds` (at least `seeds`), `round_seeds`, `alpha`, `margin` as given, and the plan's
/// labels, and where set the rules that change what a trial's result is: early stop (with its
/// margin) and tuning (`checklist.tune`). Every trial records the one it was started under
/// (`Trial::settings`), so records that hold the settings (`design.json`, `baseline.toml`)
/// edited together after the trials ran are told from the trials' own.
pub fn settings_digest(cfg: &ChecklistConfig, variants: &[String]) -> String {
    let mut text = format!(
        "seeds={};max_seeds={};round_seeds={};alpha={:?};margin={:?};plan={variants:?}",
        cfg.seeds,
        cfg.max_seeds.max(cfg.seeds),
        cfg.round_seeds,
        cfg.alpha,
        cfg.margin
    );
    // (Appended only where set: the digests of checklists without them stay as they were.)
    if cfg.early_stop {
        text.push_str(&format!(";early_stop_margin={:?}", cfg.early_stop_margin));
    }
    if cfg.tune != Default::default() {
        text.push_str(&format!(
            ";tune={}",
            serde_json::to_string(&cfg.tune).expect("tune serializes")
        ));
    }
    darkmagic_base::rundir::digest(text.as_bytes())
}

fn difference(r: &Record, cfg: &ChecklistConfig, variants: &[String]) -> Option<(&'static str, String, String)> {
    let d = &r.design;
    let counts = [
        ("checklist.seeds", d.first, cfg.seeds),
        ("checklist.max_seeds", d.max, cfg.max_seeds.max(cfg.seeds)),
        ("checklist.round_seeds", d.round, cfg.round_seeds),
    ];
    if let Some((key, was, now)) = counts.into_iter().find(|(_, was, now)| was != now) {
        return Some((key, was.to_string(), now.to_string()));
    }
    if d.alpha != cfg.alpha {
        return Some(("checklist.alpha", d.alpha.to_string(), cfg.alpha.to_string()));
    }
    if r.margin != cfg.margin {
        let text = |m: Option<f64>| m.map_or("the default".into(), |m| format!("{m} pp"));
        return Some(("checklist.margin", text(r.margin), text(cfg.margin)));
    }
    if let Some(pp) = cfg.margin.filter(|pp| (d.margin - pp / 100.0).abs() > 1e-12) {
        return Some(("design.margin", format!("{} pp", 100.0 * d.margin), format!("{pp} pp")));
    }
    if r.variants != variants {
        let added: Vec<&String> = variants.iter().filter(|v| !r.variants.contains(v)).collect();
        let removed: Vec<&String> = r.variants.iter().filter(|v| !variants.contains(v)).collect();
        return Some((
            "the plan",
            format!("{} variants", r.variants.len()),
            format!("{} (added: {added:?}, removed: {removed:?})", variants.len()),
        ));
    }
    None
}

/// The record's critical values must be the calibration of the design it records.
fn check_calibrated(root: &Path, r: &Record) -> Result<()> {
    if !r.design.critical.is_empty() && !same_table(&r.design.critical, &r.design.calibrated_table()) {
        return Err(Error::RunDir {
            path: root.join(FILE),
            message: "design.critical differs from the calibration of the design it records: the record was edited \
                      (restore it, or use another --out directory)"
                .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record without its digest, as it was handed to [`write`].
    fn unsealed(r: Record) -> Record {
        assert!(r.digest.is_some(), "every record written carries its digest");
        Record { digest: None, ..r }
    }

    #[test]
    fn a_rerun_that_changes_the_design_is_refused_and_names_the_setting() {
        let root = darkmagic_base::testutil::tempdir("design-record");
        let cfg = ChecklistConfig::default();
        let variants = vec!["a=1".to_string(), "b=2".to_string()];
        check(&root, &cfg, &variants).expect("no record yet: anything goes");
        let record = Record {
            design: Design::new(&cfg, 179, 2),
            margin: None,
            variants: variants.clone(),
            replaced: Vec::new(),
            retired: false,
            digest: None,
        };
        write(&root, &record).unwrap();
        assert_eq!(read(&root).unwrap().map(unsealed), Some(record));
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
        let root = darkmagic_base::testutil::tempdir("design-retired");
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
            digest: None,
        };
        write(&root, &record).unwrap();
        assert_eq!(replaced(&root).unwrap(), Vec::<Design>::new());
        assert!(retire(&root).unwrap());
        let more = ChecklistConfig { max_seeds: 10, ..cfg };
        check(&root, &more, &variants).expect("a retired design constrains no rerun");
        assert_eq!(replaced(&root).unwrap(), vec![old]);
        assert!(read(&root).unwrap().unwrap().retired);
    }

    /// Hand edits that would change the verdicts are refused by name: the split of alpha, the
    /// margin, the critical values, impossible counts; a missing file is no record.
    #[test]
    fn an_edited_record_is_refused_with_the_field_named() {
        let root = darkmagic_base::testutil::tempdir("design-edited");
        let cfg = ChecklistConfig::default();
        let variants = vec!["a=1".to_string(), "b=2".to_string()];
        let good = Record {
            design: Design::new(&cfg, 0, 2),
            margin: None,
            variants: variants.clone(),
            replaced: Vec::new(),
            retired: false,
            digest: None,
        };
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(&good).unwrap();
            f(&mut v);
            std::fs::write(root.join(FILE), v.to_string()).unwrap();
            read(&root)
                .and_then(|r| check(&root, &cfg, &variants).map(|()| r))
                .unwrap_err()
                .to_string()
        };
        let e = edit(&|v| v["design"]["comparisons"] = 1.into());
        assert!(e.contains("design.comparisons = 1"), "{e}");
        let e = edit(&|v| v["design"]["alpha"] = (-1.0).into());
        assert!(e.contains("design.alpha = -1"), "{e}");
        let e = edit(&|v| {
            v["design"]["first"] = 0.into();
            v["design"]["max"] = 0.into();
        });
        assert!(e.contains("design.first = 0"), "{e}");
        let e = edit(&|v| v["design"]["critical"][1][1] = 0.5.into());
        assert!(e.contains("design.critical"), "{e}");
        let e = edit(&|v| v["variants"][1] = "a=1".into());
        assert!(e.contains("appears twice"), "{e}");
        // The margin: against the default rule for the trials' validation split.
        let mut wide = good.clone();
        wide.design.margin = 0.009;
        assert!(check_margin(&root, &good, 10_000).is_ok());
        let e = check_margin(&root, &wide, 10_000).unwrap_err().to_string();
        assert!(e.contains("design.margin = 0.009") && e.contains("0.005"), "{e}");
        write(&root, &good).unwrap();
        assert_eq!(read(&root).unwrap().map(unsealed), Some(good.clone()));
        std::fs::remove_file(root.join(FILE)).unwrap();
        assert_eq!(read(&root).unwrap(), None);
    }

    /// The digest seals every field, those the rerun check compares and those it cannot (the
    /// designs replaced); a record from before digests is accepted and sealed by the next check.
    #[test]
    fn the_digest_refuses_any_hand_edit_and_old_records_are_sealed() {
        let root = darkmagic_base::testutil::tempdir("design-digest");
        let cfg = ChecklistConfig::default();
        let variants = vec!["a=1".to_string()];
        let good = Record {
            design: Design::new(&cfg, 0, 1),
            margin: None,
            variants: variants.clone(),
            replaced: vec![Design::new(&cfg, 0, 1)],
            retired: false,
            digest: None,
        };
        write(&root, &good).unwrap();
        let text = std::fs::read_to_string(root.join(FILE)).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["replaced"][0]["alpha"] = 0.2.into();
        std::fs::write(root.join(FILE), v.to_string()).unwrap();
        let e = read(&root).unwrap_err().to_string();
        assert!(
            e.contains("design.json") && e.contains("does not match the record's fields"),
            "{e}"
        );
        // Written before digests: no digest field at all.
        let mut old = serde_json::to_value(&good).unwrap();
        old.as_object_mut().unwrap().remove("digest");
        std::fs::write(root.join(FILE), old.to_string()).unwrap();
        assert_eq!(read(&root).unwrap().unwrap().digest, None);
        check_unsealed(&root, &read(&root).unwrap().unwrap()).unwrap();
        // Unsealed, its critical values are held to the calibration.
        let mut edited = old.clone();
        edited["design"]["critical"][0][0] = 0.5.into();
        std::fs::write(root.join(FILE), edited.to_string()).unwrap();
        let e = check_unsealed(&root, &read(&root).unwrap().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("carries no digest"), "{e}");
        std::fs::write(root.join(FILE), old.to_string()).unwrap();
        // An unsealed record that differs from the rerun's settings is not offered as advice.
        let other = ChecklistConfig {
            alpha: 0.1,
            ..cfg.clone()
        };
        let e = check(&root, &other, &variants).unwrap_err().to_string();
        assert!(e.contains("carries no digest") && !e.contains("rerun with"), "{e}");
        // Not sealed while the checklist's last settings (baseline.toml) say otherwise: a rerun
        // that asks for an edited record's values does not make it look genuine.
        let mut last = darkmagic_base::recipe::Recipe::default();
        last.checklist.alpha = 0.2;
        std::fs::write(root.join(super::super::BASELINE), last.to_toml()).unwrap();
        check(&root, &cfg, &variants).unwrap();
        assert_eq!(read(&root).unwrap().unwrap().digest, None);
        std::fs::remove_file(root.join(super::super::BASELINE)).unwrap();
        check(&root, &cfg, &variants).unwrap();
        assert_eq!(read(&root).unwrap().map(unsealed), Some(good));
    }
}
