//! The recipe `darkmagic checklist` runs when it is given none: the newcomer's first checklist.
//!
//! A plain recipe (SGD with plain momentum, step decay, no augmentation, no label smoothing, no
//! squeeze-and-excitation, ReLU: what a repository without the article's tricks does), so that
//! the checklist has something to find: on a quick subset of Fashion-MNIST
//! (`recipes/first-run.toml`) where it is installed, else on the embedded digits
//! (`recipes/first-run-digits.toml`). The files are compiled in; they are ordinary recipes.
use super::*;

/// Where the first-run recipe comes from, as the checklist says it.
pub const FASHION_MNIST_FILE: &str = "recipes/first-run.toml";
pub const DIGITS_FILE: &str = "recipes/first-run-digits.toml";
const FASHION_MNIST: &str = include_str!("../../../../recipes/first-run.toml");
const DIGITS: &str = include_str!("../../../../recipes/first-run-digits.toml");

/// The first-run recipe with `overrides` applied, and the file it comes from: Fashion-MNIST's
/// when its folder (the recipe's `data.path`) exists, the digits' otherwise.
pub fn first_run(overrides: &[String]) -> Result<(Recipe, &'static str)> {
    let fashion = parse(FASHION_MNIST, &[])?;
    let present = fashion.data.path.as_deref().is_some_and(Path::is_dir);
    let (text, file) = if present {
        (FASHION_MNIST, FASHION_MNIST_FILE)
    } else {
        (DIGITS, DIGITS_FILE)
    };
    Ok((parse(text, overrides)?, file))
}

fn parse(text: &str, overrides: &[String]) -> Result<Recipe> {
    let mut table: toml::Table = text.parse().expect("the first-run recipes are valid TOML");
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    Recipe::from_table(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_first_run_recipes_are_plain_and_differ_only_in_data() {
        let fashion = parse(FASHION_MNIST, &[]).unwrap();
        let digits = parse(DIGITS, &[]).unwrap();
        for r in [&fashion, &digits] {
            assert_eq!(r.schedule.regime, Regime::Step);
            assert!(!r.optim.nesterov && !r.model.se);
            assert_eq!((r.loss.label_smoothing, r.augment.policy), (0.0, AugPolicy::None));
            assert_eq!(r.model.downscale_activation, Activation::Relu);
        }
        assert_eq!(
            (fashion.model.clone(), fashion.optim.clone()),
            (digits.model.clone(), digits.optim.clone())
        );
        assert_eq!(
            fashion.data.path.as_deref(),
            Some(Path::new("/usr/share/datasets/fashion-mnist"))
        );
        assert_eq!(
            (fashion.data.train_subset, fashion.data.test_subset),
            (Some(8000), Some(2000))
        );
        assert_eq!(digits.data.dataset, DatasetKind::Digits);
        // The compiled-in text is the file in recipes/ (paths from the repository root).
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert_eq!(
            std::fs::read_to_string(repo.join(FASHION_MNIST_FILE)).unwrap(),
            FASHION_MNIST
        );
        assert_eq!(std::fs::read_to_string(repo.join(DIGITS_FILE)).unwrap(), DIGITS);
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let (r, _) = first_run(&["train.epochs=3".into()]).unwrap();
        assert_eq!(r.train.epochs, 3);
        let e = first_run(&["train.epoch=3".into()]).unwrap_err().to_string();
        assert!(e.contains("train.epoch"), "{e}");
    }
}
