//! timm's `Lamb`, for one whole parameter (its norms are per parameter): `m`, `v` as Adam,
//! `u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)`, with weight decay `u += wd * p` and
//! `u *= ||p|| / ||u||` (1 when either norm is 0), then `p -= lr * u`.
use super::UpdateRule;
use tch::Tensor;

pub struct Lamb {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl UpdateRule for Lamb {
    fn state_buffers(&self) -> usize {
        2
    }

    fn per_parameter(&self) -> bool {
        true
    }

    fn update(&self, p: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64, wd: f64, t: i32) {
        let (b1, b2) = (self.beta1, self.beta2);
        let (m, v) = state.split_at_mut(1);
        let (m, v) = (&mut m[0], &mut v[0]);
        let _ = m.g_mul_scalar_(b1);
        let _ = m.g_add_(&(grad * (1.0 - b1)));
        let _ = v.g_mul_scalar_(b2);
        let _ = v.g_add_(&(grad * grad * (1.0 - b2)));
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let mut update = (&*m / bc1) / (v.sqrt() / bc2.sqrt() + self.eps);
        if wd != 0.0 {
            update += &*p * wd;
            let (w_norm, u_norm) = (p.norm(), update.norm());
            let ratio = (&w_norm / &u_norm)
                .where_self(&u_norm.gt(0.0), &u_norm.ones_like())
                .where_self(&w_norm.gt(0.0), &w_norm.ones_like());
            update *= ratio;
        }
        let _ = p.g_sub_(&(update * lr));
    }
}
