//! Exponential moving average of the weights (Polyak averaging), as timm's `ModelEmaV3`:
//! after each optimizer step `shadow = d * shadow + (1 - d) * weight` for every parameter and
//! buffer, with `d = min(decay, (1 + n) / (10 + n))` at update n when warm-up is on.
use std::collections::HashMap;
use tch::{Tensor, nn::VarStore};

pub struct Ema {
    decay: f64,
    warmup: bool,
    updates: i64,
    /// Name -> averaged copy, for every floating-point variable of the model.
    shadow: Vec<(String, Tensor)>,
}

impl Ema {
    pub fn new(vs: &VarStore, decay: f64, warmup: bool) -> Self {
        let mut shadow: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, v)| v.is_floating_point())
            .map(|(k, v)| (k, v.detach().copy()))
            .collect();
        shadow.sort_by(|a, b| a.0.cmp(&b.0));
        Ema {
            decay,
            warmup,
            updates: 0,
            shadow,
        }
    }

    /// The decay applied at update `n` (0-based).
    pub fn decay_at(&self, n: i64) -> f64 {
        if self.warmup {
            self.decay.min((1.0 + n as f64) / (10.0 + n as f64))
        } else {
            self.decay
        }
    }

    pub fn update(&mut self, vs: &VarStore) {
        let d = self.decay_at(self.updates);
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, s) in &mut self.shadow {
                let _ = s.g_mul_scalar_(d);
                let _ = s.g_add_(&(&vars[name] * (1.0 - d)));
            }
        });
        self.updates += 1;
    }

    /// Exchanges the model's weights with the averaged ones (call twice to restore).
    pub fn swap(&mut self, vs: &VarStore) {
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, s) in &mut self.shadow {
                let mut v = vars[name].shallow_clone();
                let tmp = v.copy();
                v.copy_(s);
                s.copy_(&tmp);
            }
        });
    }

    /// Named tensors for checkpoints: `ema.<name>` and `ema_updates`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .shadow
            .iter()
            .map(|(k, v)| (format!("ema.{k}"), v.shallow_clone()))
            .collect();
        out.push(("ema_updates".into(), Tensor::from(self.updates)));
        out
    }

    /// Restores [`Ema::state`]; returns the first missing name on failure.
    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<(), String> {
        let get = |k: &str| saved.get(k).ok_or_else(|| format!("`{k}` missing"));
        self.updates = get("ema_updates")?.int64_value(&[]);
        tch::no_grad(|| {
            for (name, s) in &mut self.shadow {
                s.copy_(get(&format!("ema.{name}"))?);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn update_follows_the_formula_with_warmup() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2], tch::nn::Init::Const(1.0));
        let mut ema = Ema::new(&vs, 0.9, true);
        assert_eq!(ema.decay_at(0), 0.1);
        assert_eq!(ema.decay_at(100), 0.9);
        let _ = tch::no_grad(|| w.shallow_clone().fill_(3.0));
        ema.update(&vs); // d = 1/10: 0.1 * 1 + 0.9 * 3
        let _ = tch::no_grad(|| w.shallow_clone().fill_(5.0));
        ema.update(&vs); // d = 2/11
        let d1 = 2.0 / 11.0;
        let expected = d1 * (0.1 + 2.7) + (1.0 - d1) * 5.0;
        let got = ema.shadow[0].1.double_value(&[0]);
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        ema.swap(&vs);
        assert!((w.double_value(&[1]) - expected).abs() < 1e-6);
        ema.swap(&vs);
        assert_eq!(w.double_value(&[1]), 5.0);
        let saved: HashMap<String, Tensor> = ema.state().into_iter().collect();
        let mut other = Ema::new(&vs, 0.9, true);
        other.load_state(&saved).unwrap();
        assert_eq!(other.updates, 2);
        assert!(other.shadow[0].1.allclose(&ema.shadow[0].1, 0.0, 0.0, false));
    }

    #[test]
    fn no_warmup_uses_the_decay_from_the_start() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], tch::nn::Init::Const(0.0));
        let mut ema = Ema::new(&vs, 0.99, false);
        let _ = tch::no_grad(|| w.shallow_clone().fill_(1.0));
        ema.update(&vs);
        assert!((ema.shadow[0].1.double_value(&[0]) - 0.01).abs() < 1e-7);
    }
}
