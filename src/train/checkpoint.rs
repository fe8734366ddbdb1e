//! Checkpoints: the model's variables (`model.*`), the optimizer state (`optim.*`), the EMA
//! weights when kept (`ema.*`, beside the raw weights), the float16 loss scale when kept
//! (`amp.*`) and the
//! progress (`meta.epoch`, `meta.step`) in one safetensors file, written atomically.
use super::ema::Ema;
use crate::error::{Error, Result};
use crate::files::temp_path;
use crate::optim::Optimizer;
use crate::runtime::amp::GradScaler;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor, nn::VarStore};

/// Where training stands when the checkpoint is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
}

/// Writes the checkpoint. Tensors are stored contiguous (NCHW for channels-last weights), so the
/// file does not depend on `train.channels_last`.
pub fn save(
    path: &Path,
    vs: &VarStore,
    opt: &Optimizer,
    ema: Option<&Ema>,
    scaler: Option<&GradScaler>,
    progress: Progress,
) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect();
    named.extend(opt.state().into_iter().map(|(k, v)| (format!("optim.{k}"), v)));
    named.extend(ema.map(Ema::state).unwrap_or_default());
    named.extend(scaler.map(GradScaler::state).unwrap_or_default());
    named.push(("meta.epoch".into(), Tensor::from(progress.epoch as i64)));
    named.push(("meta.step".into(), Tensor::from(progress.step as i64)));
    let named: Vec<(String, Tensor)> = named
        .into_iter()
        .map(|(k, v)| (k, v.to_device(Device::Cpu).contiguous()))
        .collect();
    let tmp = temp_path(path);
    Tensor::write_safetensors(&named, &tmp).map_err(|e| Error::Torch(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Loads a checkpoint into `vs`, `opt`, `ema` and `scaler`; returns the progress it records.
pub fn load(
    path: &Path,
    vs: &VarStore,
    opt: &mut Optimizer,
    ema: Option<&mut Ema>,
    scaler: Option<&mut GradScaler>,
) -> Result<Progress> {
    let bad = |m: String| Error::RunDir {
        path: path.to_path_buf(),
        message: m,
    };
    // A FIFO would block the read and /dev/zero fill memory: a regular file or nothing.
    crate::files::check_regular(path, u64::MAX)?;
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| bad(format!("unreadable checkpoint: {e}")))?
        .into_iter()
        .collect();
    let mut optim = HashMap::new();
    for (k, v) in &tensors {
        if let Some(rest) = k.strip_prefix("optim.") {
            optim.insert(rest.to_string(), v.to_device(vs.device()));
        }
    }
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let saved = tensors
                .get(&format!("model.{name}"))
                .ok_or_else(|| bad(format!("variable `{name}` missing")))?;
            if saved.size() != var.size() {
                return Err(bad(format!(
                    "variable `{name}` has shape {:?}, the model {:?}",
                    saved.size(),
                    var.size()
                )));
            }
            var.copy_(saved);
        }
        Ok(())
    })?;
    opt.load_state(&optim).map_err(bad)?;
    if let Some(e) = ema {
        let on_device: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.to_device(vs.device())))
            .collect();
        e.load_state(&on_device).map_err(|m| bad(format!("EMA state: {m}")))?;
    }
    if let Some(s) = scaler {
        *s = GradScaler::load_state(&tensors);
    }
    let meta = |k: &str| {
        let value = tensors
            .get(k)
            .filter(|t| t.numel() == 1)
            .map(|t| t.int64_value(&[]))
            .ok_or_else(|| bad(format!("`{k}` missing (expected one integer)")))?;
        usize::try_from(value).map_err(|_| bad(format!("`{k}` = {value}: expected a count >= 0")))
    };
    Ok(Progress {
        epoch: meta("meta.epoch")?,
        step: meta("meta.step")?,
    })
}
