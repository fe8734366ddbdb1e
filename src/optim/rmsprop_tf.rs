//! timm's `RMSpropTF` (not centered, `lr_in_momentum`): `g += wd * p`,
//! `s += (1 - alpha) * (g^2 - s)`, then with momentum `b = momentum * b + lr * g / sqrt(s + eps)`
//! and `p -= b`, else `p -= lr * g / sqrt(s + eps)`. `s` starts at 1, as TensorFlow's does.
use super::UpdateRule;
use tch::Tensor;

pub struct RmspropTf {
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
}

impl UpdateRule for RmspropTf {
    fn state_buffers(&self) -> usize {
        2
    }

    fn initial_state(&self, k: usize) -> f64 {
        // TensorFlow starts the squared-gradient average at 1, not 0.
        if k == 0 { 1.0 } else { 0.0 }
    }

    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, _t: i32) {
        let g = if wd != 0.0 {
            grad + &*p * wd
        } else {
            grad.shallow_clone()
        };
        let (square, buf) = state.split_at_mut(1);
        let square = &mut square[0];
        let _ = square.g_add_(&((g.square() - &*square) * (1.0 - self.alpha)));
        let step = g / (&*square + self.eps).sqrt() * lr;
        if self.momentum > 0.0 {
            let buf = &mut buf[0];
            let _ = buf.g_mul_scalar_(self.momentum);
            let _ = buf.g_add_(&step);
            let _ = p.g_sub_(buf);
        } else {
            let _ = p.g_sub_(&step);
        }
    }
}
