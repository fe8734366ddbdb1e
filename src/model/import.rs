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
    /// Classifier tensors left at their initialisation because the shapes differ, with the
    /// file's shape.
    pub reinitialised: Vec<(String, Vec<i64>)>,
    /// Model tensors the file does not have.
    pub missing: Vec<String>,
}

/// Copies the matching tensors of `path` into `vs`: the `model.*` tensors of a darkmagic
/// checkpoint, or every tensor of a state dict.
pub fn load(vs: &VarStore, path: &Path) -> Result<ImportReport> {
    let all = read(path)?;
    copy_matching(vs, path, &all, checkpoint_prefix(&all))
}

/// `model.` for a darkmagic checkpoint, else (a state dict) no prefix.
fn checkpoint_prefix(all: &HashMap<String, Tensor>) -> &'static str {
    if all.keys().any(|k| k.starts_with("model.")) {
        "model."
    } else {
        ""
    }
}

/// Copies every variable of `vs` from `path`, where its name is `prefix` + the variable's
/// name (`model.` or `ema.` in a checkpoint; None: `model.` in a checkpoint, nothing in a state
/// dict): the weights of a trained model, where nothing may stay at its initialisation. A
/// classifier of another shape is a class-count mismatch; a missing tensor another architecture.
pub fn load_exact(vs: &VarStore, path: &Path, prefix: Option<&str>) -> Result<()> {
    let all = read(path)?;
    let prefix = prefix.unwrap_or_else(|| checkpoint_prefix(&all));
    if !prefix.is_empty() && !all.keys().any(|k| k.starts_with(prefix)) {
        return Err(bad(path, format!("holds no `{prefix}*` tensors")));
    }
    let r = copy_matching(vs, path, &all, prefix)?;
    let classes = |shape: &[i64]| shape.first().copied().unwrap_or(0);
    if let Some((name, shape)) = r.reinitialised.first() {
        let want = vs.variables()[name.as_str()].size();
        return Err(bad(
            path,
            format!(
                "class count: its classifier `{prefix}{name}` has shape {shape:?} ({} classes); the model has {} classes (shape {want:?})",
                classes(shape),
                classes(&want)
            ),
        ));
    }
    let variables = vs.variables();
    let mut unused: Vec<&str> = all
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter(|k| !variables.contains_key(*k) && !k.ends_with("num_batches_tracked"))
        .collect();
    unused.sort();
    if !unused.is_empty() {
        // A deeper network's weights would load into a shallower one and evaluate truncated.
        return Err(bad(
            path,
            format!(
                "holds {} tensors the model does not have ({}); expected the architecture and options of the recipe (model.arch, model.se, ...)",
                unused.len(),
                unused
                    .iter()
                    .take(4)
                    .map(|m| format!("`{prefix}{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if !r.missing.is_empty() {
        return Err(bad(
            path,
            format!(
                "lacks {} of the model's tensors ({}); expected the architecture and options of the recipe (model.arch, model.se, ...)",
                r.missing.len(),
                r.missing
                    .iter()
                    .take(4)
                    .map(|m| format!("`{prefix}{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

fn bad(path: &Path, message: String) -> Error {
    Error::Weights {
        path: path.to_path_buf(),
        message,
    }
}

/// Every tensor of a safetensors file, by name.
fn read(path: &Path) -> Result<HashMap<String, Tensor>> {
    // libtorch would block on a FIFO and read /dev/zero until memory runs out.
    crate::files::check_regular(path, crate::data::MAX_FILE_BYTES)?;
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?
        .into_iter()
        .collect())
}

/// Weights are floating-point numbers, every one finite: an integer tensor would be cast
/// silently (the model then scored every class alike), a NaN or infinity would give NaN
/// probabilities with a class still reported.
fn check_values(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    if !t.is_floating_point() {
        return Err(bad(
            path,
            format!(
                "tensor `{name}` holds {:?} values; expected floating-point weights",
                t.kind()
            ),
        ));
    }
    if !bool::try_from(t.isfinite().all()).unwrap_or(false) {
        return Err(bad(path, format!("tensor `{name}` holds NaN or infinite values")));
    }
    Ok(())
}

/// Copies the tensors of `all` named `prefix` + a variable's name into the variables of `vs`.
fn copy_matching(vs: &VarStore, path: &Path, all: &HashMap<String, Tensor>, prefix: &str) -> Result<ImportReport> {
    let tensors: HashMap<&str, &Tensor> = all
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s, v)))
        .collect();
    let mut report = ImportReport::default();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, mut var) in vars {
            match tensors.get(name.as_str()) {
                Some(t) if t.size() == var.size() => {
                    check_values(path, &format!("{prefix}{name}"), t)?;
                    var.copy_(&t.to_kind(var.kind()).to_device(var.device()));
                    report.loaded += 1;
                }
                Some(t) if super::is_classifier(&name) => report.reinitialised.push((name, t.size())),
                Some(t) => {
                    return Err(bad(
                        path,
                        format!(
                            "tensor `{prefix}{name}` has shape {:?}, the model {:?}",
                            t.size(),
                            var.size()
                        ),
                    ));
                }
                None => report.missing.push(name),
            }
        }
        Ok(())
    })?;
    if report.loaded == 0 {
        return Err(bad(
            path,
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
        assert_eq!(
            r.reinitialised,
            vec![
                ("fc.bias".to_string(), vec![10]),
                ("fc.weight".to_string(), vec![10, 64])
            ]
        );
        let e = load_exact(&dst, &path, None).unwrap_err().to_string();
        assert!(
            e.contains("ckpt.safetensors")
                && e.contains("class count")
                && e.contains("(10 classes); the model has 3 classes"),
            "{e}"
        );
        assert!(r.missing.is_empty());
        let (s, d) = (src.variables(), dst.variables());
        assert!(s["layer2.0.conv1.weight"].equal(&d["layer2.0.conv1.weight"]));
        assert!(s["layer3.2.bn2.running_var"].equal(&d["layer3.2.bn2.running_var"]));
        assert_eq!(d["fc.weight"].size(), vec![3, 64]);
    }

    /// A deeper ResNet's checkpoint has every tensor of a shallower one and more: loading it
    /// exactly must refuse the extra blocks, not evaluate a truncated network.
    #[test]
    fn exact_loading_refuses_tensors_the_model_does_not_have() {
        let dir = crate::testutil::tempdir("import-deeper");
        let deeper = ModelConfig {
            arch: crate::recipe::Arch::Resnet32,
            ..ModelConfig::default()
        };
        let src = VarStore::new(Device::Cpu);
        let _a = Net::new(&src.root(), &deeper, 1, 10);
        let named: Vec<(String, Tensor)> = src
            .variables()
            .into_iter()
            .map(|(k, v)| (format!("model.{k}"), v))
            .collect();
        let path = dir.join("resnet32.safetensors");
        Tensor::write_safetensors(&named, &path).unwrap();
        let dst = VarStore::new(Device::Cpu);
        let _b = Net::new(&dst.root(), &ModelConfig::default(), 1, 10);
        let e = load_exact(&dst, &path, None).unwrap_err().to_string();
        assert!(
            e.contains("resnet32.safetensors")
                && e.contains("tensors the model does not have")
                && e.contains("`model.layer1.3."),
            "{e}"
        );
    }

    #[test]
    fn integer_and_non_finite_weights_are_refused() {
        let dir = crate::testutil::tempdir("import-values");
        let src = VarStore::new(Device::Cpu);
        let _a = Net::new(&src.root(), &ModelConfig::default(), 1, 10);
        let write = |name: &str, edit: &dyn Fn(&str, Tensor) -> Tensor| {
            let named: Vec<(String, Tensor)> = src
                .variables()
                .into_iter()
                .map(|(k, v)| (format!("model.{k}"), edit(&k, v)))
                .collect();
            let path = dir.join(name);
            Tensor::write_safetensors(&named, &path).unwrap();
            path
        };
        let dst = VarStore::new(Device::Cpu);
        let _b = Net::new(&dst.root(), &ModelConfig::default(), 1, 10);
        let ints = write("ints.safetensors", &|k, v| {
            if k == "fc.weight" {
                v.to_kind(tch::Kind::Int64)
            } else {
                v
            }
        });
        let e = load_exact(&dst, &ints, None).unwrap_err().to_string();
        assert!(e.contains("`model.fc.weight` holds Int64 values"), "{e}");
        let nan = write("nan.safetensors", &|k, v| {
            if k == "fc.bias" { v.fill(f64::NAN) } else { v }
        });
        let e = load_exact(&dst, &nan, None).unwrap_err().to_string();
        assert!(e.contains("`model.fc.bias` holds NaN or infinite values"), "{e}");
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
