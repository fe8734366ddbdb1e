//! Gradient clipping helpers: timm's adaptive gradient clipping (AGC, Brock et al. 2021).
use tch::Tensor;

/// timm's `unitwise_norm`: the L2 norm of a vector or scalar as a whole, else of each output
/// unit (dimension 0), kept broadcastable.
fn unitwise_norm(x: &Tensor) -> Tensor {
    if x.dim() <= 1 {
        x.norm()
    } else {
        let dims: Vec<i64> = (1..x.dim() as i64).collect();
        x.norm_scalaropt_dim(2, dims.as_slice(), true)
    }
}

/// timm's `adaptive_clip_grad` for one parameter `p` and its gradient `g` (eps 1e-3).
pub fn adaptive_clip(p: &Tensor, g: &mut Tensor, factor: f64) {
    let max_norm = unitwise_norm(p).clamp_min(1e-3) * factor;
    let grad_norm = unitwise_norm(g);
    let clipped = &*g * (&max_norm / grad_norm.clamp_min(1e-6));
    let kept = g.where_self(&grad_norm.lt_tensor(&max_norm), &clipped);
    g.copy_(&kept);
}
