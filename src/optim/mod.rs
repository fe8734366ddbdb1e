//! Optimizers with PyTorch's and timm's exact update rules, over named parameters.
//!
//! They are written here rather than taken from libtorch's C++ optimizers so that the learning
//! rate and weight decay can be set per step (schedules, scheduled regularization) and 1-D
//! parameters (biases, norm scales) can be excluded from decay, as timm does by default.
//! Each update rule is one file behind [`UpdateRule`] (`sgd`, `adam` with AdamW, `lion`,
//! `rmsprop_tf`, `lamb`, each with its formula); grouping, layer-wise learning-rate decay,
//! freezing, clipping (`clip`) and the state in checkpoints are [`Optimizer`]'s, written once.
//!
//! One fused step: the parameters of a group (same kind, device and decay setting) are views of
//! one flat buffer, and so are their gradients and each optimizer state, so an update is a
//! handful of element-wise kernels over the whole group whatever the number of tensors (as
//! apex's and DeepSpeed's flat-buffer optimizers; torch.optim's `foreach` path gets a similar
//! effect with multi-tensor kernels, which tch does not bind). Every element still follows the
//! per-tensor formulas.
mod adam;
mod clip;
mod lamb;
mod lion;
mod rmsprop_tf;
mod sgd;

use crate::recipe::{ClipMode, OptimConfig, OptimName};
use tch::{Device, Kind, Tensor};

/// One optimizer's update rule, applied to runs of elements of flat buffers: everything else
/// (grouping, layer-wise learning rates, freezing, clipping, state and checkpoints) is
/// [`Optimizer`]'s, written once for every rule.
pub trait UpdateRule {
    /// State buffers the rule keeps per parameter element (SGD's momentum: 1; Adam's moments: 2).
    fn state_buffers(&self) -> usize;

    /// The value state buffer `k` starts at.
    fn initial_state(&self, _k: usize) -> f64 {
        0.0
    }

    /// Whether each update needs a whole parameter (per-parameter norms, as Lamb's trust ratio);
    /// otherwise runs of consecutive parameters are updated at once.
    fn per_parameter(&self) -> bool {
        false
    }

    /// Updates `p` from `grad` and `state` (each of equal length) with learning rate `lr`,
    /// weight decay `wd` and step number `t` (from 1).
    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, t: i32);
}

/// The update rule `cfg` names, with its hyperparameters.
pub fn rule(cfg: &OptimConfig) -> Box<dyn UpdateRule> {
    match cfg.name {
        OptimName::Sgd => Box::new(sgd::Sgd {
            momentum: cfg.momentum,
            nesterov: cfg.nesterov,
        }),
        OptimName::Adam | OptimName::Adamw => Box::new(adam::Adam {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            decoupled: cfg.name == OptimName::Adamw,
        }),
        OptimName::Lion => Box::new(lion::Lion {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
        }),
        OptimName::RmspropTf => Box::new(rmsprop_tf::RmspropTf {
            alpha: cfg.alpha,
            eps: cfg.eps,
            momentum: cfg.momentum,
        }),
        OptimName::Lamb => Box::new(lamb::Lamb {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
        }),
    }
}

/// Where one parameter lies in its group's flat buffers.
struct Member {
    name: String,
    offset: i64,
    numel: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
    /// Not updated (e.g. the backbone while fine-tuning only the classifier).
    frozen: bool,
}

/// Parameters of one kind, device and decay setting: their values, gradients and optimizer
/// state (SGD: momentum buffer; Adam: first and second moments) as flat 1-D buffers.
struct Group {
    decay: bool,
    /// The learning rate's factor for this group (layer-wise decay; 1 without).
    lr_scale: f64,
    values: Tensor,
    grads: Tensor,
    state: Vec<Tensor>,
    members: Vec<Member>,
}

impl Group {
    /// `flat` seen as member `m`'s tensor, with the parameter's own shape and memory order.
    fn view(flat: &Tensor, m: &Member) -> Tensor {
        flat.as_strided(m.size.as_slice(), m.stride.as_slice(), m.offset)
    }

    /// Maximal runs `(offset, numel)` of consecutive members that are not frozen: the whole
    /// buffer when nothing is frozen.
    /// (offset, length) of each member being trained.
    fn trainable_members(&self) -> Vec<(i64, i64)> {
        self.members
            .iter()
            .filter(|m| !m.frozen)
            .map(|m| (m.offset, m.numel))
            .collect()
    }

    fn trainable_runs(&self) -> Vec<(i64, i64)> {
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for m in self.members.iter().filter(|m| !m.frozen) {
            match runs.last_mut() {
                Some((start, len)) if *start + *len == m.offset => *len += m.numel,
                _ => runs.push((m.offset, m.numel)),
            }
        }
        runs
    }
}

/// What parameters of one group share: kind, device, and whether weight decay applies.
/// A group's dtype, device, weight decay on or off, and learning-rate scale (as f64 bits).
type GroupKey = (Kind, Device, bool, u64);

pub struct Optimizer {
    rule: Box<dyn UpdateRule>,
    groups: Vec<Group>,
    /// Steps taken so far (Adam's bias-correction counter).
    steps: i64,
}

/// Elements a dense tensor of this size and stride spans (numel when contiguous or
/// channels-last; more when it has gaps).
fn span(size: &[i64], stride: &[i64]) -> i64 {
    1 + size.iter().zip(stride).map(|(n, s)| (n - 1) * s).sum::<i64>()
}

impl Optimizer {
    /// Takes the trainable tensors of a model by name; state buffers start at zero. Each tensor
    /// becomes a view of its group's flat buffer (same values, shape and memory order) and gets a
    /// zero gradient that is a view of the group's flat gradient, so backward passes accumulate
    /// straight into it. Convert the model's memory order (channels-last) before this.
    pub fn new(named: Vec<(String, Tensor)>, cfg: &OptimConfig) -> Self {
        let rule = rule(cfg);
        let n_state = rule.state_buffers();
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        let (layer, n_layers) = crate::model::layer_groups(&names);
        let mut keyed: Vec<(GroupKey, Vec<(String, Tensor)>)> = Vec::new();
        for ((name, t), layer) in named.into_iter().zip(layer) {
            // timm's scale `layer_decay^(n - 1 - i)`; 1 for every group when the decay is off.
            let scale = cfg.layer_decay.powi((n_layers - 1 - layer) as i32);
            let key = (t.kind(), t.device(), !(cfg.exclude_1d && t.dim() <= 1), scale.to_bits());
            match keyed.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((name, t)),
                None => keyed.push((key, vec![(name, t)])),
            }
        }
        let groups = keyed
            .into_iter()
            .map(|((kind, device, decay, scale), params)| {
                let mut g = Group::new(params, kind, device, decay, n_state);
                g.lr_scale = f64::from_bits(scale);
                g
            })
            .collect::<Vec<Group>>();
        for g in &groups {
            for (k, state) in g.state.iter().enumerate() {
                let _ = state.shallow_clone().fill_(rule.initial_state(k));
            }
        }
        Optimizer { rule, groups, steps: 0 }
    }

    /// The trainable variables of a VarStore, sorted by name so state order is stable.
    pub fn trainable(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Freezes the parameters whose name satisfies `frozen` and unfreezes the others.
    pub fn freeze(&mut self, frozen: impl Fn(&str) -> bool) {
        for m in self.groups.iter_mut().flat_map(|g| g.members.iter_mut()) {
            m.frozen = frozen(&m.name);
        }
    }

    /// Zeroes every gradient: one kernel per group.
    pub fn zero_grad(&mut self) {
        for g in &mut self.groups {
            let _ = g.grads.zero_();
        }
    }

    /// The flat gradient buffers (one per group), e.g. for loss scaling to unscale in place.
    pub fn grads(&self) -> Vec<Tensor> {
        self.groups.iter().map(|g| g.grads.shallow_clone()).collect()
    }

    /// Clips the gradients of the parameters being trained in place, before a step, as timm's
    /// `dispatch_clip_grad(parameters, value, mode)` (`ClipMode` has the formulas). Frozen
    /// parameters take no part, as in timm, where they have no gradient.
    pub fn clip_grads(&mut self, mode: ClipMode, value: f64) {
        tch::no_grad(|| match mode {
            ClipMode::Norm => {
                let runs = || {
                    self.groups.iter().flat_map(|g| {
                        g.trainable_runs()
                            .into_iter()
                            .map(|(offset, n)| g.grads.narrow(0, offset, n))
                    })
                };
                let squares: f64 = runs()
                    .map(|r| r.to_kind(Kind::Double).square().sum(Kind::Double).double_value(&[]))
                    .sum();
                let coef = (value / (squares.sqrt() + 1e-6)).min(1.0);
                for mut r in runs() {
                    let _ = r.g_mul_scalar_(coef);
                }
            }
            ClipMode::Value => {
                for g in &self.groups {
                    for (offset, n) in g.trainable_runs() {
                        let _ = g.grads.narrow(0, offset, n).clamp_(-value, value);
                    }
                }
            }
            ClipMode::Agc => {
                for g in &self.groups {
                    for m in g.members.iter().filter(|m| !m.frozen) {
                        clip::adaptive_clip(&Group::view(&g.values, m), &mut Group::view(&g.grads, m), value);
                    }
                }
            }
        });
    }

    /// One update with learning rate `lr` and weight decay `wd` (both may change every step).
    pub fn step(&mut self, lr: f64, wd: f64) {
        self.steps += 1;
        let t = self.steps as i32;
        tch::no_grad(|| {
            for g in &self.groups {
                let wd = if g.decay { wd } else { 0.0 };
                let spans = if self.rule.per_parameter() {
                    g.trainable_members()
                } else {
                    g.trainable_runs()
                };
                for (offset, n) in spans {
                    let part = |x: &Tensor| x.narrow(0, offset, n);
                    let mut state: Vec<Tensor> = g.state.iter().map(part).collect();
                    let grad = part(&g.grads);
                    self.rule
                        .update(&mut part(&g.values), &grad, &mut state, lr * g.lr_scale, wd, t);
                }
            }
        });
    }

    /// The optimizer state as named tensors (`<parameter>.<k>`, shaped as the parameter), for
    /// checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for g in &self.groups {
            for m in &g.members {
                for (k, s) in g.state.iter().enumerate() {
                    out.push((format!("{}.{k}", m.name), Group::view(s, m)));
                }
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`]; errors name the first missing entry.
    pub fn load_state(&mut self, saved: &std::collections::HashMap<String, Tensor>) -> Result<(), String> {
        let get = |k: &str| saved.get(k).ok_or_else(|| format!("optimizer state `{k}` missing"));
        self.steps = get("steps")?.int64_value(&[]);
        tch::no_grad(|| {
            for g in &self.groups {
                for m in &g.members {
                    for (k, s) in g.state.iter().enumerate() {
                        Group::view(s, m).copy_(get(&format!("{}.{k}", m.name))?);
                    }
                }
            }
            Ok(())
        })
    }
}

impl Group {
    /// Moves `params` into fresh flat buffers: each parameter keeps its values, shape and
    /// memory order but now lives in `values`, and its gradient in `grads`.
    fn new(params: Vec<(String, Tensor)>, kind: Kind, device: Device, decay: bool, n_state: usize) -> Group {
        let mut offset = 0;
        let members: Vec<Member> = params
            .iter()
            .map(|(name, t)| {
                let (size, stride, numel) = (t.size(), t.stride(), t.numel() as i64);
                assert!(
                    numel == 0 || span(&size, &stride) == numel,
                    "parameter `{name}` has gaps in memory (size {size:?}, stride {stride:?})"
                );
                let m = Member {
                    name: name.clone(),
                    offset,
                    numel,
                    size,
                    stride,
                    frozen: false,
                };
                offset += numel;
                m
            })
            .collect();
        let zeros = || Tensor::zeros([offset], (kind, device));
        let group = Group {
            decay,
            lr_scale: 1.0,
            values: zeros(),
            grads: zeros(),
            state: (0..n_state).map(|_| zeros()).collect(),
            members,
        };
        for ((_, t), m) in params.iter().zip(&group.members) {
            let mut t = t.shallow_clone();
            tch::no_grad(|| {
                let mut view = Group::view(&group.values, m);
                view.copy_(&t);
                t.set_data(&view);
            });
            if !t.requires_grad() {
                continue;
            }
            if !t.grad().defined() {
                // A zero gradient with the parameter's layout, to be re-pointed below.
                (t.sum(kind) * 0.0).backward();
            }
            t.grad().set_data(&Group::view(&group.grads, m));
        }
        group
    }
}

#[cfg(test)]
mod tests {
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
}
