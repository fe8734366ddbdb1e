//! Optimizers with PyTorch's exact update rules (TRICKS.md section 3), over named parameters.
//!
//! They are written here rather than taken from libtorch's C++ optimizers so that the learning
//! rate and weight decay can be set per step (schedules, scheduled regularization) and 1-D
//! parameters (biases, norm scales) can be excluded from decay, as timm does by default.
//! - SGD, dampening 0: `v = mu*v + g; p -= lr*v`; Nesterov: `p -= lr*(g + mu*v)`;
//!   coupled L2 decay `g += wd*p`.
//! - Adam (`torch.optim.Adam`): `m = b1*m + (1-b1)*g`, `v = b2*v + (1-b2)*g^2`,
//!   `p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`; coupled decay.
//! - AdamW: `p *= 1 - lr*wd` first (decoupled), then the Adam step without decay.
use crate::recipe::{OptimConfig, OptimName};
use tch::Tensor;

/// One parameter with its optimizer state (SGD: momentum buffer; Adam: first and second moments).
struct Param {
    name: String,
    tensor: Tensor,
    decay: bool,
    /// Not updated (e.g. the backbone while fine-tuning only the classifier).
    frozen: bool,
    state: Vec<Tensor>,
}

pub struct Optimizer {
    cfg: OptimConfig,
    params: Vec<Param>,
    /// Steps taken so far (Adam's bias-correction counter).
    steps: i64,
}

impl Optimizer {
    /// Takes the trainable tensors of a model by name; state buffers start at zero.
    pub fn new(named: Vec<(String, Tensor)>, cfg: &OptimConfig) -> Self {
        let n_state = match cfg.name {
            OptimName::Sgd => 1,
            OptimName::Adam | OptimName::Adamw => 2,
        };
        let params = named
            .into_iter()
            .map(|(name, tensor)| Param {
                decay: !(cfg.exclude_1d && tensor.dim() <= 1),
                frozen: false,
                state: (0..n_state).map(|_| tensor.zeros_like()).collect(),
                name,
                tensor,
            })
            .collect();
        Optimizer {
            cfg: cfg.clone(),
            params,
            steps: 0,
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
        for p in &mut self.params {
            p.frozen = frozen(&p.name);
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.tensor.zero_grad();
        }
    }

    /// One update with learning rate `lr` and weight decay `wd` (both may change every step).
    pub fn step(&mut self, lr: f64, wd: f64) {
        self.steps += 1;
        let cfg = &self.cfg;
        let t = self.steps as i32;
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.tensor.grad();
                if !grad.defined() || p.frozen {
                    continue;
                }
                let wd = if p.decay { wd } else { 0.0 };
                match cfg.name {
                    OptimName::Sgd => sgd(p, grad, lr, wd, cfg),
                    OptimName::Adam => adam(p, grad, lr, wd, t, cfg),
                    OptimName::Adamw => {
                        if wd != 0.0 {
                            let _ = p.tensor.g_mul_scalar_(1.0 - lr * wd);
                        }
                        adam(p, grad, lr, 0.0, t, cfg)
                    }
                }
            }
        });
    }

    /// The optimizer state as named tensors, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for p in &self.params {
            for (k, s) in p.state.iter().enumerate() {
                out.push((format!("{}.{k}", p.name), s.shallow_clone()));
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`]; errors name the first missing entry.
    pub fn load_state(&mut self, saved: &std::collections::HashMap<String, Tensor>) -> Result<(), String> {
        let get = |k: &str| saved.get(k).ok_or_else(|| format!("optimizer state `{k}` missing"));
        self.steps = get("steps")?.int64_value(&[]);
        tch::no_grad(|| {
            for p in &mut self.params {
                for (k, s) in p.state.iter_mut().enumerate() {
                    s.copy_(get(&format!("{}.{k}", p.name))?);
                }
            }
            Ok(())
        })
    }
}

fn sgd(p: &mut Param, grad: Tensor, lr: f64, wd: f64, cfg: &OptimConfig) {
    let g = if wd != 0.0 { grad + &p.tensor * wd } else { grad };
    let d = if cfg.momentum != 0.0 {
        let buf = &mut p.state[0];
        let _ = buf.g_mul_scalar_(cfg.momentum);
        let _ = buf.g_add_(&g);
        if cfg.nesterov {
            g + &*buf * cfg.momentum
        } else {
            buf.shallow_clone()
        }
    } else {
        g
    };
    let _ = p.tensor.g_sub_(&(d * lr));
}

fn adam(p: &mut Param, grad: Tensor, lr: f64, wd: f64, t: i32, cfg: &OptimConfig) {
    let g = if wd != 0.0 { grad + &p.tensor * wd } else { grad };
    let (b1, b2) = (cfg.beta1, cfg.beta2);
    let _ = p.state[0].g_mul_scalar_(b1);
    let _ = p.state[0].g_add_(&(&g * (1.0 - b1)));
    let _ = p.state[1].g_mul_scalar_(b2);
    let _ = p.state[1].g_add_(&(&g * &g * (1.0 - b2)));
    let bc1 = 1.0 - b1.powi(t);
    let bc2 = 1.0 - b2.powi(t);
    let denom = p.state[1].sqrt() / bc2.sqrt() + cfg.eps;
    let _ = p.tensor.g_sub_(&(&p.state[0] / denom * (lr / bc1)));
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
            serde_json::from_str(include_str!("../tests/fixtures/optim_golden.json")).unwrap();
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
        assert_eq!(Vec::<f32>::try_from(&b.params[0].state[0]).unwrap(), vec![0.1, 0.1]);
        let e = b.load_state(&std::collections::HashMap::new()).unwrap_err();
        assert!(e.contains("steps"), "{e}");
    }
}
