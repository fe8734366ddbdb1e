//! The MobileNet family: torchvision's MobileNetV3 small and large (Howard et al. 2019,
//! "Searching for MobileNetV3") and timm's EfficientNet-B0 (Tan & Le 2019), both stacks of
//! inverted residual blocks (MobileNetV2's MBConv: a 1x1 expansion, a depthwise kxk
//! convolution, optional squeeze-and-excitation, a 1x1 projection, and the identity shortcut
//! when the shape allows). SE and swish/hard-swish are native here, so `model.se = false` and
//! the activation fields change a network that was designed with them.
//!
//! Parameter names follow the references, so their state dicts load one to one:
//! torchvision's `features.0.0` (stem), `features.I.block.J.{0,1}` (units), `features.I.block.J.
//! fc1/fc2` (SE), `classifier.0`/`classifier.3`; timm's `conv_stem`/`bn1`,
//! `blocks.S.B.{conv_pw,bn1,conv_dw,bn2,se.conv_reduce,se.conv_expand,conv_pwl,bn3}`,
//! `conv_head`/`bn2`, `classifier`. Batch-norm epsilon, initialisation and SE form are the
//! reference's, the batch-norm momentum too unless `model.bn_momentum` sets it.
use super::layers::{
    Act, ConvBn, Head, HeadSpec, KAIMING_FAN_OUT, SE_TIMM_EFFICIENTNET, SE_TORCHVISION_MOBILENET, SqueezeExcite,
    batch_norm, drop_path, grouped_conv, make_divisible, path,
};
use crate::recipe::{Arch, ModelConfig};
use tch::Tensor;
use tch::nn;

/// Whose names, batch norm and initialisation a network follows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Style {
    Torchvision,
    Timm,
}

/// The expanded channels of a block (or the last 1x1 convolution's output): a multiple of the
/// input's (EfficientNet, timm's `exp_ratio`) or a count at width 1 (MobileNetV3's tables).
#[derive(Clone, Copy, Debug)]
enum Expand {
    Ratio(i64),
    Channels(i64),
}

/// One block of an architecture's table.
#[derive(Clone, Copy, Debug)]
struct Row {
    kernel: i64,
    expand: Expand,
    /// Output channels at width 1.
    out: i64,
    se: bool,
    /// The paper's activation: hard-swish ("HS") or ReLU ("RE") in MobileNetV3.
    native: Act,
    stride: i64,
    /// 1-based stage, for `model.aux_stage`.
    stage: usize,
}

/// An architecture: its table and the parts around it.
struct Family {
    style: Style,
    /// Stem output channels at width 1.
    stem: i64,
    rows: Vec<Row>,
    /// Output channels of the last 1x1 convolution.
    last: Expand,
    /// MobileNetV3's hidden classifier layer (`classifier.0`), width at width 1.
    hidden: Option<i64>,
    /// The stem's and the last layers' own activation.
    native: Act,
}

/// MobileNetV3's table (torchvision's `_mobilenet_v3_conf`): (kernel, expanded, out, SE,
/// hard-swish, stride) per block; the first block and each later stride-2 block start a stage.
fn mobilenet_v3(large: bool) -> Family {
    const LARGE: [(i64, i64, i64, bool, bool, i64); 15] = [
        (3, 16, 16, false, false, 1),
        (3, 64, 24, false, false, 2),
        (3, 72, 24, false, false, 1),
        (5, 72, 40, true, false, 2),
        (5, 120, 40, true, false, 1),
        (5, 120, 40, true, false, 1),
        (3, 240, 80, false, true, 2),
        (3, 200, 80, false, true, 1),
        (3, 184, 80, false, true, 1),
        (3, 184, 80, false, true, 1),
        (3, 480, 112, true, true, 1),
        (3, 672, 112, true, true, 1),
        (5, 672, 160, true, true, 2),
        (5, 960, 160, true, true, 1),
        (5, 960, 160, true, true, 1),
    ];
    const SMALL: [(i64, i64, i64, bool, bool, i64); 11] = [
        (3, 16, 16, true, false, 2),
        (3, 72, 24, false, false, 2),
        (3, 88, 24, false, false, 1),
        (5, 96, 40, true, true, 2),
        (5, 240, 40, true, true, 1),
        (5, 240, 40, true, true, 1),
        (5, 120, 48, true, true, 1),
        (5, 144, 48, true, true, 1),
        (5, 288, 96, true, true, 2),
        (5, 576, 96, true, true, 1),
        (5, 576, 96, true, true, 1),
    ];
    let table: &[_] = if large { &LARGE } else { &SMALL };
    let mut stage = 0;
    let rows = table
        .iter()
        .enumerate()
        .map(|(i, &(kernel, expanded, out, se, hard_swish, stride))| {
            if i == 0 || stride == 2 {
                stage += 1;
            }
            Row {
                kernel,
                expand: Expand::Channels(expanded),
                out,
                se,
                native: if hard_swish { Act::HardSwish } else { Act::Relu },
                stride,
                stage,
            }
        })
        .collect();
    Family {
        style: Style::Torchvision,
        stem: 16,
        rows,
        last: Expand::Ratio(6),
        hidden: Some(if large { 1280 } else { 1024 }),
        native: Act::HardSwish,
    }
}

/// EfficientNet-B0 (timm's `_gen_efficientnet` arch_def, channel and depth multiplier 1):
/// per stage (repeats, kernel, stride, expansion, out); every block has SE and swish.
fn efficientnet_b0() -> Family {
    const STAGES: [(usize, i64, i64, i64, i64); 7] = [
        (1, 3, 1, 1, 16),
        (2, 3, 2, 6, 24),
        (2, 5, 2, 6, 40),
        (3, 3, 2, 6, 80),
        (3, 5, 1, 6, 112),
        (4, 5, 2, 6, 192),
        (1, 3, 1, 6, 320),
    ];
    let rows = STAGES
        .iter()
        .enumerate()
        .flat_map(|(s, &(repeats, kernel, stride, ratio, out))| {
            (0..repeats).map(move |i| Row {
                kernel,
                expand: Expand::Ratio(ratio),
                out,
                se: true,
                native: Act::Swish,
                stride: if i == 0 { stride } else { 1 },
                stage: s + 1,
            })
        })
        .collect();
    Family {
        style: Style::Timm,
        stem: 32,
        rows,
        last: Expand::Channels(1280),
        hidden: None,
        native: Act::Swish,
    }
}

impl Style {
    /// A convolution without bias (kernel `k`, `stride`, `groups` > 1: depthwise) and its batch
    /// norm (the reference's epsilon: torchvision's MobileNetV3 `BatchNorm2d(eps=0.001)`, timm's
    /// EfficientNet PyTorch's default; `momentum` the recipe's), named `names`.
    fn unit(
        self,
        p: &nn::Path,
        names: (&str, &str),
        (c_in, c_out): (i64, i64),
        (k, stride, groups): (i64, i64, i64),
        momentum: f64,
    ) -> ConvBn {
        let init = if groups > 1 {
            self.depthwise_init(k)
        } else {
            KAIMING_FAN_OUT
        };
        let eps = if self == Style::Torchvision { 1e-3 } else { 1e-5 };
        ConvBn {
            conv: grouped_conv(path(p, names.0), c_in, c_out, k, stride, groups, init),
            bn: batch_norm(path(p, names.1), c_out, 1.0, eps, momentum),
        }
    }

    /// Names of the stem's and the last 1x1 convolution's units (`blocks` blocks before it).
    fn stem_and_last_names(self, blocks: usize) -> [(String, String); 2] {
        let pair = |c: &str, b: &str| (c.to_string(), b.to_string());
        match self {
            Style::Torchvision => {
                let n = format!("features.{}", blocks + 1);
                [
                    pair("features.0.0", "features.0.1"),
                    pair(&format!("{n}.0"), &format!("{n}.1")),
                ]
            }
            Style::Timm => [pair("conv_stem", "bn1"), pair("conv_head", "bn2")],
        }
    }

    /// The path of block `i` of `rows`: torchvision's `features.(i + 1)`, timm's
    /// `blocks.(stage - 1).(index in the stage)`.
    fn block_path<'a>(self, p: &nn::Path<'a>, rows: &[Row], i: usize) -> nn::Path<'a> {
        match self {
            Style::Torchvision => p / "features" / (i + 1).to_string(),
            Style::Timm => {
                let stage = rows[i].stage;
                let first = rows.iter().position(|r| r.stage == stage).expect("row i is there");
                p / "blocks" / (stage - 1).to_string() / (i - first).to_string()
            }
        }
    }

    /// The classifiers' weight initialisation (biases start at zero): torchvision's normal(0,
    /// 0.01); timm's uniform(+-1 / sqrt(out_features)).
    fn linear_init(self, classes: i64) -> nn::Init {
        match self {
            Style::Torchvision => nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            Style::Timm => {
                let r = 1.0 / (classes as f64).sqrt();
                nn::Init::Uniform { lo: -r, up: r }
            }
        }
    }

    /// A depthwise convolution's initialisation: torchvision's `kaiming_normal_(fan_out)`
    /// counts all output channels; timm's `_init_weight_goog` divides the fan-out by the groups,
    /// normal with standard deviation sqrt(2 / k^2).
    fn depthwise_init(self, k: i64) -> nn::Init {
        match self {
            Style::Torchvision => KAIMING_FAN_OUT,
            Style::Timm => nn::Init::Randn {
                mean: 0.0,
                stdev: (2.0 / (k * k) as f64).sqrt(),
            },
        }
    }

    /// The names of a block's units (convolution, norm): expansion, depthwise, projection, and
    /// of its SE module. torchvision numbers the units of `block` in order (SE among them);
    /// timm names them, with `conv_dw`/`bn1`/`conv_pw`/`bn2` in a block without expansion.
    fn unit_names(self, expand: bool, se: bool) -> [(String, String); 4] {
        let pair = |c: &str, b: &str| (c.to_string(), b.to_string());
        match self {
            Style::Torchvision => {
                let unit = |i: usize| pair(&format!("block.{i}.0"), &format!("block.{i}.1"));
                let dw = usize::from(expand);
                let project = dw + 1 + usize::from(se);
                [unit(0), unit(dw), pair(&format!("block.{}", dw + 1), ""), unit(project)]
            }
            Style::Timm if expand => [
                pair("conv_pw", "bn1"),
                pair("conv_dw", "bn2"),
                pair("se", ""),
                pair("conv_pwl", "bn3"),
            ],
            Style::Timm => [
                pair("", ""),
                pair("conv_dw", "bn1"),
                pair("se", ""),
                pair("conv_pw", "bn2"),
            ],
        }
    }
}

/// An inverted residual block.
#[derive(Debug)]
struct InvertedResidual {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    se: Option<SqueezeExcite>,
    project: ConvBn,
    act: Act,
    /// Identity shortcut (stride 1, same channels).
    residual: bool,
    /// Stochastic-depth drop probability of the branch (with the shortcut only).
    drop_prob: f64,
}

impl InvertedResidual {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = match &self.expand {
            Some(e) => self.act.apply(&e.forward_t(xs, train)),
            None => xs.shallow_clone(),
        };
        h = self.act.apply(&self.depthwise.forward_t(&h, train));
        if let Some(se) = &self.se {
            h = se.forward(&h);
        }
        h = self.project.forward_t(&h, train);
        if !self.residual {
            return h;
        }
        if train {
            h = drop_path(&h, self.drop_prob);
        }
        h + xs
    }
}

/// A MobileNetV3 or an EfficientNet-B0.
#[derive(Debug)]
pub struct MobileNet {
    stem: ConvBn,
    stem_act: Act,
    blocks: Vec<InvertedResidual>,
    /// The last 1x1 convolution (`features.N`, `conv_head`/`bn2`) and its activation.
    last: ConvBn,
    last_act: Act,
    /// After the block of this index, the auxiliary classifier's input.
    aux_after: Option<usize>,
    head: Head,
}

impl MobileNet {
    /// Builds `cfg.arch` (a MobileNetV3 or EfficientNet) under `p` for images with
    /// `in_channels` channels and `classes` outputs.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, in_channels: i64, classes: i64) -> MobileNet {
        let family = match cfg.arch {
            Arch::MobilenetV3Small => mobilenet_v3(false),
            Arch::MobilenetV3Large => mobilenet_v3(true),
            Arch::EfficientnetB0 => efficientnet_b0(),
            resnet => panic!("{resnet:?} is a ResNet"),
        };
        let style = family.style;
        // Channel counts scaled by `model.width`, to multiples of 8 (both references' rounding).
        let width = |c: i64| make_divisible(c as f64 * cfg.width, 8);
        let expanded = |e: Expand, c_in: i64| match e {
            Expand::Ratio(r) => make_divisible((c_in * r) as f64, 8),
            Expand::Channels(c) => width(c),
        };
        let act = |native: Act, stride: i64| {
            let kind = if stride > 1 {
                cfg.downscale_activation
            } else {
                cfg.activation
            };
            Act::resolve(kind, cfg.leaky_slope, native)
        };
        let momentum = cfg.bn_momentum();
        let rows = &family.rows;
        let [stem_names, last_names] = style.stem_and_last_names(rows.len());
        let unit =
            |names: &(String, String), channels, shape| style.unit(p, (&names.0, &names.1), channels, shape, momentum);
        let stem_c = width(family.stem);
        let stem = unit(&stem_names, (in_channels, stem_c), (3, 2, 1));
        let mut blocks = Vec::with_capacity(rows.len());
        let (mut c_in, mut aux) = (stem_c, None);
        for (i, row) in rows.iter().enumerate() {
            let c_out = width(row.out);
            let channels = (c_in, expanded(row.expand, c_in), c_out);
            let bp = style.block_path(p, rows, i);
            let mut b = block(&bp, cfg, style, row, channels, act(row.native, row.stride));
            b.drop_prob = cfg.drop_path_rate * i as f64 / rows.len() as f64;
            blocks.push(b);
            c_in = c_out;
            let stage_ends = rows.get(i + 1).is_none_or(|r| r.stage != row.stage);
            if cfg.aux_stage == Some(row.stage) && stage_ends {
                aux = Some((i, c_in));
            }
        }
        let last_c = expanded(family.last, c_in);
        let last = unit(&last_names, (c_in, last_c), (1, 1, 1));
        let head_act = act(family.native, 1);
        let head = HeadSpec {
            pool: cfg.pool,
            hidden: family.hidden.map(|h| ("classifier.0", width(h), head_act)),
            dropout: cfg.dropout(),
            fc: if family.hidden.is_some() {
                "classifier.3"
            } else {
                "classifier"
            },
            aux_channels: aux.map(|(_, c)| c),
            linear_init: Some(style.linear_init(classes)),
        };
        MobileNet {
            stem,
            stem_act: act(family.native, 2),
            blocks,
            last,
            last_act: head_act,
            aux_after: aux.map(|(i, _)| i),
            head: Head::new(p, last_c, classes, head),
        }
    }

    /// Logits, and in training the auxiliary head's logits when the model has one.
    pub fn forward_with_aux(&self, xs: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let mut h = self.stem_act.apply(&self.stem.forward_t(xs, train));
        let mut aux_logits = None;
        for (i, b) in self.blocks.iter().enumerate() {
            h = b.forward_t(&h, train);
            if train && self.aux_after == Some(i) {
                aux_logits = self.head.aux(&h);
            }
        }
        h = self.last_act.apply(&self.last.forward_t(&h, train));
        (self.head.forward_t(&h, train), aux_logits)
    }
}

/// The block of `row` under `p`, from `c_in` to `c_out` channels through `mid`, with the
/// activation `act`.
fn block(
    p: &nn::Path,
    cfg: &ModelConfig,
    style: Style,
    row: &Row,
    (c_in, mid, c_out): (i64, i64, i64),
    act: Act,
) -> InvertedResidual {
    let has_expand = mid != c_in;
    let se = cfg.se && row.se;
    let [expand, dw, se_name, project] = style.unit_names(has_expand, se);
    let unit = |(c, b): &(String, String), ch: (i64, i64), shape: (i64, i64, i64)| {
        style.unit(p, (c, b), ch, shape, cfg.bn_momentum())
    };
    let expand = has_expand.then(|| unit(&expand, (c_in, mid), (1, 1, 1)));
    let depthwise = unit(&dw, (mid, mid), (row.kernel, row.stride, mid));
    let se = se.then(|| {
        // torchvision squeezes the expanded channels, timm's EfficientNet the block's input.
        let (basis, se_style) = match style {
            Style::Torchvision => (mid, SE_TORCHVISION_MOBILENET),
            Style::Timm => (c_in, SE_TIMM_EFFICIENTNET),
        };
        let reduced = make_divisible(basis as f64 * cfg.se_ratio(), cfg.se_divisor());
        SqueezeExcite::new(path(p, &se_name.0), mid, reduced, se_style)
    });
    let project = unit(&project, (mid, c_out), (1, 1, 1));
    InvertedResidual {
        expand,
        depthwise,
        se,
        project,
        act,
        residual: row.stride == 1 && c_in == c_out,
        drop_prob: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Activation;
    use std::collections::HashMap;
    use tch::{Device, Kind};

    fn build(cfg: &ModelConfig, classes: i64) -> (MobileNet, i64, HashMap<String, Tensor>) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = MobileNet::new(&vs.root(), cfg, 3, classes);
        let n = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        (net, n, vs.variables())
    }

    fn arch(arch: Arch) -> ModelConfig {
        ModelConfig {
            arch,
            ..ModelConfig::default()
        }
    }

    #[test]
    fn parameter_counts_and_names_are_the_references() {
        // sum(p.numel() for p in m.parameters()): torchvision's mobilenet_v3_small() 2_542_856,
        // mobilenet_v3_small(width_mult=0.5) 917_264, mobilenet_v3_large() 5_483_032; timm's
        // create_model("efficientnet_b0") 5_288_548.
        let (_, small, vars) = build(&arch(Arch::MobilenetV3Small), 1000);
        assert_eq!(small, 2_542_856);
        assert_eq!(vars["features.1.block.1.fc1.weight"].size(), vec![8, 16, 1, 1]);
        assert_eq!(vars["features.4.block.1.0.weight"].size(), vec![96, 1, 5, 5]);
        assert_eq!(vars["features.12.0.weight"].size(), vec![576, 96, 1, 1]);
        assert_eq!(vars["classifier.3.weight"].size(), vec![1000, 1024]);
        let half = ModelConfig {
            width: 0.5,
            ..arch(Arch::MobilenetV3Small)
        };
        assert_eq!(build(&half, 1000).1, 917_264);
        assert_eq!(build(&arch(Arch::MobilenetV3Large), 1000).1, 5_483_032);
        let (_, b0, vars) = build(&arch(Arch::EfficientnetB0), 1000);
        assert_eq!(b0, 5_288_548);
        assert_eq!(vars["blocks.0.0.conv_dw.weight"].size(), vec![32, 1, 3, 3]);
        assert_eq!(vars["blocks.0.0.se.conv_reduce.weight"].size(), vec![8, 32, 1, 1]);
        assert_eq!(vars["blocks.5.3.conv_pwl.weight"].size(), vec![192, 1152, 1, 1]);
        assert_eq!(vars["conv_head.weight"].size(), vec![1280, 320, 1, 1]);
        assert_eq!(vars["classifier.weight"].size(), vec![1000, 1280]);
    }

    #[test]
    fn without_se_torchvision_renumbers_the_projection() {
        let cfg = ModelConfig {
            se: false,
            ..arch(Arch::MobilenetV3Small)
        };
        let (net, _, vars) = build(&cfg, 10);
        assert!(net.blocks.iter().all(|b| b.se.is_none()));
        // Block 4 (expand, depthwise, SE, project) loses its SE: the projection is block.2.
        assert_eq!(vars["features.4.block.2.0.weight"].size(), vec![40, 96, 1, 1]);
        assert!(!vars.keys().any(|k| k.contains("fc1")));
    }

    #[test]
    fn activations_follow_the_table_unless_the_recipe_sets_them() {
        let native = ModelConfig {
            activation: Activation::Native,
            downscale_activation: Activation::Native,
            ..arch(Arch::MobilenetV3Large)
        };
        let (net, _, _) = build(&native, 10);
        let acts: Vec<Act> = net.blocks.iter().map(|b| b.act).collect();
        assert_eq!(&acts[..6], &[Act::Relu; 6]);
        assert_eq!(&acts[6..], &[Act::HardSwish; 9]);
        assert_eq!((net.stem_act, net.last_act), (Act::HardSwish, Act::HardSwish));
        // The recipe's defaults: native layers, leaky ReLU where the resolution halves.
        let (net, _, _) = build(&arch(Arch::MobilenetV3Large), 10);
        let down = Act::LeakyRelu(0.01);
        assert_eq!((net.stem_act, net.blocks[1].act, net.blocks[6].act), (down, down, down));
        assert_eq!((net.blocks[2].act, net.blocks[7].act), (Act::Relu, Act::HardSwish));
        let relu = ModelConfig {
            activation: Activation::Relu,
            ..arch(Arch::EfficientnetB0)
        };
        let (net, _, _) = build(&relu, 10);
        assert_eq!(
            (net.blocks[0].act, net.blocks[1].act, net.last_act),
            (Act::Relu, down, Act::Relu)
        );
    }

    #[test]
    fn stages_drop_path_and_the_auxiliary_head() {
        // timm: block i of 16 drops its branch with drop_path_rate * i / 16.
        let cfg = ModelConfig {
            drop_path_rate: 0.2,
            aux_stage: Some(3),
            ..arch(Arch::EfficientnetB0)
        };
        let (net, _, vars) = build(&cfg, 10);
        assert!((net.blocks[15].drop_prob - 0.1875).abs() < 1e-12);
        assert_eq!(net.aux_after, Some(4), "blocks.2.1, the last of stage 3");
        assert_eq!(vars["aux_fc.weight"].size(), vec![10, 40]);
        // The recipe's stage counts (what model.aux_stage is validated against) are the tables'.
        for (a, family) in [
            (Arch::MobilenetV3Small, mobilenet_v3(false)),
            (Arch::MobilenetV3Large, mobilenet_v3(true)),
            (Arch::EfficientnetB0, efficientnet_b0()),
        ] {
            assert_eq!(a.stages(), family.rows.last().unwrap().stage, "{a:?}");
        }
        // MobileNetV3-small: a stride-2 block starts a stage; stage 2 ends at features.3.
        let cfg = ModelConfig {
            aux_stage: Some(2),
            ..arch(Arch::MobilenetV3Small)
        };
        let (net, _, _) = build(&cfg, 10);
        assert_eq!(net.aux_after, Some(2));
        assert_eq!(net.blocks.iter().filter(|b| b.residual).count(), 6);
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (logits, aux) = net.forward_with_aux(&x, true);
        assert_eq!((logits.size(), aux.unwrap().size()), (vec![2, 10], vec![2, 10]));
        assert!(net.forward_with_aux(&x, false).1.is_none());
    }
}
