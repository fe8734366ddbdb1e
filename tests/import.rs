//! Weight import: torchvision's and timm's classifiers, saved from Python by
//! `scripts/golden/reference_model.py`, loaded into darkmagic's give the same logits.
mod common;
use darkmagic::model::{Net, import};
use darkmagic::recipe::{Activation, Arch, ModelConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

#[test]
fn torchvision_resnet18_weights_give_torchvisions_outputs() {
    same_outputs("resnet18", &resnet(Arch::Resnet18, false, false));
}

/// Anti-aliased downsampling (`model.blur_pool`): timm's resnetblur18 and resnetblur50d.
#[test]
fn timm_blur_pool_weights_give_timms_outputs() {
    same_outputs("resnetblur18", &resnet(Arch::Resnet18, false, true));
    same_outputs("resnetblur50d", &resnet(Arch::Resnet50, true, true));
}

/// ResNet-D (`model.resnet_d`): timm's resnet18d and resnet50d (deep stem, average-pool
/// shortcuts), their state dicts loaded with timm's names.
#[test]
fn timm_resnet_d_weights_give_timms_outputs() {
    same_outputs("resnet18d", &resnet(Arch::Resnet18, true, false));
    same_outputs("resnet50d", &resnet(Arch::Resnet50, true, false));
}

/// torchvision's MobileNetV3 small and large, with their native activations (ReLU and
/// hard-swish as the paper's table has them) and SE.
#[test]
fn torchvision_mobilenet_v3_weights_give_torchvisions_outputs() {
    same_outputs("mobilenet_v3_small", &native(Arch::MobilenetV3Small));
    same_outputs("mobilenet_v3_large", &native(Arch::MobilenetV3Large));
}

/// timm's EfficientNet-B0 (swish, SE on the block input), with timm's names.
#[test]
fn timm_efficientnet_b0_weights_give_timms_outputs() {
    same_outputs("efficientnet_b0", &native(Arch::EfficientnetB0));
}

/// Training mode too: from the reference's weights, one step's logits (batch statistics), the
/// gradients of every parameter and the running statistics after it are the reference's, so
/// MobileNetV3 and EfficientNet-B0 train as they do in torchvision and timm.
#[test]
fn mobilenet_and_efficientnet_train_steps_equal_the_references() {
    for (name, arch) in [
        ("mobilenet_v3_small", Arch::MobilenetV3Small),
        ("efficientnet_b0", Arch::EfficientnetB0),
    ] {
        let out = common::golden("reference_model.py", &format!("{name}-train"), &[name, "train"]);
        let vs = VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            dropout: Some(0.0),
            ..native(arch)
        };
        let net = Net::new(&vs.root(), &cfg, 3, 10);
        import::load_exact(&vs, &out.join("weights.safetensors"), None).unwrap();
        let step: HashMap<String, Tensor> = Tensor::read_safetensors(out.join("train.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
        let y = net.forward_t(&step["input"], true);
        // Relative to the reference's largest value, floored at 0.01 (the gradients' median
        // is 0.3-0.8): the biases of a norm followed by another norm have gradients of 0 in
        // exact arithmetic (the next norm subtracts the batch mean), up to 5e-6 of float noise.
        let worst = |a: &Tensor, b: &Tensor| {
            let scale = b.abs().max().double_value(&[]).max(1e-2);
            (a - b).abs().max().double_value(&[]) / scale
        };
        assert!(worst(&y, &step["output"]) < 1e-4, "{name}: training-mode logits");
        (&y * &step["weight"]).sum(tch::Kind::Float).backward();
        let mut compared = (0, 0);
        for (var, t) in vs.variables() {
            let (key, got) = if var.contains("running") {
                compared.1 += 1;
                (format!("after.{var}"), t.shallow_clone())
            } else {
                compared.0 += 1;
                (format!("grad.{var}"), t.grad())
            };
            let err = worst(&got, &step[&key]);
            assert!(err < 1e-3, "{name} {key}: relative difference {err}");
        }
        eprintln!(
            "{name}: {} gradients, {} running statistics compared",
            compared.0, compared.1
        );
        assert!(compared.0 > 100 && compared.1 > 50);
        let _ = std::fs::remove_dir_all(out);
    }
}

/// A torchvision-style ResNet: no SE, ReLU everywhere.
fn resnet(arch: Arch, resnet_d: bool, blur_pool: bool) -> ModelConfig {
    ModelConfig {
        arch,
        se: false,
        activation: Activation::Relu,
        downscale_activation: Activation::Relu,
        resnet_d,
        blur_pool,
        ..ModelConfig::default()
    }
}

/// `arch` as its reference builds it: its own activations everywhere, its SE.
fn native(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        activation: Activation::Native,
        downscale_activation: Activation::Native,
        ..ModelConfig::default()
    }
}

/// Loads the reference `name`'s weights (scripts/golden/reference_model.py) into darkmagic's
/// network of `cfg` and compares the logits in evaluation mode.
fn same_outputs(name: &str, cfg: &ModelConfig) {
    let out = common::golden("reference_model.py", name, &[name]);

    let vs = VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), cfg, 3, 10);
    let report = import::load(&vs, &out.join("weights.safetensors")).unwrap();
    assert!(
        report.missing.is_empty() && report.reinitialised.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.loaded, vs.variables().len());

    let io: HashMap<String, Tensor> = Tensor::read_safetensors(out.join("io.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let got = tch::no_grad(|| net.forward_t(&io["input"], false));
    let diff = (&got - &io["output"]).abs().max().double_value(&[]);
    // 1e-4, relative to the logits' spread where that is below 1 (MobileNetV3's hard-swish
    // head keeps its logits near 0.1), plus float32's rounding through a deep network: 1e-6 of
    // the spread (the reference's own float32 logits of ResNet-50d, std 245, are 2.6e-4 from
    // its float64 logits; darkmagic sums small-map convolutions in another order).
    let std = io["output"].std(true).double_value(&[]);
    let tolerance = 1e-4 * std.min(1.0) + 1e-6 * std;
    eprintln!("{name}: max abs difference to the reference: {diff:e} (logits' std {std:.3}, tolerance {tolerance:e})");
    assert!(diff < tolerance, "{name}: max |darkmagic - reference| = {diff}");
    let _ = std::fs::remove_dir_all(out);
}

/// torchvision's ResNet-18 as a recipe: no SE, ReLU everywhere.
const RESNET18: &[&str] = &[
    "model.arch=resnet18",
    "model.se=false",
    "model.activation=relu",
    "model.downscale_activation=relu",
];

/// timm's EfficientNet-B0 as a recipe: its own activations everywhere.
const EFFICIENTNET_B0: &[&str] = &["model.arch=efficientnet_b0", "model.downscale_activation=native"];

/// The recipe overrides for the `model` and torchvision's evaluation transform (Resize 73,
/// CenterCrop 64, ImageNet normalisation, PIL bilinear) on the image folder `images`.
fn torchvision_recipe(images: &Path, model: &[&str]) -> Vec<String> {
    let data = [
        "data.dataset=folder",
        &format!("data.path=\"{}\"", images.display()),
        "data.image_size=64",
        "data.decode=per_batch",
        "data.mean=[0.485, 0.456, 0.406]",
        "data.std=[0.229, 0.224, 0.225]",
        "augment.eval_crop_fraction=0.875",
        "augment.interpolation=bilinear",
    ];
    model
        .iter()
        .copied()
        .chain(data.iter().copied())
        .flat_map(|s| ["--set".to_string(), s.to_string()])
        .collect()
}

fn darkmagic(command: &str, weights: &Path, images: &Path, model: &[&str], extra: &[&str]) -> Output {
    let mut c = common::bin();
    c.args([command, "--weights", weights.to_str().unwrap()]);
    c.args(torchvision_recipe(images, model)).args(extra);
    c.output().unwrap()
}

/// `predict --logits` with the reference `name`'s state dict (scripts/golden/reference_model.py
/// NAME images) and the recipe `model` on its 10 image files: every logit within 1e-4 of the
/// reference's and the same top-1. Returns the golden folder and how many images' top-1 is
/// their folder's class.
fn predicts_reference_logits(name: &str, model: &[&str]) -> (PathBuf, usize) {
    let out = common::golden("reference_model.py", &format!("{name}-predict"), &[name, "images"]);
    let (weights, images) = (out.join("weights.safetensors"), out.join("images"));
    let golden = common::read_json(&out.join("predict.json"));
    let json = common::ok(darkmagic(
        "predict",
        &weights,
        &images,
        model,
        &["--logits", "--format", "json", images.to_str().unwrap()],
    ));
    let rows: Value = serde_json::from_str(&json).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let mut worst = 0f64;
    let mut correct = 0;
    for row in rows {
        let image = row["image"].as_str().unwrap();
        let g = &golden[Path::new(image).strip_prefix(&out).unwrap().to_str().unwrap()];
        let theirs: Vec<f64> = g["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let ours = row["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
        for (a, b) in ours.zip(&theirs) {
            worst = worst.max((a - b).abs());
        }
        let argmax = (0..10).max_by(|&i, &j| theirs[i].total_cmp(&theirs[j])).unwrap();
        assert_eq!(row["top"][0]["index"], argmax, "{name} {image}");
        correct += usize::from(g["label"] == argmax);
    }
    eprintln!("{name}: max |darkmagic - reference| logit on image files: {worst:e}");
    assert!(worst < 1e-4, "{name}: max |darkmagic - reference| = {worst}");
    (out, correct)
}

/// A data set of 2 classes (two of `images`' files) under `dir`: predicting it with a 10-class
/// state dict is a class-count error that names the classifier tensor `classifier`.
fn two_classes_are_refused(weights: &Path, images: &Path, dir: &Path, model: &[&str], classifier: &str) {
    for c in ["c0", "c1"] {
        std::fs::create_dir_all(dir.join(c)).unwrap();
        std::fs::copy(
            images.join(c).join(format!("img{}.png", &c[1..])),
            dir.join(c).join("a.png"),
        )
        .unwrap();
    }
    let failed = darkmagic("predict", weights, dir, model, &[dir.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{e}");
    let want =
        format!("class count: its classifier `{classifier}` has shape [10] (10 classes); the model has 2 classes");
    assert!(e.contains("weights.safetensors") && e.contains(&want), "{e}");
}

#[test]
fn torchvision_resnet18_state_dict_predicts_torchvisions_logits_on_image_files() {
    let (out, correct) = predicts_reference_logits("resnet18", RESNET18);
    let (weights, images) = (out.join("weights.safetensors"), out.join("images"));

    // eval on the same files: every image's label is its folder's.
    let eval_dir = out.join("eval");
    common::ok(darkmagic(
        "eval",
        &weights,
        &images,
        RESNET18,
        &["--split", "all", "--out", eval_dir.to_str().unwrap()],
    ));
    let v = common::read_json(&eval_dir.join("all.json"));
    assert_eq!(v["top1"].as_f64().unwrap(), correct as f64 / 10.0);
    two_classes_are_refused(&weights, &images, &out.join("two"), RESNET18, "fc.bias");
    let _ = std::fs::remove_dir_all(out);
}

/// timm's EfficientNet-B0 state dict through `predict --weights`, as a timm user's checkpoint.
#[test]
fn timm_efficientnet_b0_state_dict_predicts_timms_logits_on_image_files() {
    let (out, _) = predicts_reference_logits("efficientnet_b0", EFFICIENTNET_B0);
    let (weights, images) = (out.join("weights.safetensors"), out.join("images"));
    two_classes_are_refused(&weights, &images, &out.join("two"), EFFICIENTNET_B0, "classifier.bias");
    let _ = std::fs::remove_dir_all(out);
}
