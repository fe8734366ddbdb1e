//! Knowledge distillation (Hinton et al. 2015): a trained run's model, the teacher, gives logits
//! for the student's training batches; `loss::distillation` is the term `batch_loss` mixes in.
use crate::error::{Error, Result};
use crate::eval::classifier::{Classifier, preview};
use crate::recipe::Recipe;
use crate::rundir::{ModelSpec, RunDir};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub struct Teacher {
    model: Classifier,
    /// Per-channel `scale` and `shift` taking a batch normalised for the student to the
    /// teacher's normalisation: `x * scale + shift`.
    scale: Tensor,
    shift: Tensor,
}

impl Teacher {
    /// The teacher `loss.distill_teacher` names, None without one: the model of that run dir on
    /// the student's `device` and threads, checked to take and give what the student's `spec`
    /// does. The run's log says where the teacher comes from.
    pub fn load(recipe: &Recipe, spec: &ModelSpec, device: Device, run: &RunDir) -> Result<Option<Teacher>> {
        let Some(dir) = &recipe.loss.distill_teacher else {
            return Ok(None);
        };
        let model = checked(dir, spec, device, recipe.train.threads)?;
        let (scale, shift) = renormalisation(spec, &model.spec, device);
        run.log(&format!(
            "distilling from the teacher in {} (T = {}, weight {})",
            dir.display(),
            recipe.loss.distill_temperature,
            recipe.loss.distill_weight
        ));
        Ok(Some(Teacher { model, scale, shift }))
    }

    /// The teacher's logits for a batch `x` normalised for the student, without gradients.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let x = tch::no_grad(|| x * &self.scale + &self.shift);
        self.model.logits(&x)
    }
}

/// The model of run dir `dir` on `device` with `threads`, refused unless it takes the student's
/// image shape into the student's classes.
fn checked(dir: &Path, spec: &ModelSpec, device: Device, threads: usize) -> Result<Classifier> {
    let device = match device {
        Device::Cpu => "cpu",
        _ => "cuda",
    };
    let overrides = [format!("train.device={device}"), format!("train.threads={threads}")];
    let t = Classifier::from_run_dir(dir, false, &overrides)?;
    let (a, b) = (&t.spec, spec);
    let shape = |s: &ModelSpec| (s.channels, s.height, s.width);
    if a.classes != b.classes || shape(a) != shape(b) {
        return Err(Error::recipe(
            "loss.distill_teacher",
            format!(
                "the teacher in {} takes {:?} images (channels, height, width) into {} classes ({}); this run {:?} into {} ({})",
                dir.display(),
                shape(a),
                a.classes.len(),
                preview(&a.classes),
                shape(b),
                b.classes.len(),
                preview(&b.classes)
            ),
        ));
    }
    Ok(t)
}

/// Per-channel `(scale, shift)`, shaped `[1, C, 1, 1]` on `device`, that bring a batch
/// normalised with `from`'s mean and std to `to`'s: `x * s_from / s_to + (m_from - m_to) / s_to`.
fn renormalisation(from: &ModelSpec, to: &ModelSpec, device: Device) -> (Tensor, Tensor) {
    let c = to.channels;
    let per_channel = |v: &[f64]| -> Vec<f64> { (0..c).map(|i| if v.len() == 1 { v[0] } else { v[i] }).collect() };
    let (ms, ss) = (per_channel(&from.mean), per_channel(&from.std));
    let (mt, st) = (per_channel(&to.mean), per_channel(&to.std));
    let column = |v: Vec<f64>| {
        Tensor::from_slice(&v)
            .to_kind(Kind::Float)
            .view([1, c as i64, 1, 1])
            .to_device(device)
    };
    let scale = column(ss.iter().zip(&st).map(|(s, t)| s / t).collect());
    let shift = column(ms.iter().zip(&mt).zip(&st).map(|((m, n), t)| (m - n) / t).collect());
    (scale, shift)
}
