//! Weight import: torchvision's ResNet-18, saved from Python by `scripts/golden/torchvision_resnet.py`,
//! loaded into darkmagic's ResNet-18 gives the same logits.
mod common;
use darkmagic::model::{Net, import};
use darkmagic::recipe::{Activation, Arch, ModelConfig};
use std::collections::HashMap;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

#[test]
fn torchvision_resnet18_weights_give_torchvisions_outputs() {
    let out = common::golden("torchvision_resnet.py", "torchvision-resnet18", &["resnet18"]);

    let vs = VarStore::new(Device::Cpu);
    let cfg = ModelConfig {
        arch: Arch::Resnet18,
        se: false,
        activation: Activation::Relu,
        downscale_activation: Activation::Relu,
        ..ModelConfig::default()
    };
    let net = Net::new(&vs.root(), &cfg, 3, 10);
    let report = import::load(&vs, &out.join("weights.safetensors")).unwrap();
    assert!(
        report.missing.is_empty() && report.reinitialised.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.loaded, vs.variables().len());

    let io: HashMap<String, Tensor> = Tensor::read_safetensors(out.join("io.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let got = tch::no_grad(|| net.forward_t(&io["input"], false));
    let diff = (&got - &io["output"]).abs().max().double_value(&[]);
    eprintln!("max abs difference to torchvision: {diff:e}");
    assert!(diff < 1e-4, "max |darkmagic - torchvision| = {diff}");
    let _ = std::fs::remove_dir_all(out);
}
