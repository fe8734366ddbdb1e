//! Muon (Keller Jordan et al. 2024; `torch.optim.Muon`, PyTorch 2.9+) for one hidden weight,
//! seen as a matrix `G` of one row per output (a convolution's filters flattened, as the
//! CIFAR-10 speedruns do):
//!
//! - `buf = momentum * buf + (1 - momentum) * g` (torch's `buf.lerp_(grad, 1 - momentum)`);
//! - the update `u = g + momentum * (buf - g)` with Nesterov, else `buf`;
//! - `O = NS(u)`: `X = u / max(||u||_F, eps)` (transposed when it has more rows than columns),
//!   then 5 times `A = X X^T`, `X = a X + (b A + c A A) X` with (a, b, c) = (3.4445, -4.7750,
//!   2.0315), a quintic pushing every singular value towards 1;
//! - `p *= 1 - lr * wd` (decoupled), `p -= lr * 0.2 * sqrt(max(rows, cols)) * O` (torch's
//!   `adjust_lr_fn = "match_rms_adamw"`: the update's RMS matches AdamW's, so the two share `lr`).
//!
//! torch runs the iteration in bfloat16; here it runs in the parameter's dtype.
use super::UpdateRule;
use tch::Tensor;

/// The Newton-Schulz coefficients (a, b, c) of Jordan's Muon and `torch.optim.Muon`.
pub const NS_COEFFICIENTS: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);
/// Newton-Schulz steps per update.
pub const NS_STEPS: usize = 5;
/// The floor of the Frobenius norm that scales the update (torch's `eps`).
pub const NS_EPS: f64 = 1e-7;

pub struct Muon {
    pub momentum: f64,
    pub nesterov: bool,
}

/// The approximate orthogonalisation of the matrix `g` by [`NS_STEPS`] Newton-Schulz steps
/// (torch's `_zeropower_via_newtonschulz`, in `g`'s dtype).
pub fn newton_schulz(g: &Tensor) -> Tensor {
    let (a, b, c) = NS_COEFFICIENTS;
    let tall = g.size()[0] > g.size()[1];
    let mut x = if tall { g.tr() } else { g.shallow_clone() };
    x = &x / x.norm().clamp_min(NS_EPS);
    for _ in 0..NS_STEPS {
        let gram = x.matmul(&x.tr());
        let poly = &gram * b + gram.matmul(&gram) * c;
        x = &x * a + poly.matmul(&x);
    }
    if tall { x.tr() } else { x }
}

impl UpdateRule for Muon {
    fn state_buffers(&self) -> usize {
        1
    }

    fn per_parameter(&self) -> bool {
        true
    }

    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, _t: i32) {
        let buf = &mut state[0];
        let _ = buf.g_mul_scalar_(self.momentum);
        let _ = buf.g_add_(&(grad * (1.0 - self.momentum)));
        let u = if self.nesterov {
            grad + (&*buf - grad) * self.momentum
        } else {
            buf.shallow_clone()
        };
        let rows = u.size()[0];
        let matrix = u.reshape([rows, -1]);
        let cols = matrix.size()[1];
        let o = newton_schulz(&matrix).reshape(p.size());
        if wd != 0.0 {
            let _ = p.g_mul_scalar_(1.0 - lr * wd);
        }
        let scale = 0.2 * (rows.max(cols) as f64).sqrt();
        let _ = p.g_sub_(&(o * (lr * scale)));
    }
}
