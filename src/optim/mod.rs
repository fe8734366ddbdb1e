//! Optimizers with PyTorch's and timm's exact update rules, over named parameters.
//!
//! They are written here rather than taken from libtorch's C++ optimizers so that the learning
//! rate and weight decay can be set per step (schedules, scheduled regularization) and 1-D
//! parameters (biases, norm scales) can be excluded from decay, as timm does by default.
//! Each update rule is one file behind [`UpdateRule`] (`sgd`, `adam` with AdamW, `lion`,
//! `rmsprop_tf`, `lamb`, `muon`, each with its formula; Muon updates the hidden weights and AdamW
//! the rest); grouping, layer-wise learning-rate decay,
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
pub mod muon;
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

    /// Whether each update needs a whole parameter, in its own shape (per-parameter norms, as
    /// Lamb's trust ratio; Muon's matrix); otherwise runs of consecutive parameters are updated
    /// at once, flat.
    fn per_parameter(&self) -> bool {
        false
    }

    /// Updates `p` from `grad` and `state` (each of equal length) with learning rate `lr`,
    /// weight decay `wd` and step number `t` (from 1).
    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, t: i32);
}

/// The update rules `cfg` names, with their hyperparameters: one, or for Muon, AdamW (for
/// every parameter but the hidden weights) then Muon.
pub fn rules(cfg: &OptimConfig) -> Vec<Box<dyn UpdateRule>> {
    if cfg.name == OptimName::Muon {
        let adamw = OptimConfig {
            name: OptimName::Adamw,
            ..cfg.clone()
        };
        let muon = muon::Muon {
            momentum: cfg.momentum,
            nesterov: cfg.nesterov,
        };
        return vec![rule(&adamw), Box::new(muon)];
    }
    vec![rule(cfg)]
}

/// The update rule of one kind `cfg` names (not Muon, which is two: [`rules`]).
fn rule(cfg: &OptimConfig) -> Box<dyn UpdateRule> {
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
        OptimName::Muon => unreachable!("Muon is two rules: `rules`"),
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
    /// Its update rule: an index into [`Optimizer`]'s rules.
    rule: usize,
    decay: bool,
    /// The learning rate's factor for this group (layer-wise decay; 1 without).
    lr_scale: f64,
    values: Tensor,
    grads: Tensor,
    state: Vec<Tensor>,
    /// Lookahead's slow weights, a copy of `values` taken at the first step; None before it and
    /// without Lookahead.
    slow: Option<Tensor>,
    members: Vec<Member>,
}

impl Group {
    /// `flat` seen as member `m`'s tensor, with the parameter's own shape and memory order.
    fn view(flat: &Tensor, m: &Member) -> Tensor {
        flat.as_strided(m.size.as_slice(), m.stride.as_slice(), m.offset)
    }

    /// Maximal runs `(offset, numel)` of consecutive members being trained: the whole buffer
    /// when nothing is frozen. Runs span the padding between their members ([`ALIGN`]): it holds zeros in values,
    /// gradients and state, which every update rule leaves at zero.
    fn trainable_runs(&self) -> Vec<(i64, i64)> {
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for m in self.members.iter().filter(|m| !m.frozen) {
            match runs.last_mut() {
                Some((start, len)) if aligned(*start + *len) == m.offset => *len = m.offset + m.numel - *start,
                _ => runs.push((m.offset, m.numel)),
            }
        }
        runs
    }
}

/// What the parameters of one group share: dtype, device, weight decay on or off, learning-rate
/// scale (as f64 bits) and update rule.
type GroupKey = (Kind, Device, bool, u64, usize);

pub struct Optimizer {
    rules: Vec<Box<dyn UpdateRule>>,
    groups: Vec<Group>,
    /// Steps taken so far (Adam's bias-correction counter).
    steps: i64,
    /// Lookahead's `(k, alpha)` (`optim.lookahead_k`, `lookahead_alpha`); None when off.
    lookahead: Option<(i64, f64)>,
}

/// Each parameter starts at a multiple of this many elements of its group's flat buffers (256
/// bytes of float32), as PyTorch's CUDA allocator starts every tensor at a multiple of 512
/// bytes: CUDA kernels load 16-byte vectors, and a parameter packed right after one of 10
/// elements (a classifier's bias) failed in fp32 channels-last batch norm on an H200 with
/// "misaligned address".
const ALIGN: i64 = 64;

/// `n` rounded up to a multiple of [`ALIGN`].
fn aligned(n: i64) -> i64 {
    (n + ALIGN - 1) / ALIGN * ALIGN
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
        let rules = rules(cfg);
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        let (layer, n_layers) = crate::model::layer_groups(&names);
        let mut keyed: Vec<(GroupKey, Vec<(String, Tensor)>)> = Vec::new();
        for ((name, t), layer) in named.into_iter().zip(layer) {
            // timm's scale `layer_decay^(n - 1 - i)`; 1 for every group when the decay is off;
            // times `lr_1d_scale` for biases and norm parameters.
            let scale =
                cfg.layer_decay.powi((n_layers - 1 - layer) as i32) * if t.dim() <= 1 { cfg.lr_1d_scale } else { 1.0 };
            // Muon's hidden weights: matrices and filters outside the stem and the classifier.
            let hidden = t.dim() >= 2 && layer != 0 && layer != n_layers - 1;
            let rule = usize::from(rules.len() > 1 && hidden);
            let decay = !(cfg.exclude_1d && t.dim() <= 1);
            let key = (t.kind(), t.device(), decay, scale.to_bits(), rule);
            match keyed.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((name, t)),
                None => keyed.push((key, vec![(name, t)])),
            }
        }
        let groups = keyed
            .into_iter()
            .map(|((kind, device, decay, scale, rule), params)| {
                let mut g = Group::new(params, kind, device, decay, rules[rule].state_buffers());
                g.lr_scale = f64::from_bits(scale);
                g.rule = rule;
                g
            })
            .collect::<Vec<Group>>();
        for g in &groups {
            for (k, state) in g.state.iter().enumerate() {
                let _ = state.shallow_clone().fill_(rules[g.rule].initial_state(k));
            }
        }
        Optimizer {
            rules,
            groups,
            steps: 0,
            lookahead: (cfg.lookahead_k > 0).then_some((i64::from(cfg.lookahead_k), cfg.lookahead_alpha)),
        }
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

    /// One update with learning rate `lr` and weight decay `wd` (both may change every step);
    /// with Lookahead, every k-th update is followed by its slow step ([`Optimizer::lookahead`]).
    pub fn step(&mut self, lr: f64, wd: f64) {
        if self.lookahead.is_some() {
            // The slow weights start at the weights training starts from (after any
            // initialisation or whitening the model had since this optimizer was made).
            for g in self.groups.iter_mut().filter(|g| g.slow.is_none()) {
                g.slow = Some(g.values.copy());
            }
        }
        self.steps += 1;
        let t = self.steps as i32;
        tch::no_grad(|| {
            for g in &self.groups {
                let (rule, lr) = (&self.rules[g.rule], lr * g.lr_scale);
                let wd = if g.decay { wd } else { 0.0 };
                let update = |part: &dyn Fn(&Tensor) -> Tensor| {
                    let mut state: Vec<Tensor> = g.state.iter().map(part).collect();
                    rule.update(&mut part(&g.values), &part(&g.grads), &mut state, lr, wd, t);
                };
                if rule.per_parameter() {
                    for m in g.members.iter().filter(|m| !m.frozen) {
                        update(&|x| Group::view(x, m));
                    }
                } else {
                    for (offset, n) in g.trainable_runs() {
                        update(&|x| x.narrow(0, offset, n));
                    }
                }
            }
        });
        self.slow_step();
    }

    /// Lookahead's slow step over the parameters being trained, after every k-th update:
    /// `phi += alpha * (theta - phi)`, then `theta = phi` (Zhang et al. 2019, Algorithm 1).
    fn slow_step(&self) {
        let Some((_, alpha)) = self.lookahead.filter(|&(k, _)| self.steps % k == 0) else {
            return;
        };
        tch::no_grad(|| {
            for g in &self.groups {
                let slow = g.slow.as_ref().expect("taken at the first step");
                for (offset, n) in g.trainable_runs() {
                    let (mut phi, mut theta) = (slow.narrow(0, offset, n), g.values.narrow(0, offset, n));
                    let _ = phi.g_add_(&((&theta - &phi) * alpha));
                    theta.copy_(&phi);
                }
            }
        });
    }

    /// The optimizer state as named tensors (`<parameter>.<k>`, shaped as the parameter, and
    /// Lookahead's slow weights `<parameter>.lookahead`), for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for g in &self.groups {
            for m in &g.members {
                for (k, s) in g.state.iter().enumerate() {
                    out.push((format!("{}.{k}", m.name), Group::view(s, m)));
                }
                if let Some(slow) = &g.slow {
                    out.push((format!("{}.lookahead", m.name), Group::view(slow, m)));
                }
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`]; errors name the first missing entry.
    pub fn load_state(&mut self, saved: &std::collections::HashMap<String, Tensor>) -> Result<(), String> {
        let get = |k: &str| saved.get(k).ok_or_else(|| format!("optimizer state `{k}` missing"));
        self.steps = get("steps")?.int64_value(&[]);
        let lookahead = self.lookahead.is_some() && self.steps > 0;
        tch::no_grad(|| {
            for g in &mut self.groups {
                if lookahead {
                    g.slow = Some(g.values.zeros_like());
                }
                for m in &g.members {
                    for (k, s) in g.state.iter().enumerate() {
                        Group::view(s, m).copy_(get(&format!("{}.{k}", m.name))?);
                    }
                    if let Some(slow) = &g.slow {
                        Group::view(slow, m).copy_(get(&format!("{}.lookahead", m.name))?);
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
                offset = aligned(offset + numel);
                m
            })
            .collect();
        let zeros = || Tensor::zeros([offset], (kind, device));
        let group = Group {
            rule: 0,
            decay,
            lr_scale: 1.0,
            values: zeros(),
            grads: zeros(),
            state: (0..n_state).map(|_| zeros()).collect(),
            slow: None,
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
mod tests;
