//! darkmagic's AutoAugment policy tables, entry by entry, against the tables of
//! `../shared/reference/TRICKS.md` section 6 (notation `Op{p}@{bin}`, pairs `a+b`, `|` between),
//! kept verbatim in `tests/fixtures/autoaugment_tables.txt` so the test runs without the
//! reference folder; where the reference is present, the copy is checked against it.
use darkmagic::augment::policy::autoaugment_table;
use std::path::Path;

fn full_name(abbrev: &str) -> &'static str {
    match abbrev {
        "Post" => "Posterize",
        "Rot" => "Rotate",
        "Sol" => "Solarize",
        "AC" => "AutoContrast",
        "Eq" => "Equalize",
        "Col" => "Color",
        "Con" => "Contrast",
        "Shp" => "Sharpness",
        "Inv" => "Invert",
        "ShX" => "ShearX",
        "ShY" => "ShearY",
        "TrX" => "TranslateX",
        "TrY" => "TranslateY",
        "Bri" => "Brightness",
        other => panic!("unknown abbreviation {other}"),
    }
}

/// `Post.4@8` -> ("Posterize", 0.4, Some(8)).
fn parse_op(token: &str) -> (&'static str, f64, Option<usize>) {
    let split = token.find(|c: char| !c.is_ascii_alphabetic()).unwrap();
    let (name, rest) = token.split_at(split);
    let (p, bin) = match rest.split_once('@') {
        Some((p, b)) => (p, Some(b.parse().unwrap())),
        None => (rest, None),
    };
    let p: f64 = if p.starts_with('.') {
        format!("0{p}")
    } else {
        p.to_string()
    }
    .parse()
    .unwrap();
    (full_name(name), p, bin)
}

/// The sub-policies listed after `NAME (25):` up to the next blank line.
fn table(text: &str, name: &str) -> Vec<[(&'static str, f64, Option<usize>); 2]> {
    let start = text.find(&format!("{name} (25):")).unwrap() + name.len() + 6;
    let body = &text[start..];
    let body = &body[..body.find("\n\n").unwrap_or(body.len())];
    body.split('|')
        .map(|pair| {
            let (a, b) = pair.trim().split_once('+').unwrap();
            [parse_op(a.trim()), parse_op(b.trim())]
        })
        .collect()
}

#[test]
fn policy_tables_match_tricks_md_entry_by_entry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/autoaugment_tables.txt")).unwrap();
    if let Ok(reference) = std::fs::read_to_string(root.join("../shared/reference/TRICKS.md")) {
        assert!(
            reference.contains(&text),
            "tests/fixtures/autoaugment_tables.txt differs from TRICKS.md"
        );
    }
    for (name, key) in [("IMAGENET", "imagenet"), ("CIFAR10", "cifar10"), ("SVHN", "svhn")] {
        let reference = table(&text, name);
        let ours = autoaugment_table(key).unwrap();
        assert_eq!(reference.len(), 25, "{name}");
        for (i, (r, o)) in reference.iter().zip(ours.iter()).enumerate() {
            for k in 0..2 {
                let (op, p, bin) = o[k];
                assert_eq!((op.name(), p, bin), r[k], "{name} sub-policy {i}, op {k}");
            }
        }
    }
}
