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

/// The CIFAR train transform of `bench/augment_cifar.py` (pad 4 + random crop 32, horizontal
/// flip, AutoAugment CIFAR10, normalise to a float batch of 128) on `n` random 32x32 RGB
/// images, on a pool of `threads` threads; returns images per second over one epoch after a
/// warm-up epoch. libtorch runs single-threaded, as torch in the reference script.
pub fn augment_images_per_sec(n: usize, threads: usize) -> f64 {
    tch::set_num_threads(1);
    use crate::data::{Images, Pixels, loader};
    use crate::recipe::{AugPolicy, AugmentConfig};
    let mut rng = crate::rng::Rng::keyed(0, 0, 0);
    let images = Images {
        pixels: Pixels::Decoded((0..n * 32 * 32 * 3).map(|_| rng.below(256) as u8).collect()),
        labels: vec![0; n],
        height: 32,
        width: 32,
        channels: 3,
    };
    let norm = loader::Normalizer::new(&[0.49, 0.48, 0.45], &[0.25, 0.24, 0.26], 3);
    let augment = AugmentConfig {
        pad: 4,
        hflip: true,
        policy: AugPolicy::AutoaugmentCifar10,
        ..AugmentConfig::default()
    };
    let order = |epoch| loader::TrainOrder {
        seed: 0,
        epoch,
        batch_size: 128,
        accumulate: 1,
        augment: augment.clone(),
        classes: 10,
        label_smoothing: 0.0,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let epoch = |e: u64| {
        let o = order(e);
        pool.install(|| {
            for (b, idx) in o.batches(n).iter().enumerate() {
                let batch =
                    loader::make_batch(&images, idx, &norm, loader::Mode::Train(&o, b)).expect("decoded images");
                let _ = std::hint::black_box(batch.images(Device::Cpu));
            }
        })
    };
    epoch(0);
    let start = Instant::now();
    epoch(1);
    (n / 128 * 128) as f64 / start.elapsed().as_secs_f64()
}
