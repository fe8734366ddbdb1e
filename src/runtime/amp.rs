//! Mixed precision (`train.amp`): PyTorch's autocast around the forward pass and, for float16,
//! dynamic loss scaling as `torch.amp.GradScaler`.
//!
//! Autocast comes from libtorch itself (csrc/autocast.cpp, because tch binds only CUDA float16),
//! so the ops that run in low precision and those kept in float32 (softmax, losses, norms'
//! statistics) are exactly PyTorch's lists.
use crate::recipe::Amp;
use tch::{Device, Kind, Tensor};

unsafe extern "C" {
    fn dm_autocast_enter(cuda: i32, half: i32) -> i32;
    fn dm_autocast_exit(cuda: i32) -> i32;
}

/// The low-precision type of `amp` on `device`, or None for float32 throughout.
pub fn resolve(amp: Amp, device: Device) -> Option<Kind> {
    match amp {
        Amp::Off => None,
        Amp::Auto => device.is_cuda().then_some(Kind::BFloat16),
        Amp::Bf16 => Some(Kind::BFloat16),
        Amp::Fp16 => Some(Kind::Half),
    }
}

/// Autocast enabled on one device while it lives (`with torch.autocast(device, dtype)`).
struct Guard {
    cuda: i32,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: plain calls into libtorch's thread-local autocast state.
        let rc = unsafe { dm_autocast_exit(self.cuda) };
        debug_assert_eq!(rc, 0, "autocast exit failed");
    }
}

/// Runs `f` under autocast to `kind` on `device` (no autocast when `kind` is None).
pub fn autocast<T>(kind: Option<Kind>, device: Device, f: impl FnOnce() -> T) -> T {
    let Some(kind) = kind else {
        return f();
    };
    let cuda = i32::from(device.is_cuda());
    // SAFETY: as in Guard::drop.
    let rc = unsafe { dm_autocast_enter(cuda, i32::from(kind == Kind::Half)) };
    assert_eq!(rc, 0, "libtorch refused autocast to {kind:?} on {device:?}");
    let _guard = Guard { cuda };
    f()
}

/// Dynamic loss scaling with `torch.amp.GradScaler`'s defaults: the loss is multiplied by
/// `scale` before backward; before the optimizer step the gradients are divided by it and
/// checked: any inf/NaN skips the step and halves the scale, and 2000 finite steps in a row
/// double it.
#[derive(Clone, Debug, PartialEq)]
pub struct GradScaler {
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub growth_tracker: i64,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler {
            scale: 65536.0,
            growth_tracker: 0,
        }
    }
}

impl GradScaler {
    const GROWTH_FACTOR: f64 = 2.0;
    const BACKOFF_FACTOR: f64 = 0.5;
    const GROWTH_INTERVAL: i64 = 2000;

    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides the gradients by the scale in place; true when all of them are finite. The
    /// non-finite counts of all buffers are summed on the device and read back once.
    pub fn unscale(&self, grads: &[Tensor]) -> bool {
        let inv = 1.0 / self.scale;
        tch::no_grad(|| {
            let non_finite: Vec<Tensor> = grads
                .iter()
                .map(|g| {
                    let _ = g.shallow_clone().g_mul_scalar_(inv);
                    g.isfinite().logical_not().sum(Kind::Int64)
                })
                .collect();
            non_finite.is_empty() || Tensor::stack(&non_finite, 0).sum(Kind::Int64).int64_value(&[]) == 0
        })
    }

    /// The scale after a step whose gradients were (not) all finite.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.growth_tracker += 1;
            if self.growth_tracker == Self::GROWTH_INTERVAL {
                self.scale *= Self::GROWTH_FACTOR;
                self.growth_tracker = 0;
            }
        } else {
            self.scale *= Self::BACKOFF_FACTOR;
            self.growth_tracker = 0;
        }
    }

    /// Named tensors for checkpoints: `amp.scale` and `amp.growth_tracker`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("amp.scale".into(), Tensor::from(self.scale)),
            ("amp.growth_tracker".into(), Tensor::from(self.growth_tracker)),
        ]
    }

    /// Restores [`GradScaler::state`]; a checkpoint without it (written without fp16) starts
    /// from the defaults.
    pub fn load_state(saved: &std::collections::HashMap<String, Tensor>) -> GradScaler {
        match (saved.get("amp.scale"), saved.get("amp.growth_tracker")) {
            (Some(s), Some(t)) => GradScaler {
                scale: s.double_value(&[]),
                growth_tracker: t.int64_value(&[]),
            },
            _ => GradScaler::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocast_runs_convolutions_in_the_chosen_type_and_the_loss_in_float32() {
        let x = Tensor::randn([2, 3, 5, 5], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu));
        let conv = || x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        for kind in [Kind::BFloat16, Kind::Half] {
            let labels = Tensor::from_slice(&[1i64, 3]);
            let (y, loss) = autocast(Some(kind), Device::Cpu, || {
                let y = conv();
                let loss = crate::loss::cross_entropy(&y.flatten(1, -1), &labels, 0.1);
                (y, loss)
            });
            assert_eq!(y.kind(), kind);
            assert_eq!(loss.kind(), Kind::Float, "cross-entropy is on autocast's float32 list");
            let exact = conv();
            let err = (y.to_kind(Kind::Float) - &exact).abs().max().double_value(&[]);
            assert!(err > 0.0 && err < 0.1, "{kind:?}: {err}");
        }
        assert_eq!(conv().kind(), Kind::Float, "autocast is off again afterwards");
        assert_eq!(resolve(Amp::Auto, Device::Cpu), None);
        assert_eq!(resolve(Amp::Auto, Device::Cuda(0)), Some(Kind::BFloat16));
    }

    #[test]
    fn grad_scaler_follows_torch_amp_grad_scaler() {
        let mut s = GradScaler::default();
        let g = Tensor::from_slice(&[65536.0f32, -131072.0]);
        assert!(s.unscale(std::slice::from_ref(&g)));
        assert_eq!(Vec::<f32>::try_from(&g).unwrap(), vec![1.0, -2.0]);
        let inf = Tensor::from_slice(&[1.0f32, f32::INFINITY]);
        assert!(!s.unscale(&[inf]));
        s.update(false);
        assert_eq!((s.scale, s.growth_tracker), (32768.0, 0));
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!((s.scale, s.growth_tracker), (32768.0, 1999));
        s.update(true);
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 0));
        s.update(true);
        let saved = s.state().into_iter().collect();
        assert_eq!(GradScaler::load_state(&saved), s);
        assert_eq!(GradScaler::load_state(&Default::default()), GradScaler::default());
    }
}
