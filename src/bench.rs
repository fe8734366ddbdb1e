//! Training-step throughput, measured the same way as `bench/train_step.py` measures PyTorch:
//! a plain ResNet (no SE, ReLU everywhere) on a fixed random batch, SGD with Nesterov momentum
//! 0.9, weight decay 5e-5, cross-entropy with label smoothing 0.1; `warmup` untimed steps, then
//! `steps` timed ones.
use crate::loss;
use crate::model::Net;
use crate::optim::Optimizer;
use crate::recipe::{Activation, Arch, ModelConfig, OptimConfig};
use std::time::Instant;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug)]
pub struct TrainBench {
    pub arch: Arch,
    pub batch: i64,
    /// Channels, height, width.
    pub image: [i64; 3],
    pub classes: i64,
    pub steps: usize,
    pub warmup: usize,
    pub device: Device,
}

/// Returns training images per second over the timed steps.
pub fn train_images_per_sec(b: &TrainBench) -> f64 {
    tch::manual_seed(0);
    let vs = VarStore::new(b.device);
    let cfg = ModelConfig {
        arch: b.arch,
        se: false,
        activation: Activation::Relu,
        downscale_activation: Activation::Relu,
        ..ModelConfig::default()
    };
    let net = Net::new(&vs.root(), &cfg, b.image[0], b.classes);
    let mut opt = Optimizer::new(
        Optimizer::trainable(&vs),
        &OptimConfig {
            exclude_1d: false,
            ..OptimConfig::default()
        },
    );
    let x = Tensor::randn([b.batch, b.image[0], b.image[1], b.image[2]], (Kind::Float, b.device));
    let y = Tensor::randint(b.classes, [b.batch], (Kind::Int64, b.device));
    let mut step = || {
        let loss = loss::cross_entropy(&net.forward_t(&x, true), &y, 0.1);
        opt.zero_grad();
        loss.backward();
        opt.step(0.1, 5e-5);
        loss.double_value(&[])
    };
    for _ in 0..b.warmup {
        step();
    }
    let start = Instant::now();
    for _ in 0..b.steps {
        step();
    }
    (b.steps as i64 * b.batch) as f64 / start.elapsed().as_secs_f64()
}
