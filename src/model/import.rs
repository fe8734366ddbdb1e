//! Initial weights from a file (pretraining): a darkmagic checkpoint (`model.*` tensors) or a
//! safetensors state dict with torchvision's parameter names.
//!
//! darkmagic's ResNets use torchvision's names, so the mapping is one to one: `conv1`, `bn1`,
//! `layerX.Y.convN`, `layerX.Y.bnN` (`weight`, `bias`, `running_mean`, `running_var`),
//! `layerX.Y.downsample.0` / `.1`, `fc`. torchvision's `num_batches_tracked` is ignored. A
//! classifier (`fc`, `aux_fc`) whose shape differs (another class count) keeps its fresh
//! initialisation; layers the file lacks (e.g. SE modules when loading torchvision weights) too.
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Tensor, nn::VarStore};

/// What [`load`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    pub loaded: usize,
    /// Classifier tensors left at their initialisation because the shapes differ.
    pub reinitialised: Vec<String>,
    /// Model tensors the file does not have.
    pub missing: Vec<String>,
}

/// Copies the matching tensors of `path` into `vs`.
pub fn load(vs: &VarStore, path: &Path) -> Result<ImportReport> {
    let bad = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let all: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?
        .into_iter()
        .collect();
    let is_checkpoint = all.keys().any(|k| k.starts_with("model."));
    let tensors: HashMap<&str, &Tensor> = all
        .iter()
        .filter_map(|(k, v)| {
            if is_checkpoint {
                k.strip_prefix("model.").map(|s| (s, v))
            } else {
                Some((k.as_str(), v))
            }
        })
        .collect();
    let mut report = ImportReport::default();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, mut var) in vars {
            match tensors.get(name.as_str()) {
                Some(t) if t.size() == var.size() => {
                    var.copy_(&t.to_kind(var.kind()).to_device(var.device()));
                    report.loaded += 1;
                }
                Some(_) if name.starts_with("fc.") || name.starts_with("aux_fc.") => report.reinitialised.push(name),
                Some(t) => {
                    return Err(bad(format!(
                        "tensor `{name}` has shape {:?}, the model {:?}",
                        t.size(),
                        var.size()
                    )));
                }
                None => report.missing.push(name),
            }
        }
        Ok(())
    })?;
    if report.loaded == 0 {
        return Err(bad(
            "no tensor matches the model (expected torchvision or darkmagic parameter names)".into(),
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Net;
    use crate::recipe::ModelConfig;
    use tch::{Device, nn::VarStore};

    #[test]
    fn checkpoint_weights_load_and_a_new_classifier_is_reinitialised() {
        let dir = crate::testutil::tempdir("import");
        let cfg = ModelConfig {
            se: false,
            ..ModelConfig::default()
        };
        let src = VarStore::new(Device::Cpu);
        let _a = Net::new(&src.root(), &cfg, 1, 10);
        let named: Vec<(String, Tensor)> = src
            .variables()
            .into_iter()
            .map(|(k, v)| (format!("model.{k}"), v))
            .collect();
        let path = dir.join("ckpt.safetensors");
        Tensor::write_safetensors(&named, &path).unwrap();

        let dst = VarStore::new(Device::Cpu);
        let _b = Net::new(&dst.root(), &cfg, 1, 3);
        let r = load(&dst, &path).unwrap();
        assert_eq!(r.reinitialised, vec!["fc.bias", "fc.weight"]);
        assert!(r.missing.is_empty());
        let (s, d) = (src.variables(), dst.variables());
        assert!(s["layer2.0.conv1.weight"].equal(&d["layer2.0.conv1.weight"]));
        assert!(s["layer3.2.bn2.running_var"].equal(&d["layer3.2.bn2.running_var"]));
        assert_eq!(d["fc.weight"].size(), vec![3, 64]);
    }

    #[test]
    fn wrong_shapes_and_foreign_files_are_named() {
        let dir = crate::testutil::tempdir("import-bad");
        let path = dir.join("w.safetensors");
        Tensor::write_safetensors(
            &[("conv1.weight", Tensor::zeros([2, 2], (tch::Kind::Float, Device::Cpu)))],
            &path,
        )
        .unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _n = Net::new(&vs.root(), &ModelConfig::default(), 1, 10);
        let e = load(&vs, &path).unwrap_err().to_string();
        assert!(
            e.contains("w.safetensors") && e.contains("conv1.weight") && e.contains("[2, 2]"),
            "{e}"
        );
        Tensor::write_safetensors(&[("other", Tensor::zeros([2], (tch::Kind::Float, Device::Cpu)))], &path).unwrap();
        let e = load(&vs, &path).unwrap_err().to_string();
        assert!(e.contains("no tensor matches"), "{e}");
    }
}
