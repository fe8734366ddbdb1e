//! A trained classifier, ready to evaluate or predict: the model of a run directory (its
//! checkpoint's raw or EMA weights) or of a weights file (a torchvision-style state dict), with
//! what it expects as input ([`ModelSpec`]) and the recipe's evaluation settings.
use super::{Evaluation, Evaluator};
use crate::data::{self, Images};
use crate::error::{Error, Result};
use crate::loader::Normalizer;
use crate::model::{Net, import};
use crate::recipe::Recipe;
use crate::rundir;
use crate::runtime::{self, amp};
use rundir::{ModelSpec, RunDir};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Which images of a data set to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// The validation split, drawn as training drew it (`data.val_fraction`, `seed`).
    Val,
    /// The data set's own test split (IDX `t10k`, CIFAR `test_batch`, a folder's `val/` or `test/`).
    Test,
    /// The training split (what remains after the validation split is held out).
    Train,
    /// Every image of the training files, without a validation split held out.
    All,
}

pub struct Classifier {
    pub spec: ModelSpec,
    /// The recipe whose evaluation transform, batch size, device and numerics apply.
    pub recipe: Recipe,
    device: Device,
    amp: Option<Kind>,
    norm: Normalizer,
    net: Net,
    /// The variables of `net`, which the weights are loaded into.
    vs: VarStore,
}

impl Classifier {
    /// The model of the run in `dir`: its `recipe.toml` with `overrides` applied, its
    /// `model.json` (or, for a run dir without one, the same figures computed from the run's
    /// data), and the weights of its checkpoint (the EMA weights with `ema`).
    pub fn from_run_dir(dir: &Path, ema: bool, overrides: &[String]) -> Result<Classifier> {
        let run = RunDir::open(dir);
        let bad = |file: &str, message: &str| Error::RunDir {
            path: run.file(file),
            message: message.into(),
        };
        if !dir.is_dir() {
            return Err(Error::RunDir {
                path: dir.to_path_buf(),
                message: "not a folder (expected a run directory written by `darkmagic train`)".into(),
            });
        }
        let recipe_path = run.file(rundir::RECIPE);
        if !recipe_path.is_file() {
            return Err(bad(rundir::RECIPE, "missing: not a darkmagic run directory"));
        }
        // A finished run's result names the recipe it ran: an edited recipe.toml (another split,
        // another model) would evaluate something the weights were not trained as.
        let result = run.read_result()?;
        let sealed = result.as_ref().is_some_and(|r| r.recipe_digest.is_some());
        let checkpoint = run.file(rundir::CHECKPOINT);
        if std::fs::symlink_metadata(&checkpoint).is_err() {
            let why = match result.is_some_and(|r| r.device == "external") {
                true => {
                    "absent: this run trained with an external trainer ([external] in its recipe), whose weights \
                     darkmagic does not hold; evaluate it with that trainer's own tools"
                }
                false => {
                    "missing: the run has no trained weights yet (it writes a checkpoint after each epoch; see train.log)"
                }
            };
            return Err(bad(rundir::CHECKPOINT, why));
        }
        crate::files::check_regular(&checkpoint, u64::MAX)?;
        let recipe = Recipe::load(Some(&recipe_path), overrides)?;
        if ema && recipe.train.ema_decay == 0.0 {
            return Err(Error::flag(
                "--ema",
                format!("the run in {} kept no EMA weights (train.ema_decay = 0)", dir.display()),
            ));
        }
        let spec = match run.read_spec()? {
            Some(s) if s.digest.is_none() => legacy_spec(&run, s, &recipe_path, sealed)?,
            Some(s) => s,
            None if sealed => {
                // The classes' names and order and the normalisation are the training data's:
                // taken from the data set as it is now they may be another model's.
                return Err(bad(
                    rundir::MODEL,
                    "is missing beside a result.json that shows a darkmagic that writes it trained this run: it \
                     holds the class names and normalisation the model was trained with; restore it",
                ));
            }
            None => spec_from_data(&Recipe::load(Some(&recipe_path), &[])?)?,
        };
        let c = Classifier::new(recipe, spec)?;
        import::load_exact(&c.vs, &checkpoint, Some(if ema { "ema." } else { "model." }))?;
        Ok(c)
    }

    /// The model `recipe` describes with the weights of the safetensors state dict `weights`
    /// (torchvision's parameter names, or a darkmagic checkpoint); input and classes are the
    /// recipe's data set's, as training on it would have them.
    pub fn from_weights(weights: &Path, recipe: Recipe) -> Result<Classifier> {
        let spec = spec_from_data(&recipe)?;
        let c = Classifier::new(recipe, spec)?;
        import::load_exact(&c.vs, weights, None)?;
        Ok(c)
    }

    /// A model for `spec` built as `recipe` builds it, on the recipe's device, weights not loaded.
    fn new(recipe: Recipe, spec: ModelSpec) -> Result<Classifier> {
        runtime::configure_cpu(recipe.train.threads);
        let device = runtime::resolve_device(recipe.train.device)?;
        let (vs, net) = crate::model::build(
            &recipe.model,
            spec.channels as i64,
            spec.classes.len() as i64,
            device,
            recipe.train.channels_last,
        );
        Ok(Classifier {
            norm: Normalizer::of(&spec),
            amp: amp::resolve(recipe.train.amp, device),
            spec,
            recipe,
            device,
            net,
            vs,
        })
    }

    /// The logits of a batch `x` already normalised for this model, without gradients, in its
    /// precision, as float32.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            amp::autocast(self.amp, self.device, || {
                tch::nn::ModuleT::forward_t(&self.net, x, false)
            })
            .to_kind(Kind::Float)
        })
    }

    /// How this classifier evaluates: the recipe's evaluation transform and settings.
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator::new(&self.net, &self.norm, &self.recipe, self.device, self.amp)
    }

    /// Evaluates on `images`, which must have the model's class count, channels and size; with
    /// `augment.tta_flip` or `tta_translate`, also with test-time augmentation.
    pub fn evaluate(&self, images: &Images) -> Result<(Evaluation, Option<Evaluation>)> {
        self.evaluator().evaluate(images, self.spec.classes.len())
    }

    /// The images of `split` of the recipe's data set, checked against the model: same class
    /// count, channels and size. Returns them and the data set's class names.
    pub fn labelled(&self, split: Split) -> Result<(Images, Vec<String>)> {
        let (images, classes) = labelled(&self.recipe, split)?;
        let s = &self.spec;
        let data_path = self
            .recipe
            .data
            .path
            .clone()
            .unwrap_or_else(|| format!("{:?}", self.recipe.data.dataset).to_lowercase().into());
        if classes.len() != s.classes.len() {
            return Err(Error::data(
                data_path,
                format!(
                    "class count: the data set has {} classes ({}); the model has {} ({})",
                    classes.len(),
                    preview(&classes),
                    s.classes.len(),
                    preview(&s.classes)
                ),
            ));
        }
        if let Some(i) = (0..classes.len()).find(|&i| classes[i] != s.classes[i]) {
            // The same count of other classes would score labels against the wrong names.
            return Err(Error::data(
                data_path,
                format!(
                    "classes: the data set's class {i} is `{}`, the model's `{}` (data: {}; model: {})",
                    classes[i].escape_debug(),
                    s.classes[i].escape_debug(),
                    preview(&classes),
                    preview(&s.classes)
                ),
            ));
        }
        let (c, h, w) = (images.channels, images.height, images.width);
        if (c, h, w) != (s.channels, s.height, s.width) {
            return Err(Error::data(
                data_path,
                format!(
                    "images are {c}x{h}x{w} (channels x height x width); the model takes {}x{}x{} (set data.image_size for a folder)",
                    s.channels, s.height, s.width
                ),
            ));
        }
        if images.is_empty() {
            // Scoring nothing would print "top-1 0.00%", a figure no model earned.
            let hint = match split {
                Split::Val => format!(
                    " (data.val_fraction = {} of each class, rounded)",
                    self.recipe.data.val_fraction
                ),
                _ => String::new(),
            };
            return Err(Error::flag(
                "--split",
                format!(
                    "{}: the split holds no images{hint}; use another split",
                    format!("{split:?}").to_lowercase()
                ),
            ));
        }
        Ok((images, classes))
    }
}

/// The images of `split` of `recipe`'s data set, and its class names.
fn labelled(recipe: &Recipe, split: Split) -> Result<(Images, Vec<String>)> {
    let d = data::load(&recipe.data, recipe.augment.interpolation)?;
    let classes = d.classes.clone();
    let images = match split {
        Split::All => d.train,
        Split::Test => d.test.ok_or_else(|| {
            Error::flag(
                "--split",
                format!(
                    "test: the {} data set has no test split; use val, train or all",
                    d.format
                ),
            )
        })?,
        Split::Val | Split::Train => {
            let s = data::split(d, recipe.data.val_fraction, recipe.seed)?;
            if split == Split::Val { s.val } else { s.train }
        }
    };
    Ok((images, classes))
}

/// The model spec training on `recipe` writes, computed from its data set.
/// A `model.json` from before its digest (`sealed_result`: the run's result says otherwise, an
/// error), held to the data set it was computed from (the run's recipe's): one that differs
/// was edited. Where the data set cannot be loaded here the
/// record is taken as written, with a warning that says so.
fn legacy_spec(run: &RunDir, spec: ModelSpec, recipe_path: &Path, sealed_result: bool) -> Result<ModelSpec> {
    if sealed_result {
        // The darkmagic that bound the result to its recipe sealed model.json too.
        return Err(Error::RunDir {
            path: run.file(rundir::MODEL),
            message: "carries no digest, but result.json shows a darkmagic that seals it wrote this run: the digest \
                      was deleted by hand; restore it"
                .into(),
        });
    }
    let from_data = Recipe::load(Some(recipe_path), &[]).and_then(|r| spec_from_data(&r));
    match from_data {
        Ok(data) if !data.same_as(&spec) => Err(Error::RunDir {
            path: run.file(rundir::MODEL),
            message: "carries no digest and differs from what the run's data set gives (classes, input size, mean \
                      or std): it was edited; delete it to have them taken from the data set"
                .into(),
        }),
        Ok(_) => Ok(spec),
        Err(e) => {
            eprintln!(
                "warning: {} carries no digest (written before darkmagic sealed it) and the data set is not here to \
                 check it against ({e}): its normalisation is taken as written",
                run.file(rundir::MODEL).display()
            );
            Ok(spec)
        }
    }
}

fn spec_from_data(recipe: &Recipe) -> Result<ModelSpec> {
    data::load_splits(recipe)?.model_spec(recipe)
}

/// The first class names, for messages.
pub(crate) fn preview(names: &[String]) -> String {
    let head: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = if names.len() > 5 { ", ..." } else { "" };
    format!("{}{more}", head.join(", "))
}
