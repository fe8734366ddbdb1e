//! Building blocks: activations, convolution + batch-norm pairs, squeeze-and-excitation,
//! pooling and the classifier head.
use crate::recipe::{Activation, Pool};
use tch::Tensor;
use tch::nn;

/// An activation function with its parameters resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Relu,
    LeakyRelu(f64),
    Swish,
    Elu,
    HardSwish,
}

impl Act {
    /// The recipe's `kind` at a layer whose own activation is `native` (what
    /// `Activation::Native` stands for there).
    pub fn resolve(kind: Activation, leaky_slope: f64, native: Act) -> Self {
        match kind {
            Activation::Relu => Act::Relu,
            Activation::LeakyRelu => Act::LeakyRelu(leaky_slope),
            Activation::Swish => Act::Swish,
            Activation::Elu => Act::Elu,
            Activation::HardSwish => Act::HardSwish,
            Activation::Native => native,
        }
    }

    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Act::Relu => xs.relu(),
            // libtorch's leaky_relu binding fixes the slope at 0.01; other slopes use
            // max(x, a*x), which equals LeakyReLU for 0 <= a <= 1.
            Act::LeakyRelu(0.01) => xs.leaky_relu(),
            Act::LeakyRelu(a) => xs.maximum(&(xs * a)),
            Act::Swish => xs.silu(),
            Act::Elu => xs.elu(),
            Act::HardSwish => xs.hardswish(),
        }
    }
}

/// The sub-path `dotted` of `p`: `path(p, "features.0.0")` is `p / "features" / "0" / "0"`
/// (tch's paths take one name at a time).
pub fn path<'a>(p: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    let mut names = dotted.split('.');
    let first = p / names.next().expect("split yields a name");
    names.fold(first, |q, name| q / name)
}

/// torchvision's convolution initialisation, `kaiming_normal_(mode="fan_out",
/// nonlinearity="relu")`: normal with standard deviation sqrt(2 / (c_out * k * k)).
pub const KAIMING_FAN_OUT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// Convolution without bias, padding `k / 2`, initialised as torchvision's ResNet does
/// ([`KAIMING_FAN_OUT`]).
pub fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> Conv {
    grouped_conv(p, c_in, c_out, k, stride, 1, KAIMING_FAN_OUT)
}

/// Convolution without bias, padding `k / 2`, in `groups` groups (`groups = c_in = c_out`: a
/// depthwise convolution), initialised by `init`.
pub fn grouped_conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, groups: i64, init: nn::Init) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        groups,
        bias: false,
        ws_init: init,
        ..Default::default()
    };
    Conv {
        inner: nn::conv2d(p, c_in, c_out, k, cfg),
        kernel: k,
        stride,
        groups,
    }
}

/// A bias-free convolution with padding `k / 2` (PyTorch's `Conv2d`; the weight is the
/// parameter `weight`, as torchvision names it).
///
/// On the CPU, two ungrouped cases run as matrix products instead of libtorch's convolution:
/// - a 3x3, stride-1 convolution over a map of at most 2x2 ([`small_map_conv3x3`]): the
///   deepest stage of a ResNet on small images (ResNet-20 on 8x8 digits, ResNet-18 on 32x32)
///   has such maps, where the convolution kernels spend most of their time on padding taps;
/// - a 1x1 convolution with stride > 1 and fewer than 8 input channels ([`pointwise_conv`]),
///   whose channels-last weight gradient corrupts the heap in libtorch 2.13's oneDNN on AVX2
///   CPUs (seen on an AMD EPYC: 2, 3, 4 or 6 input channels, 8x8 maps, stride 2; a ResNet-20
///   of width 0.25 crashed in training).
#[derive(Debug)]
pub struct Conv {
    inner: nn::Conv2D,
    kernel: i64,
    stride: i64,
    groups: i64,
}

impl nn::Module for Conv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let size = xs.size();
        let (c_in, h, w) = (size[1], size[2], size[3]);
        if xs.device() != tch::Device::Cpu || self.groups != 1 {
            return xs.apply(&self.inner);
        }
        match self.kernel {
            3 if self.stride == 1 && h <= 2 && w <= 2 => small_map_conv3x3(xs, &self.inner.ws),
            1 if self.stride > 1 && c_in < 8 => pointwise_conv(xs, &self.inner.ws, self.stride),
            _ => xs.apply(&self.inner),
        }
    }
}

/// A 1x1 convolution of `xs` `(N, C_in, H, W)` with stride `stride` (no padding), as a matrix
/// product over the channels of every `stride`-th position. Equal to `conv2d` up to float
/// rounding; the output keeps the memory order of `xs`.
pub fn pointwise_conv(xs: &Tensor, weight: &Tensor, stride: i64) -> Tensor {
    let (c_out, c_in) = (weight.size()[0], weight.size()[1]);
    let ys = xs
        .slice(2, 0, None, stride)
        .slice(3, 0, None, stride)
        .permute([0, 2, 3, 1])
        .matmul(&weight.view([c_out, c_in]).tr())
        .permute([0, 3, 1, 2]);
    same_memory_order(ys, xs)
}

/// `ys` in the memory order of `xs`: contiguous if `xs` is, else as it is (channels-last).
fn same_memory_order(ys: Tensor, xs: &Tensor) -> Tensor {
    if xs.is_contiguous() { ys.contiguous() } else { ys }
}

/// A 3x3 convolution, stride 1, padding 1, of `xs` `(N, C_in, H, W)` with `H, W <= 2`, as one
/// matrix product: on such a map every output position sees every input position, through the
/// tap `(p_h - o_h + 1, p_w - o_w + 1)`, so the convolution is the dense linear map whose
/// `((o, c_out), (p, c_in))` entry is `weight[c_out, c_in, tap(o, p)]`. It skips the padding
/// taps (on a 2x2 map, 4 of each output's 9), and its gradients are two matrix products and an
/// index-add, where libtorch's CPU convolution backward is an order of magnitude slower at
/// this size. Equal to `conv2d` up to float rounding; the output keeps the memory order of
/// `xs` (channels-last stays channels-last).
pub fn small_map_conv3x3(xs: &Tensor, weight: &Tensor) -> Tensor {
    let (n, c_in, h, w) = xs.size4().expect("a 4-D batch");
    let c_out = weight.size()[0];
    let positions = h * w;
    let taps: Vec<i64> = (0..positions)
        .flat_map(|o| (0..positions).map(move |p| (p / w - o / w + 1) * 3 + (p % w - o % w + 1)))
        .collect();
    let taps = Tensor::from_slice(&taps).to_device(xs.device());
    // (c_out, tap, c_in): a view of a channels-last weight.
    let by_tap = weight.permute([0, 2, 3, 1]).reshape([c_out, 9, c_in]);
    let dense = by_tap
        .index_select(1, &taps)
        .view([c_out, positions, positions, c_in])
        .transpose(0, 1)
        .reshape([positions * c_out, positions * c_in]);
    let flat = xs.permute([0, 2, 3, 1]).reshape([n, positions * c_in]);
    let ys = flat.matmul(&dense.tr()).view([n, h, w, c_out]).permute([0, 3, 1, 2]);
    same_memory_order(ys, xs)
}

/// Batch norm with weight `gamma` (1, or 0 for the last norm of a residual branch), bias 0,
/// and the given epsilon and momentum (PyTorch's convention: running = (1 - momentum) *
/// running + momentum * batch).
pub fn batch_norm(p: nn::Path, c: i64, gamma: f64, eps: f64, momentum: f64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(gamma),
        eps,
        momentum,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// timm's `make_divisible`: round `v` to the nearest multiple of `divisor` (at least `divisor`),
/// going up one step if rounding lost more than 10%.
pub fn make_divisible(v: f64, divisor: usize) -> i64 {
    let d = divisor as f64;
    let mut r = (((v + d / 2.0) / d).floor() * d).max(d);
    if r < 0.9 * v {
        r += d;
    }
    r as i64
}

/// The squeeze-and-excitation variants of the reference implementations: the names of the two
/// 1x1 convolutions, the activation between them and the gate.
#[derive(Clone, Copy, Debug)]
pub struct SeStyle {
    pub names: [&'static str; 2],
    pub inner: Act,
    pub hard_gate: bool,
}

/// timm's `SEModule` (its SE-ResNets): `fc1`, ReLU, `fc2`, sigmoid.
pub const SE_TIMM_RESNET: SeStyle = SeStyle {
    names: ["fc1", "fc2"],
    inner: Act::Relu,
    hard_gate: false,
};
/// torchvision's `SqueezeExcitation` in MobileNetV3: `fc1`, ReLU, `fc2`, hard sigmoid.
pub const SE_TORCHVISION_MOBILENET: SeStyle = SeStyle {
    names: ["fc1", "fc2"],
    inner: Act::Relu,
    hard_gate: true,
};
/// timm's EfficientNet `SqueezeExcite`: `conv_reduce`, swish, `conv_expand`, sigmoid.
pub const SE_TIMM_EFFICIENTNET: SeStyle = SeStyle {
    names: ["conv_reduce", "conv_expand"],
    inner: Act::Swish,
    hard_gate: false,
};

/// Squeeze-and-excitation (Hu et al. 2018): GAP -> 1x1 conv C->R (bias) -> activation -> 1x1
/// conv R->C (bias) -> gate -> scale channels, in the reference's `style`.
#[derive(Debug)]
pub struct SqueezeExcite {
    fc1: nn::Conv2D,
    fc2: nn::Conv2D,
    style: SeStyle,
}

impl SqueezeExcite {
    /// SE on `channels` channels squeezed to `reduced`.
    pub fn new(p: nn::Path, channels: i64, reduced: i64, style: SeStyle) -> Self {
        let cfg = nn::ConvConfig {
            bias: true,
            ..Default::default()
        };
        SqueezeExcite {
            fc1: nn::conv2d(&p / style.names[0], channels, reduced, 1, cfg),
            fc2: nn::conv2d(&p / style.names[1], reduced, channels, 1, cfg),
            style,
        }
    }

    /// The two 1x1 convolutions act on a 1x1 map, so they run as matrix products on (N, C):
    /// the same function as the references' convolutions, without a convolution's per-call
    /// setup (the gate's small ops dominated SE's cost on small CPU runs).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let s = xs.mean_dim([2i64, 3].as_slice(), false, None::<tch::Kind>);
        let fc = |x: &Tensor, c: &nn::Conv2D| x.linear(&c.ws.flatten(1, -1), c.bs.as_ref());
        let s = fc(&self.style.inner.apply(&fc(&s, &self.fc1)), &self.fc2);
        let gate = if self.style.hard_gate {
            s.hardsigmoid()
        } else {
            s.sigmoid()
        };
        xs * gate.unsqueeze(-1).unsqueeze(-1)
    }
}

/// Anti-aliased downsampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant
/// Again"), as timm's `BlurPool2d` with its defaults: reflect padding of 1, then each channel
/// convolved with the binomial filter `[1, 2, 1]^T [1, 2, 1] / 16` at stride 2.
pub fn blur_pool(xs: &Tensor) -> Tensor {
    let c = xs.size()[1];
    let taps = Tensor::from_slice(&[1.0f32, 2.0, 1.0])
        .to_kind(xs.kind())
        .to_device(xs.device())
        / 4.0;
    let filter = (taps.unsqueeze(1) * taps.unsqueeze(0))
        .view([1, 1, 3, 3])
        .repeat([c, 1, 1, 1]);
    xs.reflection_pad2d([1, 1, 1, 1])
        .conv2d(&filter, None::<Tensor>, [2, 2], [0, 0], [1, 1], c)
}

/// Stochastic depth (Huang et al. 2016), per sample: each row of `xs` is zeroed with probability
/// `p` and the kept rows are scaled by `1 / (1 - p)`, so the expectation is unchanged.
pub fn drop_path(xs: &Tensor, p: f64) -> Tensor {
    if p <= 0.0 {
        return xs.shallow_clone();
    }
    let keep = 1.0 - p;
    let mut shape = vec![1i64; xs.dim()];
    shape[0] = xs.size()[0];
    let mask = Tensor::empty(shape.as_slice(), (xs.kind(), xs.device())).bernoulli_float_(keep);
    xs * mask / keep
}

/// Attention pooling: a learned score per position (1x1 convolution, C -> 1), a softmax over
/// the positions, and the score-weighted sum of the features, in place of global average
/// pooling; the attention-based pooling of Ilse, Tomczak & Welling 2018 ("Attention-based Deep
/// Multiple Instance Learning") with a linear scorer. The scorer starts at zero, so the module
/// starts as exactly global average pooling and learns where to look.
#[derive(Debug)]
pub struct AttentionPool {
    score: nn::Conv2D,
}

impl AttentionPool {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        let cfg = nn::ConvConfig {
            bias: true,
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        AttentionPool {
            score: nn::conv2d(p / "score", channels, 1, 1, cfg),
        }
    }

    /// (N, C, H, W) -> (N, C).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let attn = xs.apply(&self.score).flatten(2, -1).softmax(-1, None); // (N, 1, HW)
        (xs.flatten(2, -1) * attn).sum_dim_intlist(-1, false, None)
    }
}

/// Everything after the last feature map: global pooling (`model.pool`), optionally a hidden
/// linear layer with its activation (MobileNetV3's `classifier.0`), dropout in training
/// (`model.dropout`) and the classifier; and the auxiliary classifier (`aux_fc`) on an earlier
/// feature map.
#[derive(Debug)]
pub struct Head {
    attention_pool: Option<AttentionPool>,
    hidden: Option<(nn::Linear, Act)>,
    dropout: f64,
    fc: nn::Linear,
    aux_fc: Option<nn::Linear>,
}

impl Head {
    /// A head on `channels` features: pooling under `p / "attn_pool"`, the classifier under
    /// `p / fc`, the auxiliary classifier (`aux_channels`: its input's channels) under
    /// `p / "aux_fc"`; PyTorch's default linear initialisation unless `linear_init` (weights,
    /// with zero biases) is given.
    pub fn new(p: &nn::Path, channels: i64, classes: i64, spec: HeadSpec) -> Head {
        let linear = |q: nn::Path, i: i64, o: i64| {
            let cfg = match spec.linear_init {
                Some(ws_init) => nn::LinearConfig {
                    ws_init,
                    bs_init: Some(nn::Init::Const(0.0)),
                    bias: true,
                },
                None => Default::default(),
            };
            nn::linear(q, i, o, cfg)
        };
        // Created in this order so that a seed initialises the ResNets as it always did.
        let aux_fc = spec.aux_channels.map(|c| linear(p / "aux_fc", c, classes));
        let attention_pool = (spec.pool == Pool::Attention).then(|| AttentionPool::new(p / "attn_pool", channels));
        let hidden = spec
            .hidden
            .map(|(name, width, act)| (linear(path(p, name), channels, width), act));
        let features = hidden.as_ref().map_or(channels, |(l, _)| l.ws.size()[0]);
        Head {
            attention_pool,
            hidden,
            dropout: spec.dropout,
            fc: linear(path(p, spec.fc), features, classes),
            aux_fc,
        }
    }

    /// Logits of the last feature map `xs`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = match &self.attention_pool {
            Some(a) => a.forward(xs),
            None => xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1),
        };
        if let Some((linear, act)) = &self.hidden {
            h = act.apply(&h.apply(linear));
        }
        if train && self.dropout > 0.0 {
            h = h.dropout(self.dropout, true);
        }
        h.apply(&self.fc)
    }

    /// Logits of the auxiliary classifier on the feature map `xs`, when the model has one.
    pub fn aux(&self, xs: &Tensor) -> Option<Tensor> {
        let fc = self.aux_fc.as_ref()?;
        Some(xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(fc))
    }
}

/// How a [`Head`] is built.
pub struct HeadSpec {
    pub pool: Pool,
    /// Name, width and activation of a hidden layer before the classifier.
    pub hidden: Option<(&'static str, i64, Act)>,
    pub dropout: f64,
    /// The classifier's name: `fc` (ResNets), `classifier` (EfficientNet), `classifier.3`.
    pub fc: &'static str,
    pub aux_channels: Option<i64>,
    pub linear_init: Option<nn::Init>,
}

/// A convolution followed by batch norm, the unit residual branches are made of.
#[derive(Debug)]
pub struct ConvBn {
    pub conv: Conv,
    pub bn: nn::BatchNorm,
}

impl ConvBn {
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.conv).apply_t(&self.bn, train)
    }
}

#[cfg(test)]
mod tests;
