//! Class labels as the dataset formats that store them per sample give them: an integer (a
//! WebDataset `.cls` member, a Hugging Face `ClassLabel` column) or a class name.
//!
//! Integers are class indices, as the models trained on them use them: the classes are the
//! format's names when it has them (Hugging Face's `ClassLabel` names), else `0` to the largest
//! label. Names are sorted into classes as `ImageFolder` sorts its folders. One data set holds
//! one kind: integers and names mixed are refused.
use darkmagic_base::error::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// The most classes integer labels may imply (`0` to the largest label).
const MAX_CLASSES: i64 = 1 << 20;

/// One sample's label.
#[derive(Clone, Debug, PartialEq)]
pub enum Label {
    Index(i64),
    Name(String),
}

/// The class names and each label's class index. `names`: the classes the format declares;
/// `origin(i)` names label `i`'s sample in errors.
pub fn resolve(
    labels: &[Label],
    names: Option<&[String]>,
    origin: impl Fn(usize) -> PathBuf,
) -> Result<(Vec<String>, Vec<i64>)> {
    let bad = |i: usize, what: String| Err(Error::data(origin(i), what));
    match labels.first() {
        None => Ok((names.map(<[String]>::to_vec).unwrap_or_default(), Vec::new())),
        Some(Label::Index(_)) => {
            let mut index = Vec::with_capacity(labels.len());
            for (i, l) in labels.iter().enumerate() {
                match l {
                    Label::Index(v) => index.push(*v),
                    Label::Name(n) => {
                        return bad(
                            i,
                            format!("label {n:?} is a name but the first label is an integer; expected one kind"),
                        );
                    }
                }
            }
            let classes = match names {
                Some(n) => n.to_vec(),
                None => {
                    let max = index.iter().copied().max().unwrap_or(0);
                    (0..=max.clamp(0, MAX_CLASSES - 1)).map(|c| c.to_string()).collect()
                }
            };
            if let Some(i) = index.iter().position(|&v| v < 0 || v >= classes.len() as i64) {
                let range = match names {
                    Some(_) => format!(
                        "0 to {} (the {} class names the data set declares)",
                        classes.len() - 1,
                        classes.len()
                    ),
                    None => format!("0 to {}", MAX_CLASSES - 1),
                };
                return bad(i, format!("label {}; expected {range}", index[i]));
            }
            Ok((classes, index))
        }
        Some(Label::Name(_)) => {
            let mut sorted: Vec<&str> = Vec::new();
            for (i, l) in labels.iter().enumerate() {
                match l {
                    Label::Name(n) if n.is_empty() || n.chars().any(char::is_control) => {
                        return bad(
                            i,
                            format!("label {n:?}; expected a class name without control characters"),
                        );
                    }
                    Label::Name(n) => sorted.push(n),
                    Label::Index(v) => {
                        return bad(
                            i,
                            format!("label {v} is an integer but the first label is a name; expected one kind"),
                        );
                    }
                }
            }
            sorted.sort_unstable();
            sorted.dedup();
            let classes: Vec<String> = sorted.into_iter().map(String::from).collect();
            let at: HashMap<&str, i64> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as i64))
                .collect();
            let index = labels
                .iter()
                .map(|l| match l {
                    Label::Name(n) => at[n.as_str()],
                    Label::Index(_) => unreachable!("checked above"),
                })
                .collect();
            Ok((classes, index))
        }
    }
}

/// Refuses a test label no training image has (as the IDX and folder readers do): a class the
/// model never trained on would be scored as always wrong. `origin(i)` names test sample `i`.
pub fn check_test_classes(train: &[i64], test: &[i64], origin: impl Fn(usize) -> PathBuf) -> Result<()> {
    let seen: std::collections::HashSet<i64> = train.iter().copied().collect();
    match test.iter().position(|l| !seen.contains(l)) {
        Some(i) => Err(Error::data(
            origin(i),
            format!("test label {} is a class no training image has", test[i]),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(i: usize) -> PathBuf {
        PathBuf::from(format!("shard.tar:sample {i}"))
    }

    #[test]
    fn integers_are_indices_and_names_are_sorted() {
        let ints = [Label::Index(2), Label::Index(0), Label::Index(2)];
        assert_eq!(
            resolve(&ints, None, origin).unwrap(),
            (vec!["0".into(), "1".into(), "2".into()], vec![2, 0, 2])
        );
        let declared = ["cat".to_string(), "dog".into(), "eel".into()];
        assert_eq!(resolve(&ints, Some(&declared), origin).unwrap().0, declared);
        let names = [
            Label::Name("dog".into()),
            Label::Name("cat".into()),
            Label::Name("dog".into()),
        ];
        assert_eq!(
            resolve(&names, None, origin).unwrap(),
            (vec!["cat".into(), "dog".into()], vec![1, 0, 1])
        );
    }

    #[test]
    fn out_of_range_mixed_and_control_labels_name_the_sample() {
        let declared = ["cat".to_string(), "dog".into()];
        type Case<'a> = (Vec<Label>, Option<&'a [String]>, &'a str);
        let cases: Vec<Case> = vec![
            (
                vec![Label::Index(0), Label::Index(2)],
                Some(&declared),
                "sample 1: label 2; expected 0 to 1 (the 2 class names",
            ),
            (vec![Label::Index(-1)], None, "sample 0: label -1; expected 0 to"),
            (
                vec![Label::Index(0), Label::Name("a".into())],
                None,
                "sample 1: label \"a\" is a name",
            ),
            (
                vec![Label::Name("a".into()), Label::Index(0)],
                None,
                "sample 1: label 0 is an integer",
            ),
            (
                vec![Label::Name("a\nb".into())],
                None,
                "sample 0: label \"a\\nb\"; expected a class name",
            ),
        ];
        for (labels, names, expected) in cases {
            let e = resolve(&labels, names, origin).unwrap_err().to_string();
            assert!(e.contains(expected), "{expected}: {e}");
        }
    }
}
