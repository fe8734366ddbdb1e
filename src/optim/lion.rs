//! timm's `Lion`: `p *= 1 - lr * wd`, `p -= lr * sign(b1 * m + (1 - b1) * g)`, then
//! `m = b2 * m + (1 - b2) * g`.
use super::UpdateRule;
use tch::Tensor;

pub struct Lion {
    pub beta1: f64,
    pub beta2: f64,
}

impl UpdateRule for Lion {
    fn state_buffers(&self) -> usize {
        1
    }

    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, _t: i32) {
        if wd != 0.0 {
            let _ = p.g_mul_scalar_(1.0 - lr * wd);
        }
        let m = &mut state[0];
        let direction = (&*m * self.beta1 + grad * (1.0 - self.beta1)).sign();
        let _ = p.g_sub_(&(direction * lr));
        let _ = m.g_mul_scalar_(self.beta2);
        let _ = m.g_add_(&(grad * (1.0 - self.beta2)));
    }
}
