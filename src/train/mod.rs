//! The training loop: epochs over a seeded order, evaluation each epoch, checkpoints, resume,
//! and a divergence guard. Everything it records goes to the run directory (see `rundir`).

pub mod checkpoint;
pub mod distill;
pub mod ema;

use crate::data::{self, Images};
use crate::error::{Error, Result};
use crate::eval::{Evaluation, Evaluator};
use crate::loader::resident::{DeviceBatch, Resident};
use crate::loader::{self, Normalizer};
use crate::loss;
use crate::model::Net;
use crate::optim::Optimizer;
use crate::recipe::{Loader, Recipe};
use crate::rundir::{self, EpochMetrics, ModelSpec, RunDir, RunResult, Status};
use crate::runtime::{amp, configure_cpu, resolve_device};
use crate::schedule::LrSchedule;
use crate::tensorboard::EventWriter;
use checkpoint::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// The held-out splits a run evaluates.
#[derive(Clone, Copy, Debug)]
enum Split {
    Val,
    Test,
}

/// What to do with an unfinished run that cannot be resumed.
const FROM_THE_START: &str = "delete checkpoint.safetensors and metrics.jsonl to train it from the start (in a \
                              checklist, the trial's folder), or train into another --run-dir";

/// `--resume` of an unfinished run continues the training its checkpoint holds: a recipe given
/// (`--recipe`, `--set`) that trains otherwise than the one saved in the run dir would mix two
/// trainings in one curve and record the second's recipe for both.
fn check_same_training(dir: &RunDir, recipe: &Recipe) -> Result<()> {
    let Ok(saved) = Recipe::load(Some(&dir.file(rundir::RECIPE)), &[]) else {
        // None saved: `model.json` still binds the recipe the model was built from (an error
        // where it does), else nothing holds the recipe given (a run from before either).
        dir.read_spec()?;
        return Ok(());
    };
    match saved.as_training_of(recipe).first_difference(recipe) {
        None => Ok(()),
        Some((key, was, now)) => Err(Error::RunDir {
            path: dir.file(rundir::RECIPE),
            message: format!(
                "--resume: this run has trained with {key} = {was} (the recipe saved here), and the one given sets \
                 {key} = {now}; a resumed run continues the same training: drop the change, or train into another \
                 --run-dir"
            ),
        }),
    }
}

/// Trains `recipe` into `run_dir` (with its external trainer when it has one, see `external`).
/// With `resume`, continues from the run dir's checkpoint (a completed run is returned as it is;
/// an external trainer starts over); without, a run dir that holds a run is refused, untouched.
/// On error, or a panic (a bug, in darkmagic or in a libtorch call), `result.json` records
/// status `failed` and the error before it is returned.
pub fn run(recipe: &Recipe, run_dir: &Path, resume: bool) -> Result<RunResult> {
    let dir = RunDir::create(run_dir)?;
    let _held = dir.hold()?;
    dir.check_logs()?;
    if resume && let Some(r) = dir.read_result()?.filter(|r| r.status == Status::Completed) {
        let saved = Recipe::load(Some(&dir.file(rundir::RECIPE)), &[]).ok();
        if saved.is_some_and(|s| !s.same_training(recipe)) {
            return Err(Error::RunDir {
                path: dir.file(rundir::RECIPE),
                message: "--resume: this run has finished with the recipe saved here, and the one given (--recipe, \
                          --set) differs; a finished run does not train again: train into another run dir"
                    .into(),
            });
        }
        return Ok(r);
    }
    if resume && dir.file(rundir::CHECKPOINT).exists() {
        check_same_training(&dir, recipe)?;
    }
    // (An external trainer keeps no checkpoint here and always starts over.)
    let own_trainer = recipe.external.is_none();
    if resume && own_trainer && !dir.file(rundir::CHECKPOINT).exists() && dir.read_result()?.is_none() {
        // Metrics are written before each checkpoint: one epoch more than the checkpoint is a
        // run killed in between (at the first epoch, none yet); more is a checkpoint lost.
        let epochs = dir.read_metrics()?.len();
        if epochs > 1 {
            return Err(Error::RunDir {
                path: dir.file(rundir::CHECKPOINT),
                message: format!(
                    "is missing, but metrics.jsonl records {epochs} epochs of this run: --resume would start it over \
                     and replace them; restore the checkpoint, or {FROM_THE_START}"
                ),
            });
        }
    }
    if !resume && let Some(what) = dir.holds_run()? {
        // Training again would replace its checkpoint, metrics and result.
        return Err(Error::RunDir {
            path: run_dir.to_path_buf(),
            message: format!(
                "holds {what}; --resume continues it (a finished run is returned as it is), or train into another --run-dir"
            ),
        });
    }
    let _ = std::fs::remove_file(dir.file(rundir::RESULT));
    crate::files::write_atomic(&dir.file(rundir::RECIPE), recipe.to_toml().as_bytes())?;
    let device = resolve_device(recipe.train.device)?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &recipe.external {
        Some(ext) => crate::external::run(recipe, ext, &dir),
        None => Trainer::new(recipe, &dir, device, resume).and_then(|t| t.fit()),
    }))
    .unwrap_or_else(|panic| Err(Error::panic("training", panic.as_ref())));
    outcome.or_else(|e| {
        dir.record_failure(&e.to_string(), "", &format!("{device:?}"))?;
        Err(e)
    })
}

struct Trainer<'a> {
    recipe: &'a Recipe,
    dir: &'a RunDir,
    device: Device,
    train: Arc<Images>,
    /// The training split on the device, when batches are built there (`train.loader`).
    resident: Option<Rc<Resident>>,
    val: Images,
    test: Option<Images>,
    norm: loader::Normalizer,
    spec: ModelSpec,
    /// The last epoch's validation evaluations (`val`, and `val-ema` with an EMA), written to
    /// `eval/` when the run ends.
    last_val: Vec<(&'static str, Evaluation)>,
    vs: VarStore,
    net: Net,
    opt: Optimizer,
    sched: LrSchedule,
    ema: Option<ema::Ema>,
    /// The autocast type (`train.amp` resolved for the device); None = float32.
    amp: Option<Kind>,
    /// Loss scaling, with float16 autocast only.
    scaler: Option<amp::GradScaler>,
    /// The distillation teacher (`loss.distill_teacher`).
    teacher: Option<distill::Teacher>,
    steps_per_epoch: usize,
    progress: Progress,
    metrics: Vec<EpochMetrics>,
    /// TensorBoard's view of the epochs this process trains (an event file in the run dir).
    events: EventWriter,
}

/// The recipe's training, validation and test splits; an error when no validation image is
/// left, since the run's accuracy is measured on them.
fn training_splits(recipe: &Recipe) -> Result<data::Splits> {
    let splits = data::load_splits(recipe)?;
    if splits.val.is_empty() {
        return Err(Error::recipe(
            "data.val_fraction",
            format!(
                "{} leaves no validation image ({} training images); the run's accuracy is measured on them",
                recipe.data.val_fraction,
                splits.train.len()
            ),
        ));
    }
    Ok(splits)
}

/// Loads `model.init` (pretrained weights) into `vs` and logs what it loaded and left.
fn initialise(vs: &VarStore, init: &Path, dir: &RunDir) -> Result<()> {
    let r = crate::model::import::load(vs, init)?;
    dir.log(&format!(
        "initialised {} tensors from {}; re-initialised {:?}; not in the file: {:?}",
        r.loaded,
        init.display(),
        r.reinitialised,
        r.missing
    ));
    Ok(())
}

/// The splits' sizes and image shape, for the log.
fn describe(splits: &data::Splits, classes: usize) -> String {
    let im = &splits.train;
    format!(
        "{classes} classes, train {} / val {} / test {} images of {}x{}x{}",
        im.len(),
        splits.val.len(),
        splits.test.as_ref().map_or(0, Images::len),
        im.channels,
        im.height,
        im.width
    )
}

impl<'a> Trainer<'a> {
    fn new(recipe: &'a Recipe, dir: &'a RunDir, device: Device, resume: bool) -> Result<Self> {
        configure_cpu(recipe.train.threads);
        tch::manual_seed(recipe.seed as i64);
        let splits = training_splits(recipe)?;
        let im = &splits.train;
        let spec = splits.model_spec(recipe)?;
        dir.write_spec(&spec)?;
        let norm = Normalizer::of(&spec);
        let teacher = distill::Teacher::load(recipe, &spec, device, dir)?;
        // Building the teacher drew from libtorch's generator: seed again, so that the student
        // starts exactly as it would without a teacher.
        tch::manual_seed(recipe.seed as i64);
        let classes = spec.classes.len();
        let (vs, net) = crate::model::build(
            &recipe.model,
            im.channels as i64,
            classes as i64,
            device,
            recipe.train.channels_last,
        );
        let mut opt = Optimizer::new(Optimizer::trainable(&vs), &recipe.optim);
        let steps_per_epoch = recipe.steps_per_epoch(im.len());
        let sched = LrSchedule::new(&recipe.schedule, recipe.peak_lr(), recipe.train.epochs, steps_per_epoch);
        sched.check()?;
        let ckpt = dir.file(rundir::CHECKPOINT);
        let resuming = resume && ckpt.exists();
        if let (Some(init), false) = (&recipe.model.init, resuming) {
            initialise(&vs, init, dir)?;
        }
        if recipe.model.whiten_stem && !resuming {
            let first: Vec<usize> = (0..im.len().min(5000)).collect();
            let x = loader::make_batch(im, &first, &norm, loader::Mode::Eval(&recipe.augment))?.images(device);
            dir.log(&crate::model::whiten::whiten_stem(&vs, &x)?);
        }
        let t = &recipe.train;
        let mut ema = (t.ema_decay > 0.0).then(|| ema::Ema::new(&vs, t.ema_decay, t.ema_warmup));
        let amp = amp::resolve(t.amp, device);
        let mut scaler = (amp == Some(Kind::Half)).then(amp::GradScaler::default);
        let (progress, metrics) = if resuming {
            let p =
                checkpoint::load(&ckpt, &vs, &mut opt, ema.as_mut(), scaler.as_mut()).map_err(|e| Error::RunDir {
                    path: ckpt.clone(),
                    message: format!("{e}; it cannot be resumed: {FROM_THE_START}"),
                })?;
            if p.epoch > t.epochs {
                return Err(Error::RunDir {
                    path: ckpt.clone(),
                    message: format!("records epoch {} of a recipe of {} epochs", p.epoch, t.epochs),
                });
            }
            let kept: Vec<EpochMetrics> = dir.read_metrics()?.into_iter().filter(|m| m.epoch <= p.epoch).collect();
            // Metrics are written before each checkpoint, in order: a checkpoint of epoch p has
            // epochs 1 to p beside it (and at most one more), or the two are not of one run.
            if kept.len() != p.epoch {
                return Err(Error::RunDir {
                    path: dir.file(rundir::METRICS),
                    message: format!(
                        "records {} of the {} epochs the checkpoint has trained: the two are not of one run (edited, \
                         deleted or copied from another); {FROM_THE_START}",
                        kept.len(),
                        p.epoch
                    ),
                });
            }
            dir.log(&format!("resumed from epoch {} (step {})", p.epoch, p.step));
            (p, kept)
        } else {
            (Progress { epoch: 0, step: 0 }, Vec::new())
        };
        let n_params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        let resident = match (t.loader, recipe.host_only()) {
            (Loader::Device, _) => Some(Rc::new(Resident::new(&splits.train, &norm, device)?)),
            (Loader::Auto, None) if device.is_cuda() => Some(Rc::new(Resident::new(&splits.train, &norm, device)?)),
            _ => None,
        };
        dir.log(&format!(
            "{}; {n_params} parameters; device {device:?}; channels-last {}; autocast {amp:?}; batches built on the {}",
            describe(&splits, classes),
            t.channels_last,
            if resident.is_some() { "device" } else { "host" }
        ));
        Ok(Trainer {
            recipe,
            dir,
            device,
            train: Arc::new(splits.train),
            resident,
            val: splits.val,
            test: splits.test,
            norm,
            spec,
            last_val: Vec::new(),
            vs,
            net,
            opt,
            sched,
            ema,
            amp,
            scaler,
            teacher,
            steps_per_epoch,
            progress,
            metrics,
            events: EventWriter::create(&dir.path)?,
        })
    }

    fn fit(mut self) -> Result<RunResult> {
        self.dir.write_metrics(&self.metrics)?;
        for epoch in self.progress.epoch + 1..=self.recipe.train.epochs {
            let start = Instant::now();
            let Some((train_loss, train_acc)) = self.train_epoch(epoch)? else {
                return self.finish(Status::Diverged, None);
            };
            let train_secs = start.elapsed().as_secs_f64();
            let (val, val_tta) = self.evaluate(&self.val)?;
            let val_ema = self.evaluate_ema(Split::Val)?;
            let m = EpochMetrics {
                epoch,
                step: self.progress.step,
                lr: self.sched.lr(self.progress.step.saturating_sub(1)),
                weight_decay: Some(
                    self.sched
                        .weight_decay(self.progress.step.saturating_sub(1), self.recipe.optim.weight_decay),
                ),
                train_loss,
                train_acc,
                val_loss: val.loss(),
                val_acc: val.top1(),
                val_top5: val.top5(),
                val_acc_ema: val_ema.as_ref().map(Evaluation::top1),
                val_acc_tta: val_tta.as_ref().map(Evaluation::top1),
                images_per_sec: (self.steps_per_epoch * self.recipe.train.batch_size) as f64 / train_secs,
                seconds: start.elapsed().as_secs_f64(),
            };
            self.dir.log(&serde_json::to_string(&m).expect("metrics serialize"));
            self.events.scalars(m.epoch as i64, &m.scalars())?;
            self.metrics.push(m);
            self.last_val = std::iter::once(("val", val))
                .chain(val_ema.map(|e| ("val-ema", e)))
                .chain(val_tta.map(|e| ("val-tta", e)))
                .collect();
            self.progress.epoch = epoch;
            // Metrics first: a kill between the two writes leaves the older checkpoint, and the
            // resumed run recomputes this epoch and drops its line; the other order would lose it.
            self.dir.write_metrics(&self.metrics)?;
            let ckpt = self.dir.file(rundir::CHECKPOINT);
            checkpoint::save(
                &ckpt,
                &self.vs,
                &self.opt,
                self.ema.as_ref(),
                self.scaler.as_ref(),
                self.progress,
            )?;
            if let Some(reason) = self.far_below_reference(epoch) {
                self.dir.log(&format!("stopped: {reason}"));
                return self.finish(Status::Stopped, Some(reason));
            }
        }
        self.finish(Status::Completed, None)
    }

    /// Why this run should stop early, if it should: from half its epochs on, its validation
    /// accuracy at `epoch` is more than `train.stop_margin` pp below the reference run's at the
    /// same epoch (`train.stop_reference`). No reference, or none for this epoch: no stop.
    fn far_below_reference(&self, epoch: usize) -> Option<String> {
        let t = &self.recipe.train;
        let reference = t.stop_reference.as_ref()?;
        if 2 * epoch < t.epochs {
            return None;
        }
        let theirs = RunDir::open(reference)
            .read_metrics()
            .ok()?
            .into_iter()
            .find(|m| m.epoch == epoch)?
            .val_acc;
        let ours = self.metrics.last()?.val_acc;
        (100.0 * (theirs - ours) > t.stop_margin).then(|| {
            format!(
                "stopped at epoch {epoch}: validation accuracy {:.2}% is more than {} pp below the reference's {:.2}% ({})",
                100.0 * ours,
                t.stop_margin,
                100.0 * theirs,
                reference.display()
            )
        })
    }

    /// One epoch of training; None if the loss diverged. Each optimizer step sums the gradients
    /// of `train.accumulate` micro-batches, each loss scaled by 1/accumulate.
    fn train_epoch(&mut self, epoch: usize) -> Result<Option<(f64, f64)>> {
        let r = self.recipe;
        let k = r.train.accumulate;
        let order = loader::TrainOrder {
            seed: r.seed,
            epoch: epoch as u64,
            batch_size: r.train.batch_size / k,
            accumulate: k,
            augment: r.augment.clone(),
            classes: self.spec.classes.len(),
            label_smoothing: r.loss.label_smoothing,
        };
        let frozen = epoch <= r.train.freeze_epochs;
        self.opt.freeze(|name| frozen && !crate::model::is_classifier(name));
        let bar = progress_bar(self.steps_per_epoch, epoch, r.train.epochs);
        let (mut loss_sum, mut correct, mut seen, mut pending) = (0.0, 0i64, 0usize, 0usize);
        self.opt.zero_grad();
        let batches: Box<dyn Iterator<Item = Result<DeviceBatch>>> = match self.resident.clone() {
            Some(r) => {
                let order = order.clone();
                let all = order.batches(self.train.len());
                Box::new(
                    all.into_iter()
                        .enumerate()
                        .map(move |(b, idx)| Ok(r.train_batch(&idx, &order, b))),
                )
            }
            None => {
                let device = self.device;
                let host = loader::train_epoch(self.train.clone(), self.norm.clone(), order, 2);
                Box::new(host.map(move |b| b.map(|b| b.to_device(device))))
            }
        };
        for batch in batches {
            let DeviceBatch {
                images,
                labels: y,
                targets,
            } = batch?;
            let x = self.input(images);
            let teacher = self.teacher.as_ref().map(|t| t.logits(&x));
            let (loss, logits) = amp::autocast(self.amp, self.device, || {
                batch_loss(&self.net, &x, &y, targets.as_ref(), teacher.as_ref(), r)
            });
            let loss_value = loss.double_value(&[]);
            if !loss_value.is_finite() {
                bar.abandon_with_message("diverged");
                self.dir
                    .log(&format!("diverged at step {}: loss {loss_value}", self.progress.step));
                return Ok(None);
            }
            match &self.scaler {
                Some(s) => scaled_backward(&s.scale_loss(&loss), k),
                None => scaled_backward(&loss, k),
            }
            pending += 1;
            if pending == k {
                self.optimizer_step();
                pending = 0;
                bar.inc(1);
            }
            let n = y.size()[0] as usize;
            loss_sum += loss_value * n as f64;
            correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
            seen += n;
            bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
        }
        if pending > 0 {
            // A data set smaller than one effective batch: step on what was accumulated.
            self.optimizer_step();
        }
        bar.finish_and_clear();
        Ok(Some((loss_sum / seen as f64, correct as f64 / seen as f64)))
    }

    /// One optimizer step with this step's LR and weight decay (after gradient clipping, with
    /// `train.clip_grad`), then the EMA update. With loss
    /// scaling, the gradients are unscaled first and a step with an inf/NaN gradient is skipped
    /// (the schedule still advances), as `GradScaler.step`.
    fn optimizer_step(&mut self) {
        let (step, wd) = (self.progress.step, self.recipe.optim.weight_decay);
        let finite = match &mut self.scaler {
            Some(s) => {
                let finite = s.unscale(&self.opt.grads());
                s.update(finite);
                finite
            }
            None => true,
        };
        if finite {
            let t = &self.recipe.train;
            if t.clip_grad > 0.0 {
                self.opt.clip_grads(t.clip_mode, t.clip_grad);
            }
            self.opt.step(self.sched.lr(step), self.sched.weight_decay(step, wd));
        }
        self.opt.zero_grad();
        if let Some(e) = &mut self.ema {
            e.update(&self.vs);
        }
        self.progress.step += 1;
    }

    /// A batch of images in the memory order the model's weights use.
    fn input(&self, x: Tensor) -> Tensor {
        crate::model::in_memory_order(x, self.recipe.train.channels_last)
    }

    /// The result of the EMA weights on a split, when the recipe keeps an EMA.
    fn evaluate_ema(&mut self, split: Split) -> Result<Option<Evaluation>> {
        let Some(mut ema) = self.ema.take() else {
            return Ok(None);
        };
        ema.swap(&self.vs);
        let images = match split {
            Split::Val => Some(&self.val),
            Split::Test => self.test.as_ref(),
        };
        // The EMA weights are scored without test-time augmentation: its views would be thrown
        // away (up to 6 forward passes of the split where 1 is kept).
        let evaluator = Evaluator::new(&self.net, &self.norm, self.recipe, self.device, self.amp).without_tta();
        let classes = self.spec.classes.len();
        let e = images
            .map(|i| evaluator.evaluate(i, classes).map(|(plain, _)| plain))
            .transpose();
        ema.swap(&self.vs);
        self.ema = Some(ema);
        e
    }

    /// Plain cross-entropy (no smoothing), top-1 and, with more than 5 classes, top-5 accuracy;
    /// with `augment.tta_flip` or `tta_translate`, also of the test-time-augmented scores.
    fn evaluate(&self, images: &Images) -> Result<(Evaluation, Option<Evaluation>)> {
        let evaluator = Evaluator::new(&self.net, &self.norm, self.recipe, self.device, self.amp);
        evaluator.evaluate(images, self.spec.classes.len())
    }

    fn finish(mut self, status: Status, note: Option<String>) -> Result<RunResult> {
        self.dir.write_metrics(&self.metrics)?;
        for (split, e) in &self.last_val {
            e.write(&self.dir.file(rundir::EVAL), split, &self.spec.classes, &self.val)?;
        }
        let start = Instant::now();
        let (test, test_tta, test_ema) = match (&self.test, status) {
            (Some(t), Status::Completed) => {
                let (plain, tta) = self.evaluate(t)?;
                (Some(plain), tta, self.evaluate_ema(Split::Test)?)
            }
            _ => (None, None, None),
        };
        let wall = self.metrics.iter().map(|m| m.seconds).sum::<f64>() + start.elapsed().as_secs_f64();
        let mut r = RunResult::from_metrics(
            status,
            &self.metrics,
            wall,
            format!("{:?}", self.device),
            self.val.len(),
        );
        r.final_val_acc_ema = self.metrics.last().and_then(|m| m.val_acc_ema);
        r.final_val_acc_tta = self.metrics.last().and_then(|m| m.val_acc_tta);
        r.error = note;
        r.test_acc = test.as_ref().map(Evaluation::top1);
        r.test_acc_tta = test_tta.as_ref().map(Evaluation::top1);
        r.test_acc_ema = test_ema.as_ref().map(Evaluation::top1);
        r.test_top5 = test.as_ref().and_then(Evaluation::top5);
        r.test_images = Some(self.test.as_ref().map_or(0, Images::len));
        self.dir.log(&format!(
            "{status:?}: {}",
            serde_json::to_string(&r).expect("result serializes")
        ));
        self.dir.write_result(&r)?;
        Ok(r)
    }
}

/// The training loss of one batch and its logits: cross-entropy (or, with `loss.bce`, binary
/// cross-entropy) against the labels with label smoothing (or against the soft targets of a
/// mixed batch), mixed with the distillation term
/// when a teacher's logits are given (`(1 - a) * that + a * T^2 * KL`), plus `loss.aux_weight`
/// times the auxiliary head's loss when the model has one.
pub fn batch_loss(
    net: &Net,
    x: &Tensor,
    y: &Tensor,
    targets: Option<&Tensor>,
    teacher: Option<&Tensor>,
    r: &Recipe,
) -> (Tensor, Tensor) {
    let (logits, aux) = net.forward_with_aux(x, true);
    let (eps, thresh) = (r.loss.label_smoothing, r.loss.bce_target_thresh);
    let ce = |l: &Tensor| match (targets, r.loss.bce) {
        (Some(t), false) => loss::soft_cross_entropy(l, t),
        (None, false) => loss::cross_entropy(l, y, eps),
        (Some(t), true) => loss::binary_cross_entropy(l, loss::BceTargets::Soft(t), thresh),
        (None, true) => loss::binary_cross_entropy(l, loss::BceTargets::Labels(y, eps), thresh),
    };
    let main = match teacher {
        Some(t) => {
            let a = r.loss.distill_weight;
            ce(&logits) * (1.0 - a) + loss::distillation(&logits, t, r.loss.distill_temperature) * a
        }
        None => ce(&logits),
    };
    let total = match aux {
        Some(a) => main + ce(&a) * r.loss.aux_weight,
        None => main,
    };
    (total, logits)
}

/// Back-propagates one of `k` accumulated micro-batch losses: the gradients of k micro-batches
/// of size b then add up to those of one batch of size k*b (mean losses).
pub fn scaled_backward(loss: &Tensor, k: usize) {
    if k == 1 {
        loss.backward()
    } else {
        (loss / k as f64).backward()
    }
}

/// A progress bar on stderr; indicatif hides it when stderr is not a terminal.
fn progress_bar(len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, eta {eta})")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::recipe::ModelConfig;
    use tch::nn::{self, Module};

    #[test]
    fn auxiliary_head_adds_exactly_weight_times_its_loss() {
        let vs = VarStore::new(Device::Cpu);
        let mut r = Recipe {
            model: ModelConfig {
                aux_stage: Some(1),
                ..ModelConfig::default()
            },
            ..Recipe::default()
        };
        let net = Net::new(&vs.root(), &r.model, 1, 10);
        let x = Tensor::randn([8, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 7]);
        r.loss.aux_weight = 0.4;
        let (with_aux, logits) = batch_loss(&net, &x, &y, None, None, &r);
        let (_, aux) = net.forward_with_aux(&x, true);
        let main = loss::cross_entropy(&logits, &y, r.loss.label_smoothing).double_value(&[]);
        let aux = loss::cross_entropy(&aux.unwrap(), &y, r.loss.label_smoothing).double_value(&[]);
        let got = with_aux.double_value(&[]);
        assert!((got - (main + 0.4 * aux)).abs() < 1e-5, "{got} vs {main} + 0.4 * {aux}");
    }

    #[test]
    fn accumulating_k_micro_batches_equals_one_batch_k_times_larger() {
        let vs = VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "l", 5, 3, Default::default());
        let x = Tensor::randn([12, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
        let grads = || -> Vec<Tensor> { vs.trainable_variables().iter().map(|v| v.grad().copy()).collect() };
        let zero = || {
            for mut v in vs.trainable_variables() {
                v.zero_grad();
            }
        };
        scaled_backward(&loss::cross_entropy(&lin.forward(&x), &y, 0.1), 1);
        let whole = grads();
        zero();
        for k in 0..3 {
            let (xs, ys) = (x.narrow(0, 4 * k, 4), y.narrow(0, 4 * k, 4));
            scaled_backward(&loss::cross_entropy(&lin.forward(&xs), &ys, 0.1), 3);
        }
        for (a, b) in whole.iter().zip(grads()) {
            assert!(a.allclose(&b, 1e-5, 1e-6, false), "{a:?} vs {b:?}");
        }
    }
}
