//! Training options timm users reach for, against their references: gradient clipping
//! (`train.clip_grad`, `train.clip_mode`) against torch.nn.utils' clip_grad_norm_ /
//! clip_grad_value_ and timm's adaptive_clip_grad (scripts/golden/clip.py), and binary
//! cross-entropy (`loss.bce`) against timm's BinaryCrossEntropy (scripts/golden/bce.py), and
//! layer-wise learning-rate decay (`optim.layer_decay`) against timm's param_groups_layer_decay
//! (scripts/golden/layer_decay.py).
mod common;
use darkmagic::loss::{BceTargets, binary_cross_entropy};
use darkmagic::optim::Optimizer;
use darkmagic::recipe::{ClipMode, OptimConfig};
use tch::{Kind, Tensor};

#[test]
fn clipping_matches_torch_and_timm() {
    let (out, g) = common::golden_tensors("clip.py", "clip", "clip.safetensors");
    let get = |k: String| g[&k].shallow_clone();
    for (mode, name, value) in [
        (ClipMode::Norm, "norm", 0.5),
        (ClipMode::Value, "value", 0.01),
        (ClipMode::Agc, "agc", 0.05),
    ] {
        let params: Vec<Tensor> = (1..=3)
            .map(|i| get(format!("p{i}")).copy().set_requires_grad(true))
            .collect();
        let named = params
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("p{i}"), t.shallow_clone()))
            .collect();
        let mut opt = Optimizer::new(named, &OptimConfig::default());
        opt.zero_grad();
        // d/dp sum(p * g) = g: each parameter's gradient is the reference one.
        let loss = params
            .iter()
            .enumerate()
            .map(|(i, p)| (p * get(format!("g{}", i + 1))).sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, tch::Device::Cpu)), |a, b| a + b);
        loss.backward();
        opt.clip_grads(mode, value);
        for (i, p) in params.iter().enumerate() {
            let want = get(format!("{name}.g{}", i + 1));
            let diff = (p.grad() - &want).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{name} p{}: max |darkmagic - reference| = {diff}", i + 1);
            let changed = (&want - get(format!("g{}", i + 1))).abs().max().double_value(&[]);
            assert!(changed > 1e-4, "{name} p{}: the reference clipped something", i + 1);
        }
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn training_clips_and_uses_bce_only_when_asked() {
    let dir = common::tempdir("clip-train");
    let train = |name: &str, extra: &[&str]| -> String {
        let run_dir = dir.join(name);
        common::ok(common::train_one_epoch(&run_dir, extra));
        std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap()
    };
    let plain = train("plain", &[]);
    let loose = train("loose", &["--set", "train.clip_grad=1e9"]);
    let tight = train(
        "tight",
        &["--set", "train.clip_grad=1e-3", "--set", "train.clip_mode=agc"],
    );
    let loss = |m: &str| {
        m.split("\"train_loss\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(loss(&loose), loss(&plain), "a threshold never reached changes nothing");
    assert_ne!(loss(&tight), loss(&plain));
}

#[test]
fn binary_cross_entropy_matches_timm() {
    let (out, g) = common::golden_tensors("bce.py", "bce", "bce.safetensors");
    let (logits, labels, soft) = (&g["logits"], &g["labels"], &g["soft"]);
    for (name, targets, thresh) in [
        ("labels_s0.1", BceTargets::Labels(labels, 0.1), None),
        ("labels_s0.1_t0.2", BceTargets::Labels(labels, 0.1), Some(0.2)),
        ("labels_s0", BceTargets::Labels(labels, 0.0), None),
        ("soft", BceTargets::Soft(soft), None),
        ("soft_t0.2", BceTargets::Soft(soft), Some(0.2)),
    ] {
        let got = binary_cross_entropy(logits, targets, thresh).double_value(&[]);
        let want = g[&format!("loss.{name}")].double_value(&[0]);
        assert!((got - want).abs() < 1e-6, "{name}: {got} vs timm {want}");
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn layer_wise_decay_scales_each_layer_group_as_timm() {
    use darkmagic::model::{Net, layer_groups};
    use darkmagic::recipe::{Arch, ModelConfig};
    for (name, arch, se, want_groups) in [
        ("resnet18", Arch::Resnet18, false, 10),
        ("efficientnet_b0", Arch::EfficientnetB0, true, 18),
    ] {
        let out = common::golden("layer_decay.py", &format!("layer-decay-{name}"), &[name]);
        let golden: std::collections::BTreeMap<String, f64> =
            serde_json::from_str(&std::fs::read_to_string(out.join("layer_decay.json")).unwrap()).unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let cfg = ModelConfig {
            arch,
            se,
            ..ModelConfig::default()
        };
        let _net = Net::new(&vs.root(), &cfg, 3, 10);
        let names: Vec<String> = Optimizer::trainable(&vs).into_iter().map(|(n, _)| n).collect();
        let (groups, n) = layer_groups(&names);
        assert_eq!(n, want_groups, "{name}: stem, each block, classifier");
        let ours: std::collections::BTreeMap<String, f64> = names
            .into_iter()
            .zip(groups)
            .map(|(name, g)| (name, 0.7f64.powi((n - 1 - g) as i32)))
            .collect();
        assert_eq!(ours.keys().collect::<Vec<_>>(), golden.keys().collect::<Vec<_>>());
        for (param, want) in &golden {
            assert!(
                (ours[param] - want).abs() < 1e-12,
                "{name} {param}: {} vs timm {want}",
                ours[param]
            );
        }
        let _ = std::fs::remove_dir_all(out);
    }
    // The optimizer steps each group at its scaled learning rate: plain SGD moves the stem by
    // lr * 0.7^9 * gradient.
    let w = Tensor::ones([2, 2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let head = Tensor::ones([2, 2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let named = vec![
        ("conv1.weight".to_string(), w.shallow_clone()),
        (
            "layer1.0.conv1.weight".to_string(),
            Tensor::ones([2, 2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true),
        ),
        ("fc.weight".to_string(), head.shallow_clone()),
    ];
    let cfg = OptimConfig {
        momentum: 0.0,
        nesterov: false,
        layer_decay: 0.7,
        ..OptimConfig::default()
    };
    let mut opt = Optimizer::new(named, &cfg);
    opt.zero_grad();
    (w.sum(Kind::Float) + head.sum(Kind::Float)).backward();
    opt.step(0.1, 0.0);
    let moved = |t: &Tensor| 1.0 - t.double_value(&[0, 0]);
    assert!((moved(&w) - 0.1 * 0.49).abs() < 1e-7, "stem: {}", moved(&w));
    assert!((moved(&head) - 0.1).abs() < 1e-7, "head: {}", moved(&head));
}

/// MobileNetV3 and EfficientNet-B0 train on the digits (8x8, one channel), with the recipe's
/// architecture factors applied, and their checkpoints evaluate to the run's own accuracy.
#[test]
fn mobilenet_and_efficientnet_train_and_their_checkpoints_evaluate() {
    let dir = common::tempdir("mobile-train");
    for (arch, extra) in [
        ("mobilenet_v3_small", "model.se=false"),
        ("efficientnet_b0", "model.downscale_activation=\"swish\""),
    ] {
        let run_dir = dir.join(arch);
        let arch_set = format!("model.arch=\"{arch}\"");
        common::ok(common::train_one_epoch(&run_dir, &["--set", &arch_set, "--set", extra]));
        let result = common::read_json(&run_dir.join("result.json"));
        let acc = result["final_val_acc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{arch}: {result}");
        let out = common::ok(common::run(&["eval", "--run-dir", run_dir.to_str().unwrap()]));
        let eval = common::read_json(&run_dir.join("eval/val.json"));
        assert_eq!(eval["top1"].as_f64().unwrap(), acc, "{arch}: {out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The speedrun tricks end to end on the digits: a whitened stem (logged with what it took: the
/// 4 filters of a quarter-width ResNet-20),
/// Muon with AdamW, and translate test-time augmentation (recorded beside the plain accuracy).
#[test]
fn speedrun_tricks_train_end_to_end() {
    let dir = common::tempdir("speedrun-tricks");
    let run_dir = dir.join("run");
    let set = [
        "model.whiten_stem=true",
        "optim.name=\"muon\"",
        "optim.lr=0.02",
        "optim.weight_decay=0.05",
        "augment.tta_translate=true",
    ];
    let args: Vec<&str> = set.iter().flat_map(|s| ["--set", s]).collect();
    common::ok(common::train_one_epoch(&run_dir, &args));
    let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap();
    assert!(
        log.contains("whitened 4 of the 4 filters of conv1.weight from ") && log.contains(" training images"),
        "{log}"
    );
    let result = common::read_json(&run_dir.join("result.json"));
    assert_eq!(result["status"], "completed", "{result}");
    let tta = result["final_val_acc_tta"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&tta), "{result}");
}

#[test]
fn the_device_loader_trains_exactly_as_the_host_loader() {
    // The GPU speed recipe (Muon, whitened stem, pad-crop, alternating flips, label smoothing,
    // EMA) on the CPU, on a subset of Fashion-MNIST's 28x28 gray images: on these an earlier
    // device batch with NHWC strides took another convolution kernel than the host's and trained
    // differently in the last bits (erasing and mixing, tested in loader::resident, make new
    // tensors and hid it).
    let dir = common::tempdir("device-loader");
    let set = [
        "train.device=\"cpu\"",
        "train.amp=\"off\"",
        "train.epochs=2",
        "train.batch_size=128",
        "data.train_subset=1200",
        "data.test_subset=200",
    ];
    let metrics = |loader: &str| {
        let run_dir = dir.join(loader);
        let loader = format!("train.loader=\"{loader}\"");
        let mut args = vec![
            "train",
            "--recipe",
            "recipes/fashion-mnist-gpu-fast.toml",
            "--threads",
            "1",
        ];
        args.extend(set.iter().chain([&loader.as_str()]).flat_map(|s| ["--set", *s]));
        args.extend(["--run-dir", run_dir.to_str().unwrap()]);
        common::ok(
            common::bin()
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(&args)
                .output()
                .unwrap(),
        );
        let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap();
        let m = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
        let fields = |l: &str| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["train_loss"].clone(), v["train_acc"].clone(), v["val_loss"].clone())
        };
        (log, m.lines().map(fields).collect::<Vec<_>>())
    };
    let (host_log, host) = metrics("host");
    let (device_log, device) = metrics("device");
    assert!(host_log.contains("batches built on the host"), "{host_log}");
    assert!(device_log.contains("batches built on the device"), "{device_log}");
    assert_eq!(host.len(), 2);
    assert_eq!(
        host, device,
        "the same batches, so the same training, bit for bit on the CPU"
    );
}
