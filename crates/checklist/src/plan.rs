//! The plan: which one-factor variants run around the baseline, and the trials (variant x seed)
//! that make it up.
//!
//! The default plan is the article's checklist (its "Tricks Testing Checklist" and summary table) as far as this build's
//! trainer supports it; the extended plan adds the "future posts" tricks. A recipe's
//! `[checklist.factors]` adds factors or replaces built-in ones, and `checklist.skip` drops them.
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::{OptimName, PlanKind, Recipe, Regime, TUNE_SEED_OFFSET};
use darkmagic_data::fingerprint::Fingerprint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One variant: a factor, a name, and the fields it changes (dotted keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub factor: String,
    pub name: String,
    pub overrides: toml::Table,
}

impl Variant {
    fn new(factor: &str, name: &str, overrides: &[(&str, toml::Value)]) -> Self {
        Variant {
            factor: factor.into(),
            name: name.into(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        }
    }

    /// `factor=name`, the label used in reports and directory names.
    pub fn label(&self) -> String {
        format!("{}={}", self.factor, self.name)
    }
}

/// The arm of the comparison a trial belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arm {
    Baseline,
    Variant(Variant),
    /// The baseline plus every variant that helped (one per factor).
    Combined {
        variants: Vec<Variant>,
    },
}

impl Arm {
    pub fn label(&self) -> String {
        match self {
            Arm::Baseline => "baseline".into(),
            Arm::Variant(v) => v.label(),
            Arm::Combined { .. } => "combined".into(),
        }
    }

    /// The arm's factor and variant, as the HParams table and MLflow show them: `baseline`
    /// twice for the baseline, `combined` and the variants it takes for the combined recipe.
    pub fn factor_variant(&self) -> (String, String) {
        match self {
            Arm::Baseline => ("baseline".into(), "baseline".into()),
            Arm::Variant(v) => (v.factor.clone(), v.name.clone()),
            Arm::Combined { variants } => {
                let parts: Vec<String> = variants.iter().map(Variant::label).collect();
                ("combined".into(), parts.join(", "))
            }
        }
    }

    /// All overrides of the arm, merged in order.
    pub fn overrides(&self) -> toml::Table {
        match self {
            Arm::Baseline => toml::Table::new(),
            Arm::Variant(v) => v.overrides.clone(),
            Arm::Combined { variants } => variants.iter().flat_map(|v| v.overrides.clone()).collect(),
        }
    }
}

/// One training run of the checklist: an arm with one seed, in its own run directory.
/// Stored as `trial.json` in that directory, so a report can be rebuilt from run dirs alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    pub arm: Arm,
    /// 0-based index of the seed; the recipe's seed is `baseline seed + seed_index` (tuning
    /// runs: `baseline seed + TUNE_SEED_OFFSET + seed_index`).
    pub seed_index: usize,
    pub seed: u64,
    /// Path relative to the checklist root.
    pub dir: PathBuf,
    /// Tuned nuisance values on top of the arm's overrides: a tuning run's candidate, or the
    /// candidate chosen for the arm's seeds.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub tuned: toml::Table,
    /// For a tuning run, the index of its candidate (`checklist.tune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<usize>,
    /// Epochs in place of the recipe's: the combined recipe's confirmation at
    /// `checklist.confirm_epochs`; None: the recipe's `train.epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// The data set's fingerprint when the trial was last started (None for the embedded digits,
    /// and in records written before fingerprints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Fingerprint>,
    /// The fingerprint of the files an external trainer's command names (its scripts) when the
    /// trial was last started; None for darkmagic's own training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Fingerprint>,
    /// The digest of the checklist settings the trial was last started under
    /// (`design_record::settings_digest`); None in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
}

impl Trial {
    pub fn new(arm: Arm, baseline_seed: u64, seed_index: usize) -> Self {
        let dir = Path::new("trials")
            .join(dir_name(&arm.label()))
            .join(format!("seed-{seed_index}"));
        Trial {
            arm,
            seed_index,
            seed: baseline_seed + seed_index as u64,
            dir,
            tuned: toml::Table::new(),
            tune: None,
            epochs: None,
            data: None,
            code: None,
            settings: None,
        }
    }

    /// The tuning run of `arm`'s candidate number `candidate` (`values`) on tuning seed
    /// `seed_index`, in `trials/<arm>/tune-<candidate>-seed-<k>`.
    pub fn tuning(arm: Arm, baseline_seed: u64, candidate: usize, values: toml::Table, seed_index: usize) -> Self {
        let dir = Path::new("trials")
            .join(dir_name(&arm.label()))
            .join(format!("tune-{candidate}-seed-{seed_index}"));
        Trial {
            dir,
            tuned: values,
            tune: Some(candidate),
            ..Trial::new(arm, baseline_seed + TUNE_SEED_OFFSET, seed_index)
        }
    }

    /// The trial's name in progress lines and MLflow: `mixup=on seed 1`, `baseline tune 2 seed 0`.
    pub fn name(&self) -> String {
        match self.tune {
            Some(c) => format!("{} tune {c} seed {}", self.arm.label(), self.seed_index),
            None => format!("{} seed {}", self.arm.label(), self.seed_index),
        }
    }

    /// The trial's recipe: the baseline with the arm's overrides, the tuned values, the trial's
    /// epochs and seed, without the checklist section (a trial is a plain training run).
    pub fn recipe(&self, baseline: &Recipe) -> Result<Recipe> {
        let mut overrides = self.arm.overrides();
        overrides.extend(self.tuned.clone());
        if let Some(e) = self.epochs {
            overrides.insert("train.epochs".into(), toml::Value::Integer(e as i64));
        }
        let mut r = baseline.with_overrides(&overrides)?;
        r.seed = self.seed;
        r.checklist = Default::default();
        Ok(r)
    }
}

/// The tuning candidates of `arm` (`checklist.tune`): tables of values, one per combination of
/// the fields' candidates, in order (the last field varies fastest); a variant's own candidates
/// (`tune.variants`) replace `fields`, also in a combined recipe that includes it. A multiplier applies to the
/// arm's own value, rounded for an integer field. Empty when nothing is tuned.
pub fn candidates(baseline: &Recipe, arm: &Arm) -> Result<Vec<toml::Table>> {
    let t = &baseline.checklist.tune;
    // The combined recipe takes the candidates of the first of its variants that has its own
    // (Adam's learning rates when it includes optimizer=adam).
    let own = |v: &Variant| t.variants.get(&v.label());
    let grid = match arm {
        Arm::Variant(v) => own(v),
        Arm::Combined { variants } => variants.iter().find_map(own),
        Arm::Baseline => None,
    }
    .unwrap_or(&t.fields);
    if grid.is_empty() {
        return Ok(Vec::new());
    }
    let recipe = baseline.with_overrides(&arm.overrides())?;
    let mut out = vec![toml::Table::new()];
    for (field, factors) in grid {
        let own = recipe.get(field);
        let values: Vec<toml::Value> = factors
            .iter()
            .map(|&c| match (&own, t.absolute) {
                (Some(toml::Value::Integer(_)), true) => toml::Value::Integer(c.round() as i64),
                (Some(toml::Value::Integer(i)), false) => toml::Value::Integer((*i as f64 * c).round() as i64),
                // 12 significant digits: 0.1 x 3 is 0.3, not 0.30000000000000004.
                (Some(toml::Value::Float(x)), false) => {
                    toml::Value::Float(format!("{:.11e}", x * c).parse().expect("a formatted float"))
                }
                _ => toml::Value::Float(c),
            })
            .collect();
        out = out
            .into_iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut t = base.clone();
                    t.insert(field.clone(), v.clone());
                    t
                })
            })
            .collect();
    }
    for c in &out {
        recipe
            .with_overrides(c)
            .map_err(|e| Error::recipe(format!("checklist.tune ({})", arm.label()), e.to_string()))?;
    }
    Ok(out)
}

/// A directory name from a label: letters, digits and `.=-_` kept, anything else `_`.
fn dir_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".=-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The variants of `baseline`'s checklist: the built-in plan with the recipe's own factors
/// added or replacing built-in ones, minus the factors `skip` names (of either kind). Variants identical to the baseline are dropped.
/// Every variant's recipe is validated; an error names the factor.
pub fn variants(baseline: &Recipe) -> Result<Vec<Variant>> {
    planned(baseline).map(|(variants, _)| variants)
}

/// The variants of the recipe's own factors (`[checklist.factors]`) left out for equalling the
/// baseline, by label: `--dry-run` names them rather than drop them unsaid.
pub fn left_out(baseline: &Recipe) -> Result<Vec<String>> {
    planned(baseline).map(|(_, equal)| equal)
}

/// [`variants`], and [`left_out`]'s labels.
fn planned(baseline: &Recipe) -> Result<(Vec<Variant>, Vec<String>)> {
    let cfg = &baseline.checklist;
    let mut out: Vec<Variant> = built_in(baseline)?;
    for name in &cfg.skip {
        if !out.iter().any(|v| &v.factor == name) && !cfg.factors.contains_key(name) {
            let mut known: Vec<String> = factor_names(&out);
            known.extend(
                cfg.factors
                    .keys()
                    .filter(|f| !known.contains(f))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            return Err(Error::recipe(
                "checklist.skip",
                format!("unknown factor `{name}`; the plan has {known:?}"),
            ));
        }
    }
    out.retain(|v| !cfg.skip.contains(&v.factor) && !cfg.factors.contains_key(&v.factor));
    for (factor, vs) in cfg.factors.iter().filter(|(f, _)| !cfg.skip.contains(f)) {
        for (name, overrides) in vs {
            if let Some(c) = format!("{factor}{name}").chars().find(|c| c.is_control()) {
                // Labels reach the terminal, the summaries and the run dirs' names.
                return Err(Error::recipe(
                    format!("checklist.factors.{}.{}", factor.escape_debug(), name.escape_debug()),
                    format!("factor and variant names are shown as text: no control characters (found {c:?})"),
                ));
            }
            let overrides = match baseline.external {
                Some(_) => external_overrides(factor, name, overrides)?,
                None => overrides.clone(),
            };
            out.push(Variant {
                factor: factor.clone(),
                name: name.clone(),
                overrides,
            });
        }
    }
    let (kept, same): (Vec<Variant>, Vec<Variant>) = out
        .into_iter()
        .partition(|v| v.overrides.iter().any(|(k, val)| baseline.get(k).as_ref() != Some(val)));
    let out = kept;
    let equal: Vec<String> = same
        .iter()
        .filter(|v| cfg.factors.contains_key(&v.factor))
        .map(Variant::label)
        .collect();
    if out.is_empty() {
        // A checklist without variants would run nothing and say nothing.
        let why = match equal.is_empty() {
            true => String::new(),
            false => format!("; {} equal the baseline and are left out", equal.join(", ")),
        };
        return Err(Error::recipe(
            "checklist.plan",
            format!(
                "the plan has no variants (every factor skipped, or none listed with plan = \"none\"{why}); add \
                 [checklist.factors] or another plan"
            ),
        ));
    }
    // The confirmation trains the combined recipe at confirm_epochs: a variant whose change is
    // its length would be combined and confirmed without it.
    if let (Some(e), Some(v)) = (
        cfg.confirm_epochs,
        out.iter().find(|v| v.overrides.contains_key("train.epochs")),
    ) {
        return Err(Error::recipe(
            "checklist.confirm_epochs",
            format!(
                "{e} sets the length of the combined recipe's confirmation, but `{}` changes train.epochs: its change \
                 would be confirmed without it; skip that factor or drop confirm_epochs",
                v.label()
            ),
        ));
    }
    if let Some(unknown) = cfg.tune.variants.keys().find(|l| !out.iter().any(|v| &v.label() == *l)) {
        let labels: Vec<String> = out.iter().map(Variant::label).collect();
        return Err(Error::recipe(
            format!("checklist.tune.variants.{unknown}"),
            format!("no such variant; the plan has {labels:?}"),
        ));
    }
    for (i, v) in out.iter().enumerate() {
        baseline
            .with_overrides(&v.overrides)
            .map_err(|e| Error::recipe(format!("checklist.factors.{}.{}", v.factor, v.name), e.to_string()))?;
        let dir = dir_name(&v.label());
        if let Some(other) = out[..i].iter().find(|o| dir_name(&o.label()) == dir) {
            return Err(Error::recipe(
                format!("checklist.factors.{}", v.factor),
                format!(
                    "variants `{}` and `{}` would share the run directory trials/{dir}; rename one (letters, digits and `.=-_` are kept, anything else becomes `_`)",
                    other.label(),
                    v.label()
                ),
            ));
        }
    }
    Ok((out, equal))
}

/// The built-in variants `checklist.plan` names, checked against the trainer: `default` and
/// `extended` vary darkmagic's own fields, `timm` the flags of timm's `train.py`.
fn built_in(baseline: &Recipe) -> Result<Vec<Variant>> {
    let external = baseline.external.is_some();
    let wrong = |message: &str| Err(Error::recipe("checklist.plan", message));
    let c = &baseline.checklist;
    match (c.plan, external) {
        (PlanKind::None, _) if c.teacher.is_some() || c.pretrained.is_some() => {
            let key = if c.teacher.is_some() {
                "checklist.teacher"
            } else {
                "checklist.pretrained"
            };
            Err(Error::recipe(
                key,
                "adds its variant to the default and extended plans; with plan = \"none\", list it in [checklist.factors]",
            ))
        }
        (PlanKind::None, _) => Ok(Vec::new()),
        (PlanKind::Default, false) => Ok(default_plan(baseline)),
        (PlanKind::Extended, false) => Ok([default_plan(baseline), extended_extra(baseline)].concat()),
        (PlanKind::Timm, true) => Ok(timm_plan(baseline)),
        (PlanKind::Timm, false) => wrong("`timm` varies the flags of timm's train.py; it needs an [external] trainer"),
        (_, true) => wrong(
            "the default and extended plans vary darkmagic's own recipe fields, which an external trainer does not read; use `timm` (timm's train.py) or `none` with your own [checklist.factors] of flags",
        ),
    }
}

/// A variant of an external trainer as recipe overrides: `"--flag" = value` sets (or with
/// `true`/`false` adds or removes) one of its flags, `"env.NAME" = "value"` an environment
/// variable; `external.*`, `train.epochs` and `seed` are taken as they are. Other darkmagic
/// fields mean nothing to an external trainer: an error names the variant and the key.
fn external_overrides(factor: &str, name: &str, overrides: &toml::Table) -> Result<toml::Table> {
    overrides
        .iter()
        .map(|(k, v)| {
            let key = if k.starts_with('-') {
                format!("external.args.{k}")
            } else if let Some(var) = k.strip_prefix("env.") {
                format!("external.env.{var}")
            } else if k.starts_with("external.") || k == "train.epochs" || k == "seed" {
                k.clone()
            } else {
                return Err(Error::recipe(
                    format!("checklist.factors.{factor}.{name}"),
                    format!(
                        "`{k}` is a darkmagic field, which an external trainer does not read; map the variant to the trainer's flags (\"--flag\" = value) or environment (\"env.NAME\" = \"value\")"
                    ),
                ));
            };
            Ok((key, v.clone()))
        })
        .collect()
}

/// The article's checklist as flags of timm's `train.py` (timm 1.0), relative to the baseline's
/// flags: LR regime (`--sched step` with a decay every third of the epochs, `cosine`),
/// optimizer (`--opt momentum` without Nesterov, `adam` at lr 1e-3), weight decay x10 and
/// /10, augmentation (AutoAugment `original`, RandAugment, or colour jitter alone), label
/// smoothing 0 and 0.2, and mixup 0.2. What timm cannot express is in [`timm_dropped`].
fn timm_plan(b: &Recipe) -> Vec<Variant> {
    let args = &b.external.as_ref().expect("timm plan of an external trainer").args;
    let arg = |flag: &str| args.get(flag).cloned();
    // timm's defaults where the baseline leaves a flag out.
    let wd = arg("--weight-decay").and_then(|v| v.as_float()).unwrap_or(2e-5);
    let decay_epochs = (b.train.epochs as f64 / 3.0).ceil().max(1.0);
    let aa = arg("--aa").and_then(|v| v.as_str().map(String::from));
    let mut plan = vec![
        Variant::new(
            "lr_regime",
            "step",
            &[
                ("--sched", s("step")),
                ("--decay-epochs", f(decay_epochs)),
                ("--decay-rate", f(0.1)),
            ],
        ),
        Variant::new("lr_regime", "cosine", &[("--sched", s("cosine"))]),
        Variant::new("optimizer", "momentum", &[("--opt", s("momentum"))]),
        Variant::new("optimizer", "adam", &[("--opt", s("adam")), ("--lr", f(1e-3))]),
        Variant::new("weight_decay", "10x", &[("--weight-decay", f(wd * 10.0))]),
        Variant::new("weight_decay", "0.1x", &[("--weight-decay", f(wd / 10.0))]),
        Variant::new("augmentation", "autoaugment", &[("--aa", s("original"))]),
        Variant::new("augmentation", "randaugment", &[("--aa", s("rand-m9-mstd0.5"))]),
        Variant::new(
            "augmentation",
            "color_jitter",
            &[("--aa", toml::Value::Boolean(false)), ("--color-jitter", f(0.4))],
        ),
        Variant::new("label_smoothing", "0", &[("--smoothing", f(0.0))]),
        Variant::new("label_smoothing", "0.2", &[("--smoothing", f(0.2))]),
        Variant::new("mixup", "on", &[("--mixup", f(0.2))]),
    ];
    if aa.is_none() {
        plan.retain(|v| v.label() != "augmentation=color_jitter");
    }
    if arg("--sched").is_none() {
        // timm's default scheduler is cosine.
        plan.retain(|v| v.label() != "lr_regime=cosine");
    }
    for v in &mut plan {
        v.overrides = v
            .overrides
            .iter()
            .map(|(k, val)| (format!("external.args.{k}"), val.clone()))
            .collect();
    }
    plan
}

/// The article's factors the `timm` plan leaves out, and why; printed by `--dry-run`.
pub fn timm_dropped() -> &'static [&'static str] {
    &[
        "wd_schedule: timm's train.py has no weight-decay schedule",
        "se, downscale_activation: architecture factors; map them to models with [checklist.factors] (e.g. \"--model\" = \"seresnet18\")",
        "pretraining: timm's --pretrained downloads weights, which darkmagic never does; map it to --initial-checkpoint with [checklist.factors]",
    ]
}

/// The factors in plan order, each once.
pub fn factor_names(variants: &[Variant]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for v in variants {
        if !names.contains(&v.factor) {
            names.push(v.factor.clone());
        }
    }
    names
}

fn s(v: &str) -> toml::Value {
    toml::Value::String(v.into())
}

fn f(v: f64) -> toml::Value {
    toml::Value::Float(v)
}

/// The article's 15-run checklist: pretraining only when `checklist.pretrained` names a weights
/// file (nothing is downloaded). Each factor lists the article's recommendation (the recipe's
/// default: cosine-power annealing, Nesterov SGD, label smoothing 0.1, leaky-ReLU downscaling,
/// AutoAugment) and its alternatives; the one the baseline already uses drops out in
/// [`variants`], so a tuned baseline is tested against the alternatives and a plain one against
/// the article's recommendations.
fn default_plan(b: &Recipe) -> Vec<Variant> {
    let wd = b.optim.weight_decay;
    let mut plan = Vec::new();
    if b.schedule.regime != Regime::Cosine {
        // Against a plain cosine baseline the plan has tried step decay only, and keeps to that
        // so that its checklists resume (results/fashion-mnist).
        plan.push(Variant::new(
            "lr_regime",
            "cosine_power",
            &[("schedule.regime", s("cosine_power"))],
        ));
    }
    plan.extend([
        Variant::new("lr_regime", "step", &[("schedule.regime", s("step"))]),
        Variant::new("lr_regime", "cosine", &[("schedule.regime", s("cosine"))]),
    ]);
    if b.optim.name == OptimName::Sgd {
        // Plain momentum against Nesterov's, whichever the baseline does not use.
        plan.push(Variant::new(
            "optimizer",
            if b.optim.nesterov { "momentum" } else { "nesterov" },
            &[("optim.nesterov", toml::Value::Boolean(!b.optim.nesterov))],
        ));
    }
    plan.extend([
        Variant::new("optimizer", "adam", &[("optim.name", s("adam")), ("optim.lr", f(1e-3))]),
        Variant::new("weight_decay", "10x", &[("optim.weight_decay", f(wd * 10.0))]),
        Variant::new("weight_decay", "0.1x", &[("optim.weight_decay", f(wd / 10.0))]),
        Variant::new(
            "augmentation",
            "autoaugment",
            &[("augment.policy", s("autoaugment_imagenet"))],
        ),
        Variant::new("augmentation", "color_jitter", &[("augment.policy", s("color_jitter"))]),
        Variant::new("wd_schedule", "linear", &[("schedule.wd_policy", s("linear"))]),
        Variant::new("label_smoothing", "0.1", &[("loss.label_smoothing", f(0.1))]),
        Variant::new("label_smoothing", "0", &[("loss.label_smoothing", f(0.0))]),
        Variant::new("label_smoothing", "0.2", &[("loss.label_smoothing", f(0.2))]),
        Variant::new("mixup", "on", &[("augment.mixup_alpha", f(0.2))]),
        Variant::new(
            "se",
            if b.model.se { "off" } else { "on" },
            &[("model.se", toml::Value::Boolean(!b.model.se))],
        ),
        Variant::new(
            "downscale_activation",
            "leaky_relu",
            &[("model.downscale_activation", s("leaky_relu"))],
        ),
        Variant::new(
            "downscale_activation",
            "relu",
            &[("model.downscale_activation", s("relu"))],
        ),
        Variant::new(
            "downscale_activation",
            "swish",
            &[("model.downscale_activation", s("swish"))],
        ),
    ]);
    if let Some(t) = &b.checklist.teacher {
        plan.push(Variant::new(
            "distillation",
            "on",
            &[("loss.distill_teacher", s(&t.to_string_lossy()))],
        ));
    }
    if let Some(w) = &b.checklist.pretrained {
        plan.push(Variant::new(
            "pretraining",
            "on",
            &[("model.init", s(&w.to_string_lossy()))],
        ));
    }
    plan
}

/// Tricks the article left "for future posts" and their usual companions, as far as this build
/// supports them: batch size (with the linear LR scaling rule, lr proportional to batch),
/// Muon, the whitened stem, Lookahead and the alternating flip (the CIFAR-10 speedruns'), auxiliary loss, crop scheme (random-resized crop), drop path, attention pooling, CutMix,
/// CutOut, RandAugment, EMA, test-time augmentation (horizontal flip, and with one-pixel
/// translations), and for the ResNets
/// ResNet-D and anti-aliased downsampling (BlurPool).
fn extended_extra(b: &Recipe) -> Vec<Variant> {
    let stages = b.model.arch.stages() as i64;
    let mut out = vec![
        Variant::new(
            "aux_loss",
            "on",
            &[("model.aux_stage", toml::Value::Integer(stages - 1))],
        ),
        Variant::new(
            "crop",
            "random_resized",
            &[
                ("augment.random_resized_crop", toml::Value::Boolean(true)),
                ("augment.rrc_scale", toml::Value::Array(vec![f(0.35), f(1.0)])),
            ],
        ),
        Variant::new("drop_path", "0.1", &[("model.drop_path_rate", f(0.1))]),
        Variant::new("pool", "attention", &[("model.pool", s("attention"))]),
        Variant::new("cutmix", "on", &[("augment.cutmix_alpha", f(1.0))]),
        Variant::new("cutout", "on", &[("augment.cutout_fraction", f(0.5))]),
        Variant::new("randaugment", "on", &[("augment.policy", s("randaugment"))]),
        Variant::new("ema", "on", &[("train.ema_decay", f(0.999))]),
        Variant::new(
            "whiten_stem",
            "on",
            &[("model.whiten_stem", toml::Value::Boolean(true))],
        ),
        // Muon with AdamW for the rest share one learning rate and a decoupled weight decay:
        // AdamW's usual 0.05, and a rate that trained the digits best of 0.005, 0.02 and 0.05.
        Variant::new(
            "optimizer",
            "muon",
            &[
                ("optim.name", s("muon")),
                ("optim.lr", f(0.02)),
                ("optim.weight_decay", f(0.05)),
            ],
        ),
        // The paper's k = 5 and alpha = 0.5 (Zhang et al. 2019).
        Variant::new(
            "lookahead",
            "on",
            &[
                ("optim.lookahead_k", toml::Value::Integer(5)),
                ("optim.lookahead_alpha", f(0.5)),
            ],
        ),
        Variant::new("tta", "flip", &[("augment.tta_flip", toml::Value::Boolean(true))]),
        Variant::new(
            "tta",
            "flip_translate",
            &[
                ("augment.tta_flip", toml::Value::Boolean(true)),
                ("augment.tta_translate", toml::Value::Boolean(true)),
            ],
        ),
    ];
    // The speedruns' derandomized flip, where the baseline flips at random.
    if b.augment.hflip && b.augment.hflip_mode != darkmagic_base::recipe::FlipMode::Alternating {
        out.push(Variant::new(
            "flip",
            "alternating",
            &[("augment.hflip_mode", s("alternating"))],
        ));
    }
    if b.model.arch.is_resnet() {
        out.extend([
            Variant::new("resnet_d", "on", &[("model.resnet_d", toml::Value::Boolean(true))]),
            Variant::new("blur_pool", "on", &[("model.blur_pool", toml::Value::Boolean(true))]),
        ]);
    }
    let (bs, lr) = (b.train.batch_size as i64, b.optim.lr);
    out.push(Variant::new(
        "batch_size",
        "2x",
        &[
            ("train.batch_size", toml::Value::Integer(bs * 2)),
            ("optim.lr", f(lr * 2.0)),
        ],
    ));
    if bs >= 2 {
        out.push(Variant::new(
            "batch_size",
            "0.5x",
            &[
                ("train.batch_size", toml::Value::Integer(bs / 2)),
                ("optim.lr", f(lr / 2.0)),
            ],
        ));
    }
    out
}

#[cfg(test)]
mod tests;
