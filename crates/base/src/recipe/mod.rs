//! The Recipe: every knob of a training run and its default, in one typed TOML document.
//!
//! Defaults are the article's baseline (its summary table; docs/tricks.md section 1): SGD with Nesterov momentum, cycles of
//! cosine power annealing with decaying amplitude and a linear warm-up, weight decay 5e-5 with 1-D
//! parameters excluded, label smoothing 0.1, AutoAugment's ImageNet policy, squeeze-and-excitation
//! on, LeakyReLU in the downscaling layers. The full field reference is `docs/recipe.md`.
//!
//! A recipe is read from TOML, then `--set key.path=value` overrides are applied, then it is
//! deserialized strictly (unknown keys are errors) and validated; every error names the key.
mod augment;
mod checklist;
mod data;
mod external;
mod first_run;
mod loss;
mod model;
mod optim;
mod overrides;
mod schedule;
mod train;

pub use augment::*;
pub use checklist::*;
pub use data::*;
pub use external::*;
pub use first_run::{DIGITS_FILE, FASHION_MNIST_FILE, first_run};
pub use loss::*;
pub use model::*;
pub use optim::*;
pub use overrides::{apply_override, set_path};
pub use schedule::*;
pub use train::*;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// Seeds model initialisation, the validation split, data order and augmentation draws.
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub optim: OptimConfig,
    pub schedule: ScheduleConfig,
    pub loss: LossConfig,
    pub augment: AugmentConfig,
    pub train: TrainConfig,
    /// What `darkmagic checklist` varies around this recipe; ignored by `darkmagic train`.
    pub checklist: ChecklistConfig,
    /// An external training script run instead of darkmagic's trainer (see `external`); the
    /// darkmagic sections then serve only `train.epochs`, `seed` and `data.path`, which the
    /// command's placeholders name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalConfig>,
}

/// Largest `data.image_size`: 4096 pixels a side (one RGB image is then 48 MiB of floats).
pub const MAX_IMAGE_SIZE: usize = 4096;
/// Largest `train.epochs`.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest `train.batch_size` and `train.eval_batch_size`.
pub const MAX_BATCH: usize = 1 << 20;
/// Largest `train.threads`.
pub const MAX_THREADS: usize = 1024;
/// Largest `seed`: a checklist's trials train from `seed` plus their seed index (and a tuning
/// offset), and every one must still be a TOML integer (at most 2^63 - 1) in its recipe.toml.
pub const MAX_SEED: u64 = 1 << 62;
/// Largest `checklist.seeds`.
pub const MAX_SEEDS: usize = 1000;
/// Largest recipe file: 1 MiB of TOML.
pub const MAX_RECIPE_BYTES: u64 = 1 << 20;
/// Largest number of tuning candidates of one arm (the product of its fields' list lengths).
pub const MAX_TUNE_CANDIDATES: usize = 1000;

impl Recipe {
    /// Reads a recipe file (or the defaults when `path` is None), applies `key.path=value`
    /// overrides, and validates the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Recipe> {
        let mut table = match path {
            Some(p) => read_table(p)?,
            None => toml::Table::new(),
        };
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        Recipe::from_table(table)
    }

    /// A recipe a run wrote into its run dir, read back. `train.stop_reference` names another
    /// run dir of the checklist that wrote it (a path that is gone once the checklist is moved
    /// or copied elsewhere): it is kept as written but, unlike in a recipe given to train, not
    /// required to exist.
    pub fn load_record(path: &Path) -> Result<Recipe> {
        let mut table = read_table(path)?;
        let reference = table
            .get_mut("train")
            .and_then(toml::Value::as_table_mut)
            .and_then(|t| t.remove("stop_reference"));
        let mut recipe = Recipe::from_table(table)?;
        if let Some(r) = reference {
            let r = r
                .as_str()
                .ok_or_else(|| Error::recipe("train.stop_reference", "expected a path"))?;
            recipe.train.stop_reference = Some(r.into());
        }
        Ok(recipe)
    }

    /// Deserializes strictly and validates; errors carry the key path.
    pub fn from_table(table: toml::Table) -> Result<Recipe> {
        let recipe: Recipe = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            // toml appends "\nin `section`", which the path already says.
            let inner = e.inner().to_string();
            let message = inner.lines().next().unwrap_or_default().to_string();
            Error::recipe(e.path().to_string(), message)
        })?;
        recipe.validate()?;
        Ok(recipe)
    }

    /// The peak learning rate: `optim.lr`, times `batch_size / 256` under the linear scaling rule.
    pub fn peak_lr(&self) -> f64 {
        match self.optim.lr_scaling {
            LrScaling::None => self.optim.lr,
            LrScaling::Linear => self.optim.lr * self.train.batch_size as f64 / 256.0,
        }
    }

    /// Optimizer steps in an epoch over `train_images` images: whole batches of
    /// `train.batch_size` (the last partial batch is dropped), at least one.
    pub fn steps_per_epoch(&self, train_images: usize) -> usize {
        (train_images / self.train.batch_size).max(1)
    }

    /// This recipe with dotted-key overrides applied (`{"optim.lr" = 0.01}`), validated.
    pub fn with_overrides(&self, overrides: &toml::Table) -> Result<Recipe> {
        let mut table = toml::Table::try_from(self).expect("a Recipe always converts to a table");
        for (key, value) in overrides {
            set_path(&mut table, key, value.clone())?;
        }
        Recipe::from_table(table)
    }

    /// The value at a dotted key, as TOML (None if the recipe has no such field set).
    pub fn get(&self, key: &str) -> Option<toml::Value> {
        let table = toml::Table::try_from(self).expect("a Recipe always converts to a table");
        let mut node = toml::Value::Table(table);
        for part in key.split('.') {
            node = node.as_table()?.get(part)?.clone();
        }
        Some(node)
    }

    /// Whether `other` trains the same run: it may differ only in where and how fast it runs
    /// (`train.threads`, `train.device`, `train.loader`, whose two paths build the same batches)
    /// and in the `[checklist]` section, which training ignores.
    pub fn same_training(&self, other: &Recipe) -> bool {
        self.as_training_of(other) == *other
    }

    /// This recipe with `other`'s settings of where and how fast it runs and of the checklist:
    /// what [`Recipe::same_training`] compares with `other` (and what an error diffs with it).
    pub fn as_training_of(&self, other: &Recipe) -> Recipe {
        let mut a = self.clone();
        a.train.threads = other.train.threads;
        a.train.device = other.train.device;
        a.train.loader = other.train.loader;
        a.checklist = other.checklist.clone();
        a
    }

    /// The first field (a dotted key, in key order) where two recipes differ, with this one's
    /// value and the other's (`none` where one lacks it): what an error names when a recipe is
    /// not the one expected.
    pub fn first_difference(&self, other: &Recipe) -> Option<(String, String, String)> {
        let (a, b) = (toml::Value::try_from(self).ok()?, toml::Value::try_from(other).ok()?);
        value_difference(&a, &b, "")
    }

    /// The resolved recipe as TOML, as written to `recipe.toml` in a run dir.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Recipe always serializes to TOML")
    }

    /// The field whose setting only the host loader runs (`train.loader = "host"`), if any:
    /// the device loader gathers, crops, flips, erases and mixes, but does not resample or run
    /// a policy, and needs the images decoded.
    pub fn host_only(&self) -> Option<&'static str> {
        if self.data.decode == Decode::PerBatch {
            Some("data.decode = \"per_batch\"")
        } else if self.augment.random_resized_crop {
            Some("augment.random_resized_crop")
        } else if self.augment.policy != AugPolicy::None {
            Some("augment.policy")
        } else {
            None
        }
    }

    /// Checks every numeric range and cross-field rule.
    pub fn validate(&self) -> Result<()> {
        if self.seed > MAX_SEED {
            return Err(Error::recipe(
                "seed",
                format!(
                    "got {}; expected 0 to {MAX_SEED} (a checklist trains from seed + its seed index, in TOML's integers)",
                    self.seed
                ),
            ));
        }
        self.data.validate()?;
        self.model.validate()?;
        self.loss.validate()?;
        self.optim.validate()?;
        self.train.validate()?;
        self.checklist.validate(|field| {
            self.get(field)
                .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                .is_some()
        })?;
        match &self.external {
            Some(e) => e.validate()?,
            // An external trainer has its own schedule; darkmagic's is not used.
            None => self.schedule.validate(self.optim.lr)?,
        }
        if let (Loader::Device, Some(field)) = (self.train.loader, self.host_only()) {
            return Err(Error::recipe(
                "train.loader",
                format!("\"device\" cannot run {field}; use \"host\" or \"auto\" (which picks the host for it)"),
            ));
        }
        if self.external.is_some() && self.checklist.early_stop {
            // Early stop compares darkmagic's own per-epoch validation accuracies.
            return Err(Error::recipe(
                "checklist.early_stop",
                "needs darkmagic's trainer: an external trainer's epochs are not compared; remove it or [external]",
            ));
        }
        self.augment.validate()
    }
}

/// Checks one number: it must be finite and satisfy `ok`.
fn check(key: &str, value: f64, ok: bool, expected: &str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else if value.is_finite() {
        Err(Error::recipe(key, format!("got {value}; expected {expected}")))
    } else {
        Err(Error::recipe(
            key,
            format!("got {value}; expected a finite number, {expected}"),
        ))
    }
}

/// Checks a count: 1 to `max`.
fn check_count(key: &str, v: usize, max: usize) -> Result<()> {
    if (1..=max).contains(&v) {
        Ok(())
    } else {
        Err(Error::recipe(key, format!("got {v}; expected 1 to {max}")))
    }
}

/// Checks a `[lo, hi]` range: 0 < lo <= hi, and hi <= `upper` when given (finite otherwise).
fn check_range(key: &str, v: [f64; 2], upper: Option<f64>) -> Result<()> {
    let [lo, hi] = v;
    if 0.0 < lo && lo <= hi && hi <= upper.unwrap_or(f64::MAX) {
        return Ok(());
    }
    let bound = upper.map_or(String::new(), |u| format!(" <= {u}"));
    Err(Error::recipe(
        key,
        format!("got {v:?}; expected [lo, hi] with 0 < lo <= hi{bound}"),
    ))
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let bytes = crate::files::read_regular(path, MAX_RECIPE_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| Error::RecipeFile {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    text.parse::<toml::Table>().map_err(|e| Error::RecipeFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The first dotted key below `at` where `a` and `b` differ (see [`Recipe::first_difference`]).
fn value_difference(a: &toml::Value, b: &toml::Value, at: &str) -> Option<(String, String, String)> {
    let show = |v: Option<&toml::Value>| v.map_or("none".to_string(), toml::Value::to_string);
    match (a, b) {
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let key = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => value_difference(p, q, &key),
                    (p, q) => Some((key, show(p), show(q))),
                }
            })
        }
        _ if a == b => None,
        _ => Some((at.to_string(), a.to_string(), b.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, overrides: &[&str]) -> Result<Recipe> {
        let mut table: toml::Table = text.parse().unwrap();
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        Recipe::from_table(table)
    }

    #[test]
    fn defaults_are_the_article_baseline() {
        let r = Recipe::default();
        r.validate().unwrap();
        assert_eq!(r.optim.name, OptimName::Sgd);
        assert!(r.optim.nesterov);
        assert_eq!(r.schedule.regime, Regime::CosinePower);
        assert_eq!(r.loss.label_smoothing, 0.1);
        assert!(r.model.se);
        assert_eq!(r.model.downscale_activation, Activation::LeakyRelu);
        assert_eq!(r.optim.weight_decay, 5e-5);
        assert_eq!(r.augment.policy, AugPolicy::AutoaugmentImagenet);
    }

    #[test]
    fn round_trips_through_toml() {
        let mut r = Recipe::default();
        r.data.mean = Some(vec![0.5]);
        r.data.std = Some(vec![0.25]);
        let back = load_str(&r.to_toml(), &[]).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn overrides_set_typed_values_and_bare_strings() {
        let r = load_str("", &["optim.name=adamw", "optim.lr=0.003", "model.se=false"]).unwrap();
        assert_eq!(r.optim.name, OptimName::Adamw);
        assert_eq!(r.optim.lr, 0.003);
        assert!(!r.model.se);
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let e = load_str("[model]\nsee = true\n", &[]).unwrap_err().to_string();
        assert!(e.contains("model"), "{e}");
        assert!(e.contains("unknown field `see`"), "{e}");
        assert!(e.contains("`se`"), "lists allowed fields: {e}");
    }

    #[test]
    fn bad_enum_value_lists_allowed_ones() {
        let e = load_str("", &["optim.name=adagrad"]).unwrap_err().to_string();
        assert!(e.contains("optim.name"), "{e}");
        assert!(
            e.contains("adagrad") && e.contains("adamw") && e.contains("lamb"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = load_str("[train]\nepochs = \"ten\"\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("recipe: `train.epochs`"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_the_key_and_range() {
        let cases = [
            ("schedule.power=0.5", "schedule.power", ">= 1"),
            ("loss.label_smoothing=1.5", "loss.label_smoothing", "[0, 1)"),
            (
                "loss.bce_target_thresh=0.2",
                "loss.bce_target_thresh",
                "needs loss.bce = true",
            ),
            ("loss.distill_weight=2", "loss.distill_weight", "[0, 1]"),
            ("loss.distill_temperature=0", "loss.distill_temperature", "> 0"),
            ("train.clip_grad=-1", "train.clip_grad", ">= 0"),
            ("augment.tta_flip=1", "augment.tta_flip", "bool"),
            (
                "checklist.tune.fields={\"optim.lr\"=[1,2,3,4,5,6,7,8,9,10,11], \"optim.momentum\"=[1,2,3,4,5,6,7,8,9,10], \"optim.weight_decay\"=[1,2,3,4,5,6,7,8,9,10]}",
                "checklist.tune.fields",
                "1100 combinations x 1 tuning seeds; expected at most 1000 tuning runs per arm",
            ),
            ("optim.lr=-1", "optim.lr", "> 0"),
            ("schedule.milestones=[0.8, 0.2]", "schedule.milestones", "ascending"),
            ("train.batch_size=0", "train.batch_size", "expected 1 to 1048576"),
            (
                "train.accumulate=3",
                "train.accumulate",
                "divisor of train.batch_size (64)",
            ),
            ("augment.rrc_scale=[0.5, 0.2]", "augment.rrc_scale", "0 < lo <= hi <= 1"),
            ("model.aux_stage=3", "model.aux_stage", "1..=2"),
            ("model.drop_path_rate=1.0", "model.drop_path_rate", "[0, 1)"),
            ("model.dropout=1.0", "model.dropout", "[0, 1)"),
            ("model.bn_momentum=0.0", "model.bn_momentum", "(0, 1]"),
            ("train.ema_decay=1.5", "train.ema_decay", "[0, 1)"),
            ("model.init=\"/no/such.safetensors\"", "model.init", "is not a file"),
            ("data.decode=\"per_batch\"", "data.decode", "needs data.image_size"),
            (
                "augment.erase_area=[0.0, 0.3]",
                "augment.erase_area",
                "0 < lo <= hi <= 1",
            ),
            ("augment.erase_ratio=[2.0, 1.0]", "augment.erase_ratio", "0 < lo <= hi"),
            ("augment.erase_count=0", "augment.erase_count", "at least 1"),
        ];
        for (o, key, expected) in cases {
            let e = load_str("", &[o]).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(expected), "{o}: {e}");
        }
    }

    #[test]
    fn mobilenet_and_efficientnet_recipes_resolve_their_own_defaults() {
        let r = load_str("[model]\narch = \"efficientnet_b0\"\n", &[]).unwrap();
        assert_eq!(r.model.arch, Arch::EfficientnetB0);
        assert_eq!(
            (r.model.se_ratio(), r.model.se_divisor(), r.model.dropout()),
            (0.25, 1, 0.2)
        );
        let r = load_str("", &["model.arch=\"mobilenet_v3_large\"", "model.se_ratio=0.5"]).unwrap();
        assert_eq!(
            (r.model.arch.stages(), r.model.se_ratio(), r.model.se_divisor()),
            (5, 0.5, 8)
        );
        assert_eq!(r.model.bn_momentum(), 0.01);
        let r = load_str("", &[]).unwrap();
        assert_eq!(
            (r.model.se_ratio(), r.model.se_divisor(), r.model.dropout()),
            (1.0 / 16.0, 8, 0.0)
        );
        assert_eq!(r.model.activation, Activation::Native);
        for (o, key) in [
            ("model.resnet_d=true", "model.resnet_d"),
            ("model.blur_pool=true", "model.blur_pool"),
        ] {
            let e = load_str("", &["model.arch=\"mobilenet_v3_small\"", o])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("applies to the ResNets"), "{e}");
        }
        let e = load_str("", &["model.arch=\"efficientnet_b0\"", "model.aux_stage=7"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1..=6"), "{e}");
        let e = load_str("", &["model.arch=\"mobilenet_v4\""]).unwrap_err().to_string();
        assert!(e.contains("mobilenet_v3_small") && e.contains("efficientnet_b0"), "{e}");
    }

    #[test]
    fn path_required_for_file_datasets() {
        let e = load_str("", &["data.dataset=idx"]).unwrap_err().to_string();
        assert!(e.contains("data.path") && e.contains("required"), "{e}");
    }

    #[test]
    fn override_into_a_value_is_an_error() {
        let e = load_str("seed = 3", &["seed.x=1"]).unwrap_err().to_string();
        assert!(e.contains("`seed`") && e.contains("not a section"), "{e}");
    }
}
