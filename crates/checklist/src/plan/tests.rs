use super::*;
use darkmagic_base::recipe::Activation;
use darkmagic_base::recipe::Regime;

#[test]
fn tuning_candidates_scale_the_arms_own_value_or_replace_it() {
    let mut b = Recipe::default();
    b.optim.lr = 0.1;
    b.checklist.tune.fields = [("optim.lr".to_string(), vec![0.3, 1.0, 3.0])].into();
    let adam = Arm::Variant(Variant::new(
        "optimizer",
        "adam",
        &[("optim.name", s("adam")), ("optim.lr", f(1e-3))],
    ));
    let lrs = |arm: &Arm, b: &Recipe| -> Vec<f64> {
        candidates(b, arm)
            .unwrap()
            .iter()
            .map(|c| c["optim.lr"].as_float().unwrap())
            .collect()
    };
    assert_eq!(lrs(&Arm::Baseline, &b), [0.03, 0.1, 0.3]);
    assert_eq!(lrs(&adam, &b), [3e-4, 1e-3, 3e-3]);
    // Per-variant candidates, absolute values.
    b.checklist.tune.variants = [(
        "optimizer=adam".to_string(),
        [("optim.lr".to_string(), vec![1e-4, 1e-2])].into(),
    )]
    .into();
    b.checklist.tune.absolute = true;
    assert_eq!(lrs(&adam, &b), [1e-4, 1e-2]);
    // Two fields: every combination, the last varying fastest; integers stay integers.
    b.checklist.tune.absolute = false;
    b.checklist
        .tune
        .fields
        .insert("train.batch_size".into(), vec![0.5, 2.0]);
    let grid = candidates(&b, &Arm::Baseline).unwrap();
    let pairs: Vec<(f64, i64)> = grid
        .iter()
        .map(|c| {
            (
                c["optim.lr"].as_float().unwrap(),
                c["train.batch_size"].as_integer().unwrap(),
            )
        })
        .collect();
    let bs = b.train.batch_size as i64;
    assert_eq!(pairs[..3], [(0.03, bs / 2), (0.03, bs * 2), (0.1, bs / 2)]);
    assert_eq!(grid.len(), 6);
    let t = Trial::tuning(Arm::Baseline, 5, 2, grid[2].clone(), 1);
    assert_eq!(t.dir, Path::new("trials/baseline/tune-2-seed-1"));
    assert_eq!(t.seed, 5 + TUNE_SEED_OFFSET + 1);
    let r = t.recipe(&b).unwrap();
    assert_eq!((r.optim.lr, r.train.batch_size as i64, r.seed), (0.1, bs / 2, 1006));
}

#[test]
fn default_plan_varies_one_factor_each_and_validates() {
    let b = Recipe::default();
    let v = variants(&b).unwrap();
    let labels: Vec<String> = v.iter().map(Variant::label).collect();
    assert_eq!(
        labels,
        [
            "lr_regime=step",
            "lr_regime=cosine",
            "optimizer=momentum",
            "optimizer=adam",
            "weight_decay=10x",
            "weight_decay=0.1x",
            "augmentation=color_jitter",
            "wd_schedule=linear",
            "label_smoothing=0",
            "label_smoothing=0.2",
            "mixup=on",
            "se=off",
            "downscale_activation=relu",
            "downscale_activation=swish",
        ]
    );
    let wd = &v[4].overrides["optim.weight_decay"];
    assert_eq!(wd.as_float().unwrap(), 5e-4);
}

#[test]
fn extended_plan_adds_the_future_posts_tricks_and_validates() {
    let b = Recipe::from_table("[checklist]\nplan = \"extended\"\n".parse().unwrap()).unwrap();
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    for l in [
        "aux_loss=on",
        "crop=random_resized",
        "drop_path=0.1",
        "pool=attention",
        "cutmix=on",
        "ema=on",
        "optimizer=muon",
        "whiten_stem=on",
        "lookahead=on",
        "tta=flip",
        "tta=flip_translate",
        "resnet_d=on",
        "blur_pool=on",
        "batch_size=2x",
    ] {
        assert!(labels.contains(&l.to_string()), "{l} missing from {labels:?}");
    }
    let aux = variants(&b)
        .unwrap()
        .into_iter()
        .find(|v| v.factor == "aux_loss")
        .unwrap();
    assert_eq!(b.with_overrides(&aux.overrides).unwrap().model.aux_stage, Some(2));
    // The alternating flip is a candidate where the baseline flips at random, not otherwise.
    assert!(
        !labels.contains(&"flip=alternating".to_string()),
        "no flips, no candidate"
    );
    let flips = |mode: &str| {
        let text = format!("[augment]\nhflip = true\nhflip_mode = \"{mode}\"\n[checklist]\nplan = \"extended\"\n");
        let b = Recipe::from_table(text.parse().unwrap()).unwrap();
        variants(&b)
            .unwrap()
            .iter()
            .map(Variant::label)
            .any(|l| l == "flip=alternating")
    };
    assert!(flips("random") && !flips("alternating"));
    // On a MobileNetV3-large baseline: the aux head on stage 4 of 5, no ResNet-only factors,
    // and every variant a valid recipe.
    let text = "[model]\narch = \"mobilenet_v3_large\"\n[checklist]\nplan = \"extended\"\n";
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let plan = variants(&b).unwrap();
    assert!(!plan.iter().any(|v| v.factor == "resnet_d" || v.factor == "blur_pool"));
    for v in &plan {
        let r = b.with_overrides(&v.overrides).unwrap();
        if v.factor == "aux_loss" {
            assert_eq!(r.model.aux_stage, Some(4));
        }
    }
}

#[test]
fn a_teacher_adds_the_distillation_variant() {
    let teacher = darkmagic_base::testutil::tempdir("plan-teacher");
    let mut b = Recipe::default();
    b.checklist.teacher = Some(teacher.clone());
    let v = variants(&b).unwrap();
    let d = v.iter().find(|v| v.label() == "distillation=on").unwrap();
    let r = b.with_overrides(&d.overrides).unwrap();
    assert_eq!(r.loss.distill_teacher, Some(teacher));
    b.checklist.teacher = Some("/no/such/run".into());
    let e = variants(&b).unwrap_err().to_string();
    assert!(
        e.contains("distillation.on") && e.contains("/no/such/run is not a folder"),
        "{e}"
    );
}

#[test]
fn a_plain_baseline_is_tested_against_the_articles_recommendations() {
    let text = r#"
        [model]
        se = false
        downscale_activation = "relu"
        [optim]
        nesterov = false
        [schedule]
        regime = "step"
        [loss]
        label_smoothing = 0.0
        [augment]
        policy = "none"
    "#;
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    assert_eq!(
        labels,
        [
            "lr_regime=cosine_power",
            "lr_regime=cosine",
            "optimizer=nesterov",
            "optimizer=adam",
            "weight_decay=10x",
            "weight_decay=0.1x",
            "augmentation=autoaugment",
            "augmentation=color_jitter",
            "wd_schedule=linear",
            "label_smoothing=0.1",
            "label_smoothing=0.2",
            "mixup=on",
            "se=on",
            "downscale_activation=leaky_relu",
            "downscale_activation=swish",
        ]
    );
    let nesterov = &variants(&b).unwrap()[2];
    assert!(b.with_overrides(&nesterov.overrides).unwrap().optim.nesterov);
}

#[test]
fn a_cosine_baseline_keeps_the_plan_its_checklists_were_run_with() {
    let b = Recipe::from_table("[schedule]\nregime = \"cosine\"\n".parse().unwrap()).unwrap();
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    let regimes: Vec<&String> = labels.iter().filter(|l| l.starts_with("lr_regime")).collect();
    assert_eq!(regimes, ["lr_regime=step"]);
    assert_eq!(labels.len(), 13, "{labels:?}");
}

#[test]
fn variants_equal_to_the_baseline_are_dropped() {
    let mut b = Recipe::default();
    b.loss.label_smoothing = 0.2;
    b.model.downscale_activation = Activation::Relu;
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    assert!(!labels.contains(&"label_smoothing=0.2".to_string()));
    assert!(!labels.contains(&"downscale_activation=relu".to_string()));
    assert!(labels.contains(&"label_smoothing=0".to_string()));
}

#[test]
fn recipe_factors_replace_and_skip_removes() {
    let text = r#"
        [checklist]
        plan = "default"
        skip = ["optimizer", "lr_regime"]
        [checklist.factors.weight_decay]
        "3x" = { "optim.weight_decay" = 1.5e-4 }
        [checklist.factors.width]
        "2x" = { "model.width" = 2.0 }
    "#;
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    assert!(
        !labels
            .iter()
            .any(|l| l.starts_with("optimizer") || l.starts_with("lr_regime"))
    );
    assert!(labels.contains(&"weight_decay=3x".to_string()));
    assert!(!labels.contains(&"weight_decay=10x".to_string()));
    assert!(labels.contains(&"width=2x".to_string()));
    // A factor of the recipe's own is skipped too (the report's follow-up command skips the
    // decided ones, whatever their kind).
    let skipped = text.replace(
        r#"skip = ["optimizer", "lr_regime"]"#,
        r#"skip = ["optimizer", "lr_regime", "width"]"#,
    );
    let b = Recipe::from_table(skipped.parse().unwrap()).unwrap();
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    assert!(!labels.contains(&"width=2x".to_string()), "{labels:?}");
    assert!(labels.contains(&"weight_decay=3x".to_string()));
}

#[test]
fn bad_factor_values_and_skips_are_named() {
    let text = "[checklist.factors.opt]\nbad = { \"optim.name\" = \"adagrad\" }\n";
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let e = variants(&b).unwrap_err().to_string();
    assert!(e.contains("checklist.factors.opt.bad") && e.contains("adagrad"), "{e}");
    let b = Recipe::from_table("[checklist]\nskip = [\"mixupp\"]\n".parse().unwrap()).unwrap();
    let e = variants(&b).unwrap_err().to_string();
    assert!(e.contains("checklist.skip") && e.contains("mixupp"), "{e}");
    // The factors it may name are the recipe's own too.
    let text =
        "[checklist]\nplan = \"none\"\nskip = [\"lrr\"]\n[checklist.factors.lr]\nlow = { \"optim.lr\" = 0.01 }\n";
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let e = variants(&b).unwrap_err().to_string();
    assert!(e.contains("unknown factor `lrr`; the plan has [\"lr\"]"), "{e}");
    // A terminal escape sequence in a variant's name.
    let text = "[checklist.factors.lr]\n\"\\u001b[31mred\" = { \"optim.lr\" = 0.3 }\n";
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let e = variants(&b).unwrap_err().to_string();
    assert!(
        e.contains("checklist.factors.lr.\\u{1b}[31mred") && e.contains("no control characters"),
        "{e}"
    );
}

#[test]
fn trials_get_seeds_dirs_and_recipes() {
    let b = Recipe {
        seed: 10,
        ..Recipe::default()
    };
    let v = variants(&b).unwrap().remove(0);
    let t = Trial::new(Arm::Variant(v), b.seed, 2);
    assert_eq!(t.seed, 12);
    assert_eq!(t.dir, Path::new("trials/lr_regime=step/seed-2"));
    let r = t.recipe(&b).unwrap();
    assert_eq!((r.seed, r.schedule.regime), (12, Regime::Step));
    assert_eq!(
        Trial::new(Arm::Baseline, 10, 0).dir,
        Path::new("trials/baseline/seed-0")
    );
}

#[test]
fn a_factor_of_the_recipe_equal_to_the_baseline_is_named_where_it_is_left_out() {
    let text = r#"
        [model]
        width = 0.5
        [checklist]
        plan = "none"
        [checklist.factors.width]
        "half" = { "model.width" = 0.5 }
        [checklist.factors.lr]
        "low" = { "optim.lr" = 0.01 }
    "#;
    let b = Recipe::from_table(text.parse().unwrap()).unwrap();
    let labels: Vec<String> = variants(&b).unwrap().iter().map(Variant::label).collect();
    assert_eq!(labels, ["lr=low"]);
    assert_eq!(left_out(&b).unwrap(), ["width=half"]);
    let only = text.replace("[checklist.factors.lr]\n        \"low\" = { \"optim.lr\" = 0.01 }", "");
    let b = Recipe::from_table(only.parse().unwrap()).unwrap();
    let e = variants(&b).unwrap_err().to_string();
    assert!(e.contains("width=half equal the baseline and are left out"), "{e}");
}
