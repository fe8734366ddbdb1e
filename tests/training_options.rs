//! Training options timm users reach for, against their references: gradient clipping
//! (`train.clip_grad`, `train.clip_mode`) against torch.nn.utils' clip_grad_norm_ /
//! clip_grad_value_ and timm's adaptive_clip_grad (scripts/golden/clip.py), and binary
//! cross-entropy (`loss.bce`) against timm's BinaryCrossEntropy (scripts/golden/bce.py).
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
        let mut args = vec![
            "train",
            "--run-dir",
            run_dir.to_str().unwrap(),
            "--threads",
            "1",
            "--set",
            "train.epochs=1",
            "--set",
            "model.width=0.25",
            "--set",
            "schedule.warmup_epochs=0.0",
        ];
        args.extend_from_slice(extra);
        common::ok(common::run(&args));
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
