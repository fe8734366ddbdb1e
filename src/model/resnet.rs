//! The ResNet family (He et al. 2016): CIFAR-style ResNet-20/32/56 for small images and
//! torchvision's ResNet-18/34/50, with the article's architecture tricks as options.
//!
//! Parameter names and shapes follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`,
//! `layer2.0.downsample.0`, `fc`, ...), so its state dicts map one to one; SE layers add
//! `layerX.Y.se.fc1/fc2` as timm names them, ResNet-D and BlurPool follow timm's `resnet*d` and
//! `resnetblur*`.
use super::layers::{
    Act, ConvBn, Head, HeadSpec, SE_TIMM_RESNET, SqueezeExcite, batch_norm, blur_pool, conv, drop_path, make_divisible,
};
use crate::recipe::{Arch, ModelConfig};
use tch::Tensor;
use tch::nn;

/// A projection shortcut: a 1x1 convolution and batch norm, after a 2x2 average pooling of
/// stride 2 in ResNet-D (`ceil_mode`, padding not counted, as timm's).
#[derive(Debug)]
struct Shortcut {
    avg_pool: bool,
    unit: ConvBn,
}

impl Shortcut {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if self.avg_pool {
            let pooled = xs.avg_pool2d([2, 2], [2, 2], [0, 0], true, false, None::<i64>);
            self.unit.forward_t(&pooled, train)
        } else {
            self.unit.forward_t(xs, train)
        }
    }
}

/// A residual block: basic (two 3x3 convs) or bottleneck (1x1, 3x3, 1x1 x4), with optional SE
/// before the residual addition and a projection shortcut when the shape changes.
#[derive(Debug)]
struct Block {
    branch: Vec<ConvBn>,
    se: Option<SqueezeExcite>,
    downsample: Option<Shortcut>,
    act: Act,
    /// Stochastic-depth drop probability of the residual branch.
    drop_prob: f64,
    /// With `model.blur_pool`, the index of the inner unit (run at stride 1) whose activation
    /// is followed by the stride-2 blur.
    blur_after: Option<usize>,
}

impl Block {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (last, inner) = self.branch.split_last().expect("a block has convolutions");
        let mut h = xs.shallow_clone();
        for (i, unit) in inner.iter().enumerate() {
            h = self.act.apply(&unit.forward_t(&h, train));
            if self.blur_after == Some(i) {
                h = blur_pool(&h);
            }
        }
        h = last.forward_t(&h, train);
        if let Some(se) = &self.se {
            h = se.forward(&h);
        }
        if train {
            h = drop_path(&h, self.drop_prob);
        }
        let shortcut = match &self.downsample {
            Some(d) => d.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        self.act.apply(&(h + shortcut))
    }
}

/// Block layout of one architecture.
struct Layout {
    /// Blocks per stage.
    depths: &'static [usize],
    /// Output channels of the first stage before the width multiplier; doubles per stage.
    base: i64,
    bottleneck: bool,
    /// torchvision's 7x7 stride-2 stem with max pooling (else a 3x3 stride-1 stem).
    imagenet_stem: bool,
}

fn layout(arch: Arch) -> Layout {
    let cifar = |n| Layout {
        depths: n,
        base: 16,
        bottleneck: false,
        imagenet_stem: false,
    };
    let imagenet = |n, bottleneck| Layout {
        depths: n,
        base: 64,
        bottleneck,
        imagenet_stem: true,
    };
    match arch {
        Arch::Resnet20 => cifar(&[3, 3, 3]),
        Arch::Resnet32 => cifar(&[5, 5, 5]),
        Arch::Resnet56 => cifar(&[9, 9, 9]),
        Arch::Resnet18 => imagenet(&[2, 2, 2, 2], false),
        Arch::Resnet34 => imagenet(&[3, 4, 6, 3], false),
        Arch::Resnet50 => imagenet(&[3, 4, 6, 3], true),
        other => panic!("{other:?} is not a ResNet"),
    }
}

/// A ResNet.
#[derive(Debug)]
pub struct ResNet {
    /// The stem's convolutions, each followed by `stem_act`: `conv1`/`bn1`, or ResNet-D's deep
    /// stem `conv1.0`/`conv1.1`, `conv1.3`/`conv1.4`, `conv1.6`/`bn1` (timm's names).
    stem: Vec<ConvBn>,
    stem_act: Act,
    max_pool: bool,
    /// The stem's max pooling at stride 1, then a blur pool (`model.blur_pool`).
    blur_stem: bool,
    blocks: Vec<Block>,
    /// After the last block of this index, the auxiliary classifier's input.
    aux_after: Option<usize>,
    head: Head,
}

impl ResNet {
    /// Builds the network under `p` for images with `in_channels` channels and `classes` outputs.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, in_channels: i64, classes: i64) -> ResNet {
        let lay = layout(cfg.arch);
        let width = |c: i64| ((c as f64 * cfg.width).round() as i64).max(1);
        let act = Act::resolve(cfg.activation, cfg.leaky_slope, Act::Relu);
        let down_act = Act::resolve(cfg.downscale_activation, cfg.leaky_slope, Act::Relu);
        let stem_c = width(lay.base);
        let stem = if lay.imagenet_stem && cfg.resnet_d {
            let (c1, s) = (width(lay.base / 2), p / "conv1");
            let unit = |i: usize, ci: i64, co: i64, stride: i64| ConvBn {
                conv: conv(&s / i.to_string(), ci, co, 3, stride),
                bn: norm(&s / (i + 1).to_string(), co, 1.0, cfg),
            };
            vec![
                unit(0, in_channels, c1, 2),
                unit(3, c1, c1, 1),
                ConvBn {
                    conv: conv(&s / "6", c1, stem_c, 3, 1),
                    bn: norm(p / "bn1", stem_c, 1.0, cfg),
                },
            ]
        } else {
            let (k, s) = if lay.imagenet_stem { (7, 2) } else { (3, 1) };
            vec![ConvBn {
                conv: conv(p / "conv1", in_channels, stem_c, k, s),
                bn: norm(p / "bn1", stem_c, 1.0, cfg),
            }]
        };
        let expansion = if lay.bottleneck { 4 } else { 1 };
        let total: usize = lay.depths.iter().sum();
        let mut c_in = stem_c;
        let mut blocks = Vec::new();
        let mut aux = None;
        for (stage, &n) in lay.depths.iter().enumerate() {
            let planes = width(lay.base << stage);
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let bp = p / format!("layer{}", stage + 1) / i.to_string();
                let block_act = if stride == 2 { down_act } else { act };
                let mut b = block(&bp, cfg, c_in, planes, expansion, stride, block_act);
                b.drop_prob = cfg.drop_path_rate * blocks.len() as f64 / (total - 1).max(1) as f64;
                blocks.push(b);
                c_in = planes * expansion;
            }
            if cfg.aux_stage == Some(stage + 1) {
                aux = Some((blocks.len() - 1, c_in));
            }
        }
        let head = HeadSpec {
            pool: cfg.pool,
            hidden: None,
            dropout: cfg.dropout(),
            fc: "fc",
            aux_channels: aux.map(|(_, c)| c),
            linear_init: None,
        };
        ResNet {
            stem,
            stem_act: down_act,
            max_pool: lay.imagenet_stem,
            blur_stem: cfg.blur_pool,
            blocks,
            aux_after: aux.map(|(i, _)| i),
            head: Head::new(p, c_in, classes, head),
        }
    }

    /// Logits, and in training the auxiliary head's logits when the model has one.
    pub fn forward_with_aux(&self, xs: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let mut h = xs.shallow_clone();
        for unit in &self.stem {
            h = self.stem_act.apply(&unit.forward_t(&h, train));
        }
        if self.max_pool && self.blur_stem {
            h = blur_pool(&h.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false));
        } else if self.max_pool {
            h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        let mut aux_logits = None;
        for (i, b) in self.blocks.iter().enumerate() {
            h = b.forward_t(&h, train);
            if train && self.aux_after == Some(i) {
                aux_logits = self.head.aux(&h);
            }
        }
        (self.head.forward_t(&h, train), aux_logits)
    }
}

/// A ResNet's batch norm: PyTorch's epsilon, the recipe's momentum.
fn norm(p: nn::Path, c: i64, gamma: f64, cfg: &ModelConfig) -> nn::BatchNorm {
    batch_norm(p, c, gamma, 1e-5, cfg.bn_momentum())
}

fn block(p: &nn::Path, cfg: &ModelConfig, c_in: i64, planes: i64, expansion: i64, stride: i64, act: Act) -> Block {
    let c_out = planes * expansion;
    let unit = |i: usize, ci: i64, co: i64, k: i64, s: i64, gamma: f64| ConvBn {
        conv: conv(p / format!("conv{i}"), ci, co, k, s),
        bn: norm(p / format!("bn{i}"), co, gamma, cfg),
    };
    // The last norm of the branch starts at zero (timm's `zero_init_last`), so every block
    // begins as the identity.
    // With blur pooling the 3x3 convolution keeps stride 1 and a blur downsamples after it.
    let blur = cfg.blur_pool && stride > 1;
    let conv_stride = if blur { 1 } else { stride };
    let (branch, strided) = if expansion == 1 {
        let units = vec![
            unit(1, c_in, planes, 3, conv_stride, 1.0),
            unit(2, planes, planes, 3, 1, 0.0),
        ];
        (units, 0)
    } else {
        let units = vec![
            unit(1, c_in, planes, 1, 1, 1.0),
            unit(2, planes, planes, 3, conv_stride, 1.0),
            unit(3, planes, c_out, 1, 1, 0.0),
        ];
        (units, 1)
    };
    let downsample = (stride != 1 || c_in != c_out).then(|| {
        let d = p / "downsample";
        if cfg.resnet_d {
            // timm's avg_down: [AvgPool2d or Identity, conv 1x1, bn].
            Shortcut {
                avg_pool: stride > 1,
                unit: ConvBn {
                    conv: conv(&d / "1", c_in, c_out, 1, 1),
                    bn: norm(&d / "2", c_out, 1.0, cfg),
                },
            }
        } else {
            Shortcut {
                avg_pool: false,
                unit: ConvBn {
                    conv: conv(&d / "0", c_in, c_out, 1, stride),
                    bn: norm(&d / "1", c_out, 1.0, cfg),
                },
            }
        }
    });
    let se = cfg.se.then(|| {
        let reduced = make_divisible(c_out as f64 * cfg.se_ratio(), cfg.se_divisor());
        SqueezeExcite::new(p / "se", c_out, reduced, SE_TIMM_RESNET)
    });
    Block {
        branch,
        se,
        downsample,
        act,
        drop_prob: 0.0,
        blur_after: blur.then_some(strided),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Pool;
    use tch::{Device, Kind};

    fn params(arch: Arch, se: bool) -> (i64, std::collections::HashMap<String, Tensor>) {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            arch,
            se,
            ..ModelConfig::default()
        };
        let _net = ResNet::new(&vs.root(), &cfg, 3, 1000);
        let n = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        (n, vs.variables())
    }

    #[test]
    fn torchvision_parameter_counts_and_names() {
        // torchvision: sum(p.numel() for p in resnet18().parameters()) == 11_689_512, resnet50: 25_557_032.
        let (n18, vars) = params(Arch::Resnet18, false);
        assert_eq!(n18, 11_689_512);
        assert_eq!(vars["layer2.0.downsample.0.weight"].size(), vec![128, 64, 1, 1]);
        assert_eq!(vars["layer4.1.bn2.running_var"].size(), vec![512]);
        assert_eq!(vars["fc.weight"].size(), vec![1000, 512]);
        assert_eq!(params(Arch::Resnet50, false).0, 25_557_032);
    }

    #[test]
    fn drop_path_grows_linearly_and_aux_head_sits_on_its_stage() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            drop_path_rate: 0.2,
            aux_stage: Some(2),
            pool: Pool::Attention,
            ..ModelConfig::default()
        };
        let net = ResNet::new(&vs.root(), &cfg, 1, 10);
        let probs: Vec<f64> = net.blocks.iter().map(|b| b.drop_prob).collect();
        assert_eq!(probs.len(), 9);
        assert_eq!((probs[0], probs[8]), (0.0, 0.2));
        assert!((probs[4] - 0.1).abs() < 1e-12);
        assert_eq!(net.aux_after, Some(5), "after the last block of stage 2");
        assert_eq!(vs.variables()["aux_fc.weight"].size(), vec![10, 32]);
        let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let (logits, aux) = net.forward_with_aux(&x, true);
        assert_eq!((logits.size(), aux.unwrap().size()), (vec![2, 10], vec![2, 10]));
        assert!(
            net.forward_with_aux(&x, false).1.is_none(),
            "no auxiliary head in evaluation"
        );
    }

    #[test]
    fn bn_momentum_sets_how_far_running_statistics_move() {
        // PyTorch: running_mean = (1 - m) * running_mean + m * batch mean, from 0.
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            bn_momentum: Some(0.25),
            ..ModelConfig::default()
        };
        let net = ResNet::new(&vs.root(), &cfg, 1, 10);
        let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu)) + 3.0;
        let _ = net.forward_with_aux(&x, true);
        let stem_out = x.apply(&net.stem[0].conv);
        let want = stem_out.mean_dim([0i64, 2, 3].as_slice(), false, None::<Kind>) * 0.25;
        let got = &vs.variables()["bn1.running_mean"];
        assert!(got.allclose(&want, 1e-5, 1e-6, false), "{got:?} vs {want:?}");
    }

    #[test]
    fn cifar_resnet20_shapes_and_forward() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &ModelConfig::default(), 1, 10);
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].size(), vec![16, 1, 3, 3]);
        assert_eq!(vars["layer3.2.conv2.weight"].size(), vec![64, 64, 3, 3]);
        assert_eq!(vars["layer3.0.se.fc1.weight"].size(), vec![8, 64, 1, 1]);
        assert!(!vars.contains_key("layer1.0.downsample.0.weight"));
        let x = Tensor::zeros([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let out = net.forward_with_aux(&x, false).0;
        assert_eq!(out.size(), vec![2, 10]);
    }

    #[test]
    fn resnet_d_shortcut_averages_then_projects() {
        // CIFAR ResNet-20 with ResNet-D: the stem stays 3x3; the stride-2 shortcut of layer2 is a
        // 2x2 average pool then a stride-1 1x1 convolution (timm's avg_down names).
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            resnet_d: true,
            se: false,
            ..ModelConfig::default()
        };
        let net = ResNet::new(&vs.root(), &cfg, 1, 10);
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].size(), vec![16, 1, 3, 3]);
        assert_eq!(vars["layer2.0.downsample.1.weight"].size(), vec![32, 16, 1, 1]);
        assert!(vars.contains_key("layer2.0.downsample.2.running_var"));
        let x = Tensor::randn([1, 16, 7, 7], (Kind::Float, Device::Cpu));
        let shortcut = net.blocks[3].downsample.as_ref().unwrap();
        let pooled = x.avg_pool2d([2, 2], [2, 2], [0, 0], true, false, None::<i64>);
        assert_eq!(pooled.size(), vec![1, 16, 4, 4], "ceil mode keeps the odd edge");
        // The edge window holds 2 of 4 pixels: their mean, not their sum over 4.
        let edge = (x.double_value(&[0, 0, 6, 0]) + x.double_value(&[0, 0, 6, 1])) / 2.0;
        assert!((pooled.double_value(&[0, 0, 3, 0]) - edge).abs() < 1e-6);
        let want = shortcut.unit.forward_t(&pooled, false);
        assert!(shortcut.forward_t(&x, false).allclose(&want, 1e-6, 1e-6, false));
    }
}
