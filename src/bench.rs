//! Throughput benchmarks, each measured the way its reference script in `bench/` measures
//! PyTorch or torchvision.
//!
//! Training steps, as `bench/train_step.py`:
//! a plain ResNet (no SE, ReLU everywhere) on a fixed random batch, SGD with Nesterov momentum
//! 0.9, weight decay 5e-5, cross-entropy with label smoothing 0.1; `warmup` untimed steps, then
//! `steps` timed ones; optionally channels-last and under autocast, as the script's
//! `--channels-last` and `--amp`.
use crate::data::{Images, Pixels};
use crate::error::Result;
use crate::loader;
use crate::loss;
use crate::optim::Optimizer;
use crate::recipe::{
    Activation, Arch, AugPolicy, AugmentConfig, DatasetKind, Decode, Interpolation, ModelConfig, OptimConfig,
};
use crate::runtime::amp::autocast;
use std::path::Path;
use std::time::Instant;
use tch::nn::ModuleT;
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
    pub channels_last: bool,
    /// Autocast type, None for float32.
    pub amp: Option<Kind>,
}

/// The network bench/train_step.py builds: a ResNet without SE, ReLU everywhere; a MobileNetV3
/// or EfficientNet-B0 as torchvision and timm build it, without dropout.
fn bench_model(arch: Arch) -> ModelConfig {
    if arch.is_resnet() {
        ModelConfig {
            arch,
            se: false,
            activation: Activation::Relu,
            downscale_activation: Activation::Relu,
            ..ModelConfig::default()
        }
    } else {
        ModelConfig {
            arch,
            activation: Activation::Native,
            downscale_activation: Activation::Native,
            dropout: Some(0.0),
            ..ModelConfig::default()
        }
    }
}

/// Returns training images per second over the timed steps.
pub fn train_images_per_sec(b: &TrainBench) -> f64 {
    tch::manual_seed(0);
    let (vs, net) = crate::model::build(&bench_model(b.arch), b.image[0], b.classes, b.device, b.channels_last);
    let mut opt = Optimizer::new(
        Optimizer::trainable(&vs),
        &OptimConfig {
            exclude_1d: false,
            ..OptimConfig::default()
        },
    );
    let x = Tensor::randn([b.batch, b.image[0], b.image[1], b.image[2]], (Kind::Float, b.device));
    let x = crate::model::in_memory_order(x, b.channels_last);
    let y = Tensor::randint(b.classes, [b.batch], (Kind::Int64, b.device));
    let mut step = || {
        let loss = autocast(b.amp, b.device, || {
            loss::cross_entropy(&net.forward_t(&x, true), &y, 0.1)
        });
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
/// warm-up epoch.
pub fn augment_images_per_sec(n: usize, threads: usize) -> f64 {
    let mut rng = crate::rng::Rng::keyed(0, 0, 0);
    let images = Images {
        pixels: Pixels::Decoded((0..n * 32 * 32 * 3).map(|_| rng.below(256) as u8).collect()),
        labels: vec![0; n],
        height: 32,
        width: 32,
        channels: 3,
        names: Vec::new(),
    };
    let augment = AugmentConfig {
        pad: 4,
        hflip: true,
        policy: AugPolicy::AutoaugmentCifar10,
        ..AugmentConfig::default()
    };
    loader_images_per_sec(&images, augment, 128, threads).expect("decoded images")
}

/// The ImageNet train transform of `bench/augment_imagenet.py` on the image files of the folder
/// dataset `dir`: JPEG/PNG decode, random-resized crop to 224 (bilinear), horizontal flip,
/// AutoAugment ImageNet, normalise to a float batch of 64; images per second as above.
pub fn augment_folder_images_per_sec(dir: &Path, threads: usize) -> Result<f64> {
    let d = crate::data::folder::load(dir, Some(224), Decode::PerBatch, Interpolation::Bilinear)?;
    let augment = AugmentConfig {
        random_resized_crop: true,
        hflip: true,
        policy: AugPolicy::AutoaugmentImagenet,
        ..AugmentConfig::default()
    };
    loader_images_per_sec(&d.train, augment, 64, threads)
}

/// The format's name, the images of the data set at `path` (format `dataset`) and the seconds
/// it takes to read them as a run reads them at its start: the listing, then every image of both
/// splits decoded to pixels on this thread (`data.decode = "at_load"`).
pub fn read_seconds(dataset: DatasetKind, path: &Path) -> Result<(String, usize, f64)> {
    let cfg = crate::recipe::DataConfig {
        dataset,
        path: Some(path.to_path_buf()),
        ..Default::default()
    };
    let start = Instant::now();
    let d = crate::data::load(&cfg, Interpolation::Bilinear)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((d.format, d.train.len() + d.test.map_or(0, |t| t.len()), seconds))
}

/// Images per second of the training loader (`make_batch`, as training runs it) over one epoch
/// after a warm-up epoch, on a pool of `threads` threads, with the allocator settings training
/// uses (`runtime::configure_cpu`). libtorch runs single-threaded, as torch in the reference scripts.
fn loader_images_per_sec(images: &Images, augment: AugmentConfig, batch_size: usize, threads: usize) -> Result<f64> {
    crate::runtime::configure_cpu(threads);
    tch::set_num_threads(1);
    let norm = loader::Normalizer::new(&[0.49, 0.48, 0.45], &[0.25, 0.24, 0.26], images.channels);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let epoch = |epoch: u64| -> Result<usize> {
        let o = loader::TrainOrder {
            seed: 0,
            epoch,
            batch_size,
            accumulate: 1,
            augment: augment.clone(),
            classes: 10,
            label_smoothing: 0.0,
        };
        pool.install(|| {
            let mut seen = 0;
            for (b, idx) in o.batches(images.len()).iter().enumerate() {
                let batch = loader::make_batch(images, idx, &norm, loader::Mode::Train(&o, b))?;
                seen += std::hint::black_box(batch.images(Device::Cpu)).size()[0] as usize;
            }
            Ok(seen)
        })
    };
    epoch(0)?;
    let start = Instant::now();
    let seen = epoch(1)?;
    Ok(seen as f64 / start.elapsed().as_secs_f64())
}

/// Training images per second of `recipe`'s model on this machine with `threads` CPU threads
/// (a few steps on random data of its data set's shape), for the checklist's time estimate; None
/// for an external trainer or data that cannot be read.
pub fn recipe_images_per_sec(recipe: &crate::recipe::Recipe, threads: usize) -> Option<f64> {
    if recipe.external.is_some() {
        return None;
    }
    let d = crate::data::load(&recipe.data, recipe.augment.interpolation).ok()?;
    crate::runtime::configure_cpu(threads);
    let t = &d.train;
    let device = crate::runtime::resolve_device(recipe.train.device).ok()?;
    let b = TrainBench {
        arch: recipe.model.arch,
        batch: recipe.train.batch_size as i64,
        image: [t.channels as i64, t.height as i64, t.width as i64],
        classes: d.classes.len() as i64,
        steps: 5,
        warmup: 2,
        device,
        channels_last: recipe.train.channels_last,
        amp: crate::runtime::amp::resolve(recipe.train.amp, device),
    };
    Some(train_images_per_sec(&b))
}
