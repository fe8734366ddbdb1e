use super::*;
use tch::{Device, Kind};

/// Runs 3 steps on p = [1, -2] (plus a 2-D parameter) with loss sum(p^2 * c) and returns p.
fn run(cfg: &OptimConfig, lr: f64, wd: f64) -> (Vec<f64>, Vec<f64>) {
    let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
    let w = Tensor::from_slice(&[0.5f64, 3.0]).view([1, 2]).set_requires_grad(true);
    let mut opt = Optimizer::new(
        vec![("p".into(), p.shallow_clone()), ("w".into(), w.shallow_clone())],
        cfg,
    );
    let c = Tensor::from_slice(&[1.0f64, 0.5]);
    for _ in 0..3 {
        opt.zero_grad();
        ((&p * &p * &c).sum(Kind::Double) + (&w * &w * &c).sum(Kind::Double)).backward();
        opt.step(lr, wd);
    }
    (Vec::try_from(&p).unwrap(), Vec::try_from(&w.flatten(0, -1)).unwrap())
}

/// The same 3 steps computed in plain f64 by the PyTorch update formulas.
fn reference(cfg: &OptimConfig, lr: f64, wd: f64, x0: [f64; 2]) -> Vec<f64> {
    let c = [1.0, 0.5];
    let mut x = x0;
    let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
    for t in 1..=3 {
        for i in 0..2 {
            let mut g = 2.0 * c[i] * x[i];
            match cfg.name {
                OptimName::Sgd => {
                    g += wd * x[i];
                    m[i] = cfg.momentum * m[i] + g;
                    let d = if cfg.nesterov { g + cfg.momentum * m[i] } else { m[i] };
                    x[i] -= lr * d;
                }
                OptimName::Adam | OptimName::Adamw => {
                    if cfg.name == OptimName::Adamw {
                        x[i] *= 1.0 - lr * wd;
                    } else {
                        g += wd * x[i];
                    }
                    m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
                    v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
                    let bc1 = 1.0 - cfg.beta1.powi(t);
                    let bc2 = 1.0 - cfg.beta2.powi(t);
                    x[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + cfg.eps);
                }
                OptimName::RmspropTf => {
                    g += wd * x[i];
                    let s = if t == 1 { 1.0 } else { v[i] };
                    v[i] = s + (1.0 - cfg.alpha) * (g * g - s);
                    m[i] = cfg.momentum * m[i] + lr * g / (v[i] + cfg.eps).sqrt();
                    x[i] -= m[i];
                }
                OptimName::Lamb => unreachable!("Lamb's trust ratio couples the elements: golden-tested"),
                OptimName::Muon => unreachable!("Muon orthogonalises whole matrices: golden-tested"),
                OptimName::Lion => {
                    x[i] *= 1.0 - lr * wd;
                    x[i] -= lr * (cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g).signum();
                    m[i] = cfg.beta2 * m[i] + (1.0 - cfg.beta2) * g;
                }
            }
        }
    }
    x.to_vec()
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12), "{a:?} vs {b:?}");
}

#[test]
fn updates_match_pytorch_formulas() {
    let base = OptimConfig {
        exclude_1d: true,
        ..OptimConfig::default()
    };
    let cases = [
        OptimConfig {
            nesterov: false,
            ..base.clone()
        },
        OptimConfig {
            nesterov: true,
            ..base.clone()
        },
        OptimConfig {
            name: OptimName::Adam,
            ..base.clone()
        },
        OptimConfig {
            name: OptimName::Adamw,
            ..base.clone()
        },
        OptimConfig {
            name: OptimName::Lion,
            beta2: 0.99,
            ..base.clone()
        },
        OptimConfig {
            name: OptimName::RmspropTf,
            ..base.clone()
        },
    ];
    for cfg in cases {
        let (p, w) = run(&cfg, 0.05, 0.1);
        // p is 1-D: excluded from decay; w is 2-D: decayed.
        assert_close(&p, &reference(&cfg, 0.05, 0.0, [1.0, -2.0]));
        assert_close(&w, &reference(&cfg, 0.05, 0.1, [0.5, 3.0]));
    }
}

#[test]
fn updates_match_torch_optim_golden_values() {
    // Written by scripts/golden/optim.py with torch.optim (same loss, steps and groups as `run`).
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/optim_golden.json")).unwrap();
    let base = OptimConfig::default();
    let cases = [
        (
            "sgd_momentum",
            OptimConfig {
                nesterov: false,
                ..base.clone()
            },
        ),
        ("sgd_nesterov", base.clone()),
        (
            "adam",
            OptimConfig {
                name: OptimName::Adam,
                ..base.clone()
            },
        ),
        (
            "adamw",
            OptimConfig {
                name: OptimName::Adamw,
                ..base.clone()
            },
        ),
        (
            "lion",
            OptimConfig {
                name: OptimName::Lion,
                beta2: 0.99,
                ..base.clone()
            },
        ),
        (
            "rmsprop_tf",
            OptimConfig {
                name: OptimName::RmspropTf,
                ..base.clone()
            },
        ),
        (
            "lamb",
            OptimConfig {
                name: OptimName::Lamb,
                ..base.clone()
            },
        ),
    ];
    for (name, cfg) in cases {
        let (p, w) = run(&cfg, 0.05, 0.1);
        let want = |k: &str| -> Vec<f64> { serde_json::from_value(golden[name][k].clone()).unwrap() };
        assert_close(&p, &want("p"));
        assert_close(&w, &want("w"));
    }
}

#[test]
fn frozen_parameters_are_not_updated() {
    let p = Tensor::from_slice(&[1.0f64, 2.0]).set_requires_grad(true);
    let fc = Tensor::from_slice(&[1.0f64, 2.0]).set_requires_grad(true);
    let named = vec![
        ("layer1.w".to_string(), p.shallow_clone()),
        ("fc.weight".to_string(), fc.shallow_clone()),
    ];
    let plain_sgd = OptimConfig {
        momentum: 0.0,
        nesterov: false,
        ..OptimConfig::default()
    };
    let mut opt = Optimizer::new(named, &plain_sgd);
    opt.freeze(|name| !name.starts_with("fc."));
    ((&p * &p).sum(Kind::Double) + (&fc * &fc).sum(Kind::Double)).backward();
    opt.step(0.1, 0.0);
    assert_eq!(Vec::<f64>::try_from(&p).unwrap(), vec![1.0, 2.0]);
    assert_eq!(Vec::<f64>::try_from(&fc).unwrap(), vec![0.8, 1.6]);
    opt.freeze(|_| false);
    opt.step(0.1, 0.0);
    assert_ne!(Vec::<f64>::try_from(&p).unwrap(), vec![1.0, 2.0]);
}

/// NHWC memory order for a 4-D tensor, as `torch.channels_last`.
fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[test]
fn fused_step_equals_the_per_tensor_update() {
    // Parameters of every kind the models have: channels-last convolution weights, matrices,
    // 1-D (excluded from decay), and a frozen one; 4 steps of each optimizer in float32
    // against the per-tensor formulas applied to copies.
    for name in [
        OptimName::Sgd,
        OptimName::Adam,
        OptimName::Adamw,
        OptimName::Lion,
        OptimName::RmspropTf,
        OptimName::Lamb,
    ] {
        tch::manual_seed(7);
        let cfg = OptimConfig {
            name,
            ..OptimConfig::default()
        };
        let opts = (Kind::Float, Device::Cpu);
        let make = |s: &[i64]| Tensor::randn(s, opts);
        let shapes: [&[i64]; 5] = [&[8, 3, 3, 3], &[10, 16], &[16], &[4, 4, 1, 1], &[5]];
        let init: Vec<Tensor> = shapes.iter().map(|s| make(s)).collect();
        let params: Vec<Tensor> = init
            .iter()
            .map(|t| if t.dim() == 4 { channels_last(t) } else { t.copy() }.set_requires_grad(true))
            .collect();
        let named = params
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("p{i}"), t.shallow_clone()))
            .collect();
        let mut opt = Optimizer::new(named, &cfg);
        opt.freeze(|n| n == "p3");
        assert!(
            params[0].stride() == channels_last(&init[0]).stride(),
            "memory order kept"
        );
        // Every parameter starts at a multiple of ALIGN elements of its group's buffer, though
        // the sizes (216, 160, 16, 16, 5) would pack some at odd offsets.
        for g in &opt.groups {
            for m in &g.members {
                let i: usize = m.name[1..].parse().unwrap();
                let bytes = params[i].data_ptr() as usize - g.values.data_ptr() as usize;
                assert_eq!((m.offset % ALIGN, bytes), (0, m.offset as usize * 4), "{}", m.name);
            }
        }
        let coef: Vec<Tensor> = shapes.iter().map(|s| make(s)).collect();
        let mut want: Vec<Tensor> = init.iter().map(Tensor::copy).collect();
        let first = |t: &Tensor| {
            if name == OptimName::RmspropTf {
                t.ones_like()
            } else {
                t.zeros_like()
            }
        };
        let mut state: Vec<Vec<Tensor>> = init.iter().map(|t| vec![first(t), t.zeros_like()]).collect();
        for step in 1..=4 {
            opt.zero_grad();
            let loss = params
                .iter()
                .zip(&coef)
                .map(|(p, c)| (p * p * c).sum(Kind::Float))
                .fold(Tensor::zeros([], opts), |a, b| a + b);
            loss.backward();
            opt.step(0.05, 0.1);
            for (i, w) in want.iter_mut().enumerate() {
                if i == 3 {
                    continue;
                }
                let grad = &*w * &coef[i] * 2.0;
                let wd = if shapes[i].len() > 1 { 0.1 } else { 0.0 };
                rule(&cfg).update(w, &grad, &mut state[i], 0.05, wd, step);
            }
        }
        for (i, (p, w)) in params.iter().zip(&want).enumerate() {
            let diff = (p - w).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{name:?} p{i}: {diff}");
        }
        assert!(params[3].equal(&channels_last(&init[3])), "frozen p3 unchanged");
    }
}

#[test]
fn decay_applies_to_1d_params_when_not_excluded() {
    let cfg = OptimConfig {
        exclude_1d: false,
        nesterov: true,
        ..OptimConfig::default()
    };
    let (p, _) = run(&cfg, 0.05, 0.1);
    assert_close(&p, &reference(&cfg, 0.05, 0.1, [1.0, -2.0]));
}

#[test]
fn state_round_trips() {
    let cfg = OptimConfig {
        name: OptimName::Adam,
        ..OptimConfig::default()
    };
    let p = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let mut a = Optimizer::new(vec![("p".into(), p.shallow_clone())], &cfg);
    p.sum(Kind::Float).backward();
    a.step(0.1, 0.0);
    let saved: std::collections::HashMap<_, _> = a.state().into_iter().collect();
    let mut b = Optimizer::new(vec![("p".into(), p.zeros_like())], &cfg);
    b.load_state(&saved).unwrap();
    assert_eq!(b.steps, 1);
    let state: std::collections::HashMap<_, _> = b.state().into_iter().collect();
    assert_eq!(Vec::<f32>::try_from(&state["p.0"]).unwrap(), vec![0.1, 0.1]);
    let e = b.load_state(&std::collections::HashMap::new()).unwrap_err();
    assert!(e.contains("steps"), "{e}");
}

/// Muon against `torch.optim.Muon`'s own step (its Newton-Schulz iteration in float64, Nesterov,
/// `match_rms_adamw`) on a wide and a tall matrix, and AdamW on the 1-D parameter, 3 steps
/// (scripts/golden/optim.py). Inside a residual block both matrices are hidden weights.
#[test]
fn muon_matches_torch_optim_golden_values() {
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/optim_golden.json")).unwrap();
    let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
    let wide = Tensor::from_slice(&[0.5f64, 3.0, -1.0, 2.0, -0.5, 1.0])
        .view([2, 3])
        .set_requires_grad(true);
    let tall = Tensor::from_slice(&[1.5f64, -1.0, 0.25, 2.0, -3.0, 0.5])
        .view([3, 2])
        .set_requires_grad(true);
    let named = vec![
        ("layer1.0.p".into(), p.shallow_clone()),
        ("layer1.0.wide".into(), wide.shallow_clone()),
        ("layer1.0.tall".into(), tall.shallow_clone()),
    ];
    let cfg = OptimConfig {
        name: OptimName::Muon,
        ..OptimConfig::default()
    };
    let mut opt = Optimizer::new(named, &cfg);
    assert_eq!(opt.groups.iter().filter(|g| g.rule == 1).count(), 1, "one Muon group");
    let c3 = Tensor::from_slice(&[1.0f64, 0.5, 2.0]);
    let c2 = Tensor::from_slice(&[1.0f64, 0.5]);
    for _ in 0..3 {
        opt.zero_grad();
        let loss = (&p * &p * &c2).sum(Kind::Double)
            + (&wide * &wide * &c3).sum(Kind::Double)
            + (&tall * &tall * &c2).sum(Kind::Double);
        loss.backward();
        opt.step(0.05, 0.1);
    }
    let want = |k: &str| -> Vec<f64> { serde_json::from_value(golden["muon"][k].clone()).unwrap() };
    let flat = |t: &Tensor| Vec::<f64>::try_from(&t.flatten(0, -1)).unwrap();
    assert_close(&flat(&p), &want("p"));
    assert_close(&flat(&wide), &want("wide"));
    assert_close(&flat(&tall), &want("tall"));
}

/// With `optim.name = "muon"`, only the hidden weights take Muon: the stem's filters, the
/// classifier and 1-D parameters take AdamW. A channels-last filter bank gets the update Muon
/// gives its contiguous copy (as a matrix of one row per output channel).
#[test]
fn muon_takes_the_hidden_weights_in_their_own_shape() {
    tch::manual_seed(3);
    let opts = (Kind::Float, Device::Cpu);
    let conv = channels_last(&Tensor::randn([8, 4, 3, 3], opts)).set_requires_grad(true);
    let named: Vec<(String, Tensor)> = [
        ("conv1.weight", Tensor::randn([4, 1, 3, 3], opts)),
        ("layer1.0.bn1.weight", Tensor::randn([8], opts)),
        ("fc.weight", Tensor::randn([10, 8], opts)),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.set_requires_grad(true)))
    .chain([("layer1.0.conv1.weight".to_string(), conv.shallow_clone())])
    .collect();
    let cfg = OptimConfig {
        name: OptimName::Muon,
        ..OptimConfig::default()
    };
    let mut opt = Optimizer::new(named, &cfg);
    let muon_members: Vec<&str> = opt
        .groups
        .iter()
        .filter(|g| g.rule == 1)
        .flat_map(|g| g.members.iter().map(|m| m.name.as_str()))
        .collect();
    assert_eq!(muon_members, ["layer1.0.conv1.weight"]);
    let mut want = conv.copy().contiguous();
    let mut state = vec![want.zeros_like()];
    let coef = Tensor::randn([8, 4, 3, 3], opts);
    for step in 1..=3 {
        opt.zero_grad();
        (&conv * &conv * &coef).sum(Kind::Float).backward();
        opt.step(0.05, 0.1);
        let grad = &want * &coef * 2.0;
        rules(&cfg)[1].update(&mut want, &grad, &mut state, 0.05, 0.1, step);
    }
    let diff = (&conv - &want).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
    assert!(conv.stride() == channels_last(&want).stride(), "memory order kept");
}

/// Plain SGD (no momentum, no decay) on loss sum(c * w^2) over w = [1, -2], with `cfg`'s
/// Lookahead; `edit` changes the weights after the optimizer is made (as whitening does),
/// before the first step. Returns the optimizer and the weights.
fn lookahead_run(cfg: &OptimConfig, steps: usize, edit: Option<[f64; 2]>) -> (Optimizer, Tensor) {
    let w = Tensor::from_slice(&[1.0f64, -2.0]).view([1, 2]).set_requires_grad(true);
    let mut opt = Optimizer::new(vec![("w".into(), w.shallow_clone())], cfg);
    if let Some(x) = edit {
        tch::no_grad(|| w.shallow_clone().copy_(&Tensor::from_slice(&x).view([1, 2])));
    }
    lookahead_steps(&mut opt, &w, steps);
    (opt, w)
}

fn lookahead_steps(opt: &mut Optimizer, w: &Tensor, steps: usize) {
    let c = Tensor::from_slice(&[1.0f64, 0.5]);
    for _ in 0..steps {
        opt.zero_grad();
        (w * w * &c).sum(Kind::Double).backward();
        opt.step(0.1, 0.0);
    }
}

fn sgd_lookahead(k: u32, alpha: f64) -> OptimConfig {
    OptimConfig {
        momentum: 0.0,
        nesterov: false,
        lookahead_k: k,
        lookahead_alpha: alpha,
        ..OptimConfig::default()
    }
}

/// Lookahead as Zhang et al. 2019's Algorithm 1, computed by hand: the slow weights start at
/// the weights of the first step (here edited after the optimizer was made, as the whitened
/// stem is), every k-th fast step they move alpha of the way to the fast weights, and the fast
/// weights restart from them.
#[test]
fn lookahead_follows_algorithm_1() {
    let (k, alpha, steps) = (3, 0.5, 8);
    let (_, w) = lookahead_run(&sgd_lookahead(k, alpha), steps, Some([1.5, -1.0]));
    let c = [1.0, 0.5];
    let (mut theta, mut phi) = ([1.5f64, -1.0], [1.5f64, -1.0]);
    for t in 1..=steps {
        for i in 0..2 {
            theta[i] -= 0.1 * 2.0 * c[i] * theta[i];
        }
        if t % k as usize == 0 {
            for i in 0..2 {
                phi[i] += alpha * (theta[i] - phi[i]);
            }
            theta = phi;
        }
    }
    assert_close(&Vec::try_from(&w.flatten(0, -1)).unwrap(), &theta);
    // Off (k = 0), or alpha 1 (the slow weights jump to the fast ones): plain SGD.
    let (_, plain) = lookahead_run(&sgd_lookahead(0, 0.5), steps, None);
    let (_, alpha_one) = lookahead_run(&sgd_lookahead(3, 1.0), steps, None);
    assert!(plain.allclose(&alpha_one, 1e-12, 1e-15, false));
}

/// The slow weights are checkpointed: saved after 4 steps (mid-cycle) and loaded into a fresh
/// optimizer, 5 more steps give the same weights as 9 steps in one go.
#[test]
fn lookahead_state_round_trips() {
    let cfg = sgd_lookahead(3, 0.5);
    let (straight, w9) = lookahead_run(&cfg, 9, None);
    assert!(straight.state().iter().any(|(n, _)| n == "w.lookahead"));
    let (first, w4) = lookahead_run(&cfg, 4, None);
    let saved: std::collections::HashMap<_, _> = first.state().into_iter().collect();
    let w = w4.detach().copy().set_requires_grad(true);
    let mut resumed = Optimizer::new(vec![("w".into(), w.shallow_clone())], &cfg);
    resumed.load_state(&saved).unwrap();
    lookahead_steps(&mut resumed, &w, 5);
    assert!(w.allclose(&w9, 1e-12, 1e-15, false), "{w} {w9}");
    let mut without = saved;
    without.remove("w.lookahead");
    let e = Optimizer::new(vec![("w".into(), w.shallow_clone())], &cfg)
        .load_state(&without)
        .unwrap_err();
    assert!(e.contains("w.lookahead"), "{e}");
}

/// `lr_1d_scale` multiplies the learning rate of 1-D parameters only (airbench94's norm biases).
#[test]
fn lr_1d_scale_scales_the_learning_rate_of_1d_parameters() {
    let cfg = OptimConfig {
        momentum: 0.0,
        nesterov: false,
        lr_1d_scale: 64.0,
        ..OptimConfig::default()
    };
    let b = Tensor::from_slice(&[1.0f64]).set_requires_grad(true);
    let w = Tensor::from_slice(&[1.0f64]).view([1, 1]).set_requires_grad(true);
    let mut opt = Optimizer::new(
        vec![("b".into(), b.shallow_clone()), ("w".into(), w.shallow_clone())],
        &cfg,
    );
    (b.sum(Kind::Double) + w.sum(Kind::Double)).backward();
    opt.step(0.001, 0.0);
    assert_close(&Vec::try_from(&b).unwrap(), &[1.0 - 0.064]);
    assert_close(&Vec::try_from(&w.flatten(0, -1)).unwrap(), &[1.0 - 0.001]);
}
