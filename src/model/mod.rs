//! The networks: the ResNet family (`resnet`) and the MobileNet family (`mobilenet`:
//! MobileNetV3, EfficientNet-B0), built from `layers`, behind one [`Net`]; weight import
//! (`import`) and memory-order helpers.
//!
//! Every architecture uses its reference's parameter names (torchvision's, or timm's where
//! torchvision lacks the variant), so their state dicts load one to one.
pub mod import;
pub mod layers;
pub mod mobilenet;
pub mod resnet;
pub mod whiten;

use crate::recipe::ModelConfig;
use mobilenet::MobileNet;
use resnet::ResNet;
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// The classifier network of `model.arch`.
#[derive(Debug)]
pub enum Net {
    ResNet(Box<ResNet>),
    MobileNet(Box<MobileNet>),
}

impl Net {
    /// Builds the network under `p` for images with `in_channels` channels and `classes` outputs.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, in_channels: i64, classes: i64) -> Net {
        if cfg.arch.is_resnet() {
            Net::ResNet(Box::new(ResNet::new(p, cfg, in_channels, classes)))
        } else {
            Net::MobileNet(Box::new(MobileNet::new(p, cfg, in_channels, classes)))
        }
    }

    /// Logits, and in training the auxiliary head's logits when the model has one.
    pub fn forward_with_aux(&self, xs: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        match self {
            Net::ResNet(n) => n.forward_with_aux(xs, train),
            Net::MobileNet(n) => n.forward_with_aux(xs, train),
        }
    }
}

impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_with_aux(xs, train).0
    }
}

/// A network `cfg` describes on `device`, with its variables: built under a fresh VarStore and,
/// with `channels_last`, its 4-D weights in channels-last memory order (before an optimizer
/// takes them). Training, evaluation and the benchmarks build every model through here.
pub fn build(
    cfg: &ModelConfig,
    in_channels: i64,
    classes: i64,
    device: tch::Device,
    channels_last: bool,
) -> (nn::VarStore, Net) {
    let vs = nn::VarStore::new(device);
    let net = Net::new(&vs.root(), cfg, in_channels, classes);
    if channels_last {
        to_channels_last(&vs);
    }
    (vs, net)
}

/// Whether the variable `name` belongs to a classifier (`fc`, `aux_fc`, `classifier.*`): what a
/// frozen backbone keeps training, and what weights of another class count leave initialised.
pub fn is_classifier(name: &str) -> bool {
    ["fc.", "aux_fc.", "classifier."].iter().any(|p| name.starts_with(p))
}

/// `t` in NHWC memory order with its NCHW shape, as `t.to(memory_format=torch.channels_last)`
/// (tch has no memory-format argument; permuting, copying and permuting back gives the same
/// strides). Tensors that are not 4-D are returned as they are.
pub fn channels_last(t: &Tensor) -> Tensor {
    if t.dim() == 4 {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        t.shallow_clone()
    }
}

/// A batch in the memory order the model's weights use: channels-last when `channels_last`.
pub fn in_memory_order(x: Tensor, channels_last: bool) -> Tensor {
    if channels_last { self::channels_last(&x) } else { x }
}

/// Moves every 4-D variable of `vs` (convolution weights) to channels-last memory order in
/// place, as `model.to(memory_format=torch.channels_last)`; values are unchanged. Convolutions
/// then return channels-last activations when their input is channels-last.
pub fn to_channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let nhwc = channels_last(&v);
                v.set_data(&nhwc);
            }
        }
    });
}

/// timm's layer groups for layer-wise learning-rate decay (its `group_matcher(coarse=False)`):
/// the stem (`conv1`/`bn1`, `conv_stem`/`bn1`, `features.0`) is group 0, each block
/// (`layerS.B`, `blocks.S.B`, `features.I`) the next group in stage and block order,
/// EfficientNet's `conv_head`/`bn2` the last block's group (as timm's matcher yields), and
/// anything else (the classifiers, attention pooling) the last.
/// Returns each name's group and the number of groups.
pub fn layer_groups(names: &[String]) -> (Vec<usize>, usize) {
    let block = |n: &str| -> Option<(u32, u32)> {
        let number = |s: Option<&str>| s?.parse::<u32>().ok();
        let mut parts = n.split('.');
        match parts.next()? {
            "blocks" => Some((number(parts.next())?, number(parts.next())?)),
            "features" => Some((number(parts.next())?, 0)).filter(|b| b.0 > 0),
            first => Some((first.strip_prefix("layer")?.parse().ok()?, number(parts.next())?)),
        }
    };
    let stem = |n: &str| {
        ["conv1.", "conv_stem.", "bn1.", "features.0."]
            .iter()
            .any(|p| n.starts_with(p))
    };
    let mut blocks: Vec<(u32, u32)> = names.iter().filter_map(|n| block(n)).collect();
    blocks.sort_unstable();
    blocks.dedup();
    let last = blocks.len() + 1;
    let group = |n: &String| {
        if stem(n) {
            0
        } else if n.starts_with("conv_head.") || n.starts_with("bn2.") {
            blocks.len()
        } else {
            block(n).map_or(last, |b| 1 + blocks.binary_search(&b).expect("listed"))
        }
    };
    (names.iter().map(group).collect(), last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_groups_follow_timms_matchers_for_every_family() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let b0 = names(&[
            "conv_stem.weight",
            "bn1.bias",
            "blocks.0.0.conv_dw.weight",
            "blocks.1.1.bn3.weight",
            "blocks.1.0.conv_pw.weight",
            "conv_head.weight",
            "bn2.weight",
            "classifier.bias",
        ]);
        assert_eq!(layer_groups(&b0), (vec![0, 0, 1, 3, 2, 3, 3, 4], 5));
        let v3 = names(&[
            "features.0.0.weight",
            "features.10.block.0.0.weight",
            "features.2.block.1.1.bias",
            "features.12.0.weight",
            "classifier.3.weight",
        ]);
        assert_eq!(layer_groups(&v3), (vec![0, 2, 1, 3, 4], 5));
        let resnet = names(&[
            "conv1.weight",
            "layer1.0.conv1.weight",
            "layer2.0.bn1.bias",
            "fc.weight",
        ]);
        assert_eq!(layer_groups(&resnet), (vec![0, 1, 2, 3], 4));
    }

    #[test]
    fn classifiers_of_every_family_are_recognised() {
        for name in ["fc.weight", "aux_fc.bias", "classifier.weight", "classifier.3.bias"] {
            assert!(is_classifier(name), "{name}");
        }
        assert!(!is_classifier("features.12.0.weight") && !is_classifier("conv_head.weight"));
    }
}
