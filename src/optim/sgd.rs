//! SGD (`torch.optim.SGD`, dampening 0): `g += wd*p` (coupled L2 decay), `v = mu*v + g`,
//! `p -= lr*v`; Nesterov: `p -= lr*(g + mu*v)`.
use super::UpdateRule;
use tch::Tensor;

pub struct Sgd {
    pub momentum: f64,
    pub nesterov: bool,
}

impl UpdateRule for Sgd {
    fn state_buffers(&self) -> usize {
        1
    }

    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, _t: i32) {
        let g = if wd != 0.0 {
            grad + &*p * wd
        } else {
            grad.shallow_clone()
        };
        let d = if self.momentum != 0.0 {
            let buf = &mut state[0];
            let _ = buf.g_mul_scalar_(self.momentum);
            let _ = buf.g_add_(&g);
            if self.nesterov {
                g + &*buf * self.momentum
            } else {
                buf.shallow_clone()
            }
        } else {
            g
        };
        let _ = p.g_sub_(&(d * lr));
    }
}
