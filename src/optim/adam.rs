//! Adam (`torch.optim.Adam`): `m = b1*m + (1-b1)*g`, `v = b2*v + (1-b2)*g^2`,
//! `p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`, with coupled decay `g += wd*p`.
//! AdamW (`torch.optim.AdamW`, `decoupled`): `p *= 1 - lr*wd` first, then the step without decay.
use super::UpdateRule;
use tch::Tensor;

pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub decoupled: bool,
}

impl UpdateRule for Adam {
    fn state_buffers(&self) -> usize {
        2
    }

    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, t: i32) {
        let coupled = if self.decoupled {
            if wd != 0.0 {
                let _ = p.g_mul_scalar_(1.0 - lr * wd);
            }
            0.0
        } else {
            wd
        };
        let g = if coupled != 0.0 {
            grad + &*p * coupled
        } else {
            grad.shallow_clone()
        };
        let (b1, b2) = (self.beta1, self.beta2);
        let _ = state[0].g_mul_scalar_(b1);
        let _ = state[0].g_add_(&(&g * (1.0 - b1)));
        let _ = state[1].g_mul_scalar_(b2);
        let _ = state[1].g_add_(&(&g * &g * (1.0 - b2)));
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        let denom = state[1].sqrt() / bc2.sqrt() + self.eps;
        let _ = p.g_sub_(&(&state[0] / denom * (lr / bc1)));
    }
}
