//! The embedded default dataset: scikit-learn's `digits.csv.gz`, 1797 8x8 grayscale handwritten
//! digits in 10 classes, each pixel a count 0..16.
//!
//! Source: the test set of the UCI "Optical Recognition of Handwritten Digits" data set
//! (E. Alpaydin, C. Kaynak, 1998), licensed CC BY 4.0; as shipped in scikit-learn's wheel at
//! `sklearn/datasets/data/digits.csv.gz`. See `data/README.md`.
use super::{Dataset, Images, Pixels};
use darkmagic_base::error::{Error, Result};
use std::path::Path;

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");
const SIDE: usize = 8;

/// Loads the embedded digits; pixel counts 0..16 are scaled to 0..255.
pub fn load() -> Result<Dataset> {
    let path = Path::new("<embedded>/digits.csv.gz");
    let text = super::maybe_gunzip(path, DIGITS_CSV_GZ.to_vec())?;
    let train = parse_csv(path, &String::from_utf8_lossy(&text))?;
    Ok(Dataset {
        format: "digits (embedded, 8x8 gray)".into(),
        classes: (0..10).map(|d| d.to_string()).collect(),
        train,
        test: None,
    })
}

/// Parses rows of 64 pixel counts (0..16) followed by a label (0..9).
fn parse_csv(path: &Path, text: &str) -> Result<Images> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |msg: String| Error::data(path, format!("line {}: {msg}", line_no + 1));
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != SIDE * SIDE + 1 {
            return Err(bad(format!("expected 65 fields, found {}", fields.len())));
        }
        for f in &fields[..SIDE * SIDE] {
            let v: u32 = f
                .trim()
                .parse()
                .map_err(|_| bad(format!("`{f}` is not a pixel count")))?;
            if v > 16 {
                return Err(bad(format!("pixel count {v} outside 0..16")));
            }
            pixels.push(((v * 255 + 8) / 16) as u8);
        }
        let label: i64 = fields[SIDE * SIDE]
            .trim()
            .parse()
            .map_err(|_| bad("bad label".into()))?;
        if !(0..10).contains(&label) {
            return Err(bad(format!("label {label} outside 0..9")));
        }
        labels.push(label);
    }
    Ok(Images {
        pixels: Pixels::Decoded(pixels),
        labels,
        height: SIDE,
        width: SIDE,
        channels: 1,
        names: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_digits_have_1797_images_in_10_classes() {
        let d = load().unwrap();
        assert_eq!(d.train.len(), 1797);
        assert_eq!((d.train.height, d.train.width, d.train.channels), (8, 8, 1));
        let counts = d.train.class_counts(10);
        assert_eq!(counts.iter().sum::<usize>(), 1797);
        assert!(counts.iter().all(|&c| (170..=190).contains(&c)), "{counts:?}");
        // First row of the CSV: 0,0,5,13,9,1,0,0,... label 0.
        assert_eq!(&d.train.image(0)[..4], &[0, 0, 80, 207]);
        assert_eq!(d.train.labels[0], 0);
    }

    #[test]
    fn bad_row_names_the_line() {
        let e = parse_csv(Path::new("x.csv"), "1,2,3\n").unwrap_err().to_string();
        assert!(
            e.contains("x.csv") && e.contains("line 1") && e.contains("65 fields"),
            "{e}"
        );
    }
}
