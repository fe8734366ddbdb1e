//! `[optim]`: the update rule, its learning rate and weight decay.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimName {
    /// SGD with momentum (`nesterov` selects PyTorch's Nesterov form); coupled L2 weight decay.
    Sgd,
    /// Adam with coupled L2 weight decay, as `torch.optim.Adam`.
    Adam,
    /// Adam with decoupled weight decay, as `torch.optim.AdamW`.
    Adamw,
    /// Lion (Chen et al. 2023, timm's `Lion`): the sign of `beta1 * m + (1 - beta1) * g` as the
    /// step, `m` averaged with `beta2` (the paper's 0.99), decoupled weight decay; it wants a
    /// learning rate 3-10x below AdamW's.
    Lion,
    /// RMSprop in TensorFlow's form (timm's `RMSpropTF`, as EfficientNet and MobileNetV3 were
    /// trained): square average started at 1 and decayed by `alpha`, `eps` inside the square
    /// root, the learning rate inside the momentum buffer; coupled L2 weight decay.
    RmspropTf,
    /// LAMB (You et al. 2020, timm's `Lamb`): the bias-corrected Adam direction plus coupled
    /// weight decay, scaled per parameter by `||w|| / ||update||` where weight decay applies.
    /// timm's Lamb also divides the gradients by `max(1, global norm)`: here
    /// `train.clip_grad = 1.0` does that (within its 1e-6).
    Lamb,
    /// Muon (Jordan et al. 2024, `torch.optim.Muon`, the CIFAR-10 speedruns' optimizer) for the
    /// hidden weights (every parameter of 2 or more dimensions outside the stem and the
    /// classifier, a convolution's filters seen as a matrix of one row per output channel): the
    /// momentum buffer (`momentum`, `nesterov` as SGD's) orthogonalised by 5 Newton-Schulz steps
    /// with coefficients (3.4445, -4.7750, 2.0315), its learning rate scaled by
    /// `0.2 * sqrt(max(rows, cols))` (torch's `adjust_lr_fn = "match_rms_adamw"`) so that AdamW,
    /// which updates every other parameter, shares `lr` and the decoupled weight decay.
    Muon,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub name: OptimName,
    /// Peak learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Exclude 1-D parameters (biases, norm scales) from weight decay, as timm does.
    pub exclude_1d: bool,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `rmsprop_tf`: decay of the squared-gradient average (timm's `alpha`).
    pub alpha: f64,
    /// Layer-wise learning-rate decay (timm's `--layer-decay`, from BEiT): the learning rate of
    /// layer group i of n (stem 0, each residual block, head n - 1) is scaled by
    /// `layer_decay^(n - 1 - i)`; 1 = off.
    pub layer_decay: f64,
    /// `linear`: the peak LR is `lr * batch_size / 256` (Goyal et al. 2017's linear scaling rule).
    pub lr_scaling: LrScaling,
    /// The learning rate's factor for 1-D parameters (biases, batch-norm scales and shifts): the
    /// CIFAR-10 speedruns' wide batch-norm learning rates (airbench94 trains its norm biases at
    /// 64 times the rate of the rest); 1 = off.
    pub lr_1d_scale: f64,
    /// Lookahead (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back",
    /// Algorithm 1): every `lookahead_k` steps of the optimizer above, the slow weights phi
    /// (from the weights training starts with) move toward the fast ones theta,
    /// `phi += lookahead_alpha * (theta - phi)`, and training goes on from them (`theta = phi`);
    /// 0 = off.
    pub lookahead_k: u32,
    /// Lookahead's step size alpha toward the fast weights.
    pub lookahead_alpha: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScaling {
    None,
    Linear,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            name: OptimName::Sgd,
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-5,
            exclude_1d: true,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            alpha: 0.9,
            layer_decay: 1.0,
            lr_scaling: LrScaling::None,
            lr_1d_scale: 1.0,
            lookahead_k: 0,
            lookahead_alpha: 0.5,
        }
    }
}

impl OptimConfig {
    /// The `[optim]` section's ranges and rules; every error names its key.
    pub fn validate(&self) -> Result<()> {
        let o = self;
        check("optim.lr", o.lr, o.lr > 0.0 && o.lr.is_finite(), "a finite number > 0")?;
        check(
            "optim.momentum",
            o.momentum,
            (0.0..1.0).contains(&o.momentum),
            "in [0, 1)",
        )?;
        if o.name == OptimName::Sgd && o.nesterov && o.momentum == 0.0 {
            return Err(Error::recipe(
                "optim.nesterov",
                "Nesterov momentum requires optim.momentum > 0",
            ));
        }
        check("optim.weight_decay", o.weight_decay, o.weight_decay >= 0.0, ">= 0")?;
        check("optim.beta1", o.beta1, (0.0..1.0).contains(&o.beta1), "in [0, 1)")?;
        check("optim.beta2", o.beta2, (0.0..1.0).contains(&o.beta2), "in [0, 1)")?;
        check("optim.eps", o.eps, o.eps > 0.0, "> 0")?;
        check("optim.alpha", o.alpha, (0.0..1.0).contains(&o.alpha), "in [0, 1)")?;
        check(
            "optim.layer_decay",
            o.layer_decay,
            o.layer_decay > 0.0 && o.layer_decay <= 1.0,
            "in (0, 1] (1 = off)",
        )?;
        check(
            "optim.lr_1d_scale",
            o.lr_1d_scale,
            o.lr_1d_scale > 0.0 && o.lr_1d_scale <= 1e4,
            "in (0, 10000] (1 = off)",
        )?;
        check(
            "optim.lookahead_k",
            f64::from(o.lookahead_k),
            o.lookahead_k <= 1_000_000,
            "0 (off) to 1000000 steps",
        )?;
        check(
            "optim.lookahead_alpha",
            o.lookahead_alpha,
            o.lookahead_alpha > 0.0 && o.lookahead_alpha <= 1.0,
            "in (0, 1]",
        )?;
        Ok(())
    }
}
