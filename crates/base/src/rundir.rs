//! The run directory, the only record of a training run: reports, resumes and checklists read nothing else. Every file is written
//! atomically (temporary file, fsync, rename), so a killed run never leaves a half-written file:
//! - `recipe.toml`: the resolved recipe,
//! - `metrics.jsonl`: one [`EpochMetrics`] per line,
//! - `result.json`: the [`RunResult`],
//! - `checkpoint.safetensors`: model, optimizer and progress (see `checkpoint`),
//! - `model.json`: the [`ModelSpec`], what the model takes and gives (for `eval` and `predict`),
//! - `train.log`: human-readable log lines (appended),
//! - `eval/`: what `darkmagic eval` wrote (per split: JSON, per-class and confusion CSVs).
use crate::error::{Error, Result};
use crate::files::write_atomic;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RECIPE: &str = "recipe.toml";
pub const METRICS: &str = "metrics.jsonl";
pub const RESULT: &str = "result.json";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const LOG: &str = "train.log";
/// How much of the end of `train.log` a report reads.
pub const LOG_TAIL_BYTES: u64 = 64 << 10;
pub const MODEL: &str = "model.json";
/// The folder `darkmagic eval` writes into by default.
pub const EVAL: &str = "eval";

/// Whether `name`, a file or folder directly in a run dir, is one darkmagic writes there: its
/// records, logs, checkpoint, evaluation folder and event files, and their temporary siblings.
/// An external trainer's metric file may not be one (the trainer would overwrite the record).
pub fn is_own(name: &str) -> bool {
    const OWN: [&str; 10] = [
        RECIPE,
        METRICS,
        RESULT,
        CHECKPOINT,
        LOG,
        MODEL,
        EVAL,
        "trial.json",
        "stdout.log",
        // The Ray executor's copy of the job's logs.
        "ray.log",
    ];
    OWN.iter()
        .any(|own| name == *own || name.starts_with(&format!("{own}.tmp")))
        || name.starts_with("events.out.tfevents")
}

/// Whether `path` names one of `run_dir`'s own files ([`is_own`]), however it is spelled
/// (relative, through links): a command's output there would overwrite the run's record.
pub fn is_own_path(run_dir: &Path, path: &Path) -> bool {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    match (parent.canonicalize(), run_dir.canonicalize()) {
        (Ok(p), Ok(r)) => p == r && is_own(name),
        _ => false,
    }
}

/// The largest run-dir record darkmagic reads back (metrics.jsonl of 100,000 epochs is 30 MB).
pub const MAX_RECORD_BYTES: u64 = 256 << 20;

/// The text of a record file darkmagic wrote; None when it does not exist. One that is not a
/// regular file, larger than `MAX_RECORD_BYTES` or not UTF-8 is an error naming it.
fn read_record(path: &Path) -> Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::files::read_regular(path, MAX_RECORD_BYTES)?;
    String::from_utf8(bytes).map(Some).map_err(|e| Error::RunDir {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text: {e}"),
    })
}

/// Metrics of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Weight decay of the epoch's last step (the schedule's, `schedule.wd_policy`); None for an
    /// external trainer and in records written before it was recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub weight_decay: Option<f64>,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    /// Top-5 accuracy, for datasets with more than 5 classes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_top5: Option<f64>,
    /// Validation accuracy of the EMA weights, when `train.ema_decay` > 0.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_acc_ema: Option<f64>,
    /// Validation accuracy with test-time augmentation, when `augment.tta_flip`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_acc_tta: Option<f64>,
    pub images_per_sec: f64,
    /// Wall seconds of the epoch (training and evaluation).
    pub seconds: f64,
}

impl EpochMetrics {
    /// The epoch's figures as TensorBoard scalars (tag, value): the ones the run recorded.
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            ("train/loss", self.train_loss),
            ("train/accuracy", self.train_acc),
            ("val/loss", self.val_loss),
            ("val/accuracy", self.val_acc),
            ("lr", self.lr),
            ("images_per_sec", self.images_per_sec),
        ];
        let optional = [
            ("weight_decay", self.weight_decay),
            ("val/top5", self.val_top5),
            ("val/accuracy_ema", self.val_acc_ema),
            ("val/accuracy_tta", self.val_acc_tta),
        ];
        out.extend(optional.into_iter().filter_map(|(tag, v)| v.map(|v| (tag, v))));
        out
    }

    /// What makes this line impossible after the line of epoch `previous`, if anything: epochs
    /// from 1, each once and in order; every figure finite; the accuracies in [0, 1] but
    /// `val_acc`, which holds an external trainer's metric (any finite number; the verdicts'
    /// figure is result.json's, checked there); the learning rate, the throughput and the
    /// seconds not negative.
    fn problem(&self, previous: Option<usize>) -> Option<String> {
        if self.epoch == 0 || previous.is_some_and(|p| self.epoch <= p) {
            let after = previous.map_or(String::new(), |p| format!(" after epoch {p}"));
            return Some(format!(
                "epoch = {}{after}: expected epochs from 1, each once, in order",
                self.epoch
            ));
        }
        let fractions = [
            ("train_acc", Some(self.train_acc)),
            ("val_top5", self.val_top5),
            ("val_acc_ema", self.val_acc_ema),
            ("val_acc_tta", self.val_acc_tta),
        ];
        for (field, v) in fractions {
            if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
                return Some(format!("{field} = {v}: expected a fraction in [0, 1]"));
            }
        }
        if let Some(top5) = self.val_top5.filter(|&t| t < self.val_acc - 1e-9) {
            return Some(format!(
                "val_top5 = {top5} below val_acc = {}: expected top-5 >= top-1",
                self.val_acc
            ));
        }
        let others = [
            ("lr", Some(self.lr)),
            ("weight_decay", self.weight_decay),
            ("images_per_sec", Some(self.images_per_sec)),
            ("seconds", Some(self.seconds)),
        ];
        for (field, v) in others {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0 && *v <= MAX_FIGURE)) {
                return Some(format!("{field} = {v:e}: expected a number from 0 to {MAX_FIGURE:e}"));
            }
        }
        [
            ("train_loss", self.train_loss),
            ("val_loss", self.val_loss),
            ("val_acc", self.val_acc),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|(field, v)| format!("{field} = {v}: expected a finite number"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Completed,
    /// The loss became NaN or infinite; training stopped.
    Diverged,
    /// An error ended the run; see `error`.
    Failed,
    /// Stopped early, far below its reference run (`train.stop_reference`); see `error`.
    Stopped,
}

impl Status {
    /// The status as `result.json` spells it, for messages and trackers.
    pub fn name(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }
}

/// The final record of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    pub epochs: usize,
    pub final_val_acc: Option<f64>,
    pub best_val_acc: Option<f64>,
    pub best_epoch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub final_val_acc_ema: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub final_val_acc_tta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_acc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_top5: Option<f64>,
    /// Test top-1 of the test-time-augmented scores (`augment.tta_flip`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_acc_tta: Option<f64>,
    /// Test top-1 of the EMA weights (`train.ema_decay`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_acc_ema: Option<f64>,
    pub wall_seconds: f64,
    pub device: String,
    /// Size of the validation split: accuracies are multiples of 1 / val_images. Required: a
    /// record without it is refused by name (serde's "missing field"), not read as 0.
    pub val_images: usize,
    /// Size of the test split (0 without one): test accuracies are multiples of 1 /
    /// test_images, and a run without test images has none. None in records written before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_images: Option<usize>,
    /// CRC-32C (hex) of the run dir's `recipe.toml` when the result was written
    /// ([`RunDir::write_result`]): a result is read back only beside the recipe it ran (one
    /// moved to another trial's folder, or a recipe edited after the run, is refused). None in
    /// records written before it, and where the run dir had no recipe.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recipe_digest: Option<String>,
}

/// The seal darkmagic puts on a record it reads back (`model.json`, `design.json`, the
/// fingerprint cache, a result's recipe): the CRC-32C of `bytes`, in hex. It tells a hand edit
/// from the record as written; it is no signature (anyone can compute it again).
pub fn digest(bytes: &[u8]) -> String {
    format!("{:08x}", crc32c::crc32c(bytes))
}

/// [`digest`] of `value` as compact JSON.
pub fn json_digest<T: Serialize>(value: &T) -> String {
    digest(&serde_json::to_vec(value).expect("a record serializes"))
}

/// The largest magnitude an external trainer's metric may have (an accuracy, a loss, a score):
/// beyond it, sums of squares of differences lose the digits a verdict needs.
pub const MAX_EXTERNAL_METRIC: f64 = 1e15;

impl RunResult {
    /// What makes this result impossible, if anything: accuracies must be finite and, from
    /// darkmagic's own trainer, in [0, 1] (an external trainer's metric any finite number of
    /// magnitude at most [`MAX_EXTERNAL_METRIC`]); the wall time finite and not negative. (An external trainer's epoch numbers come
    /// from its own curve, so the best epoch is not held to the count of epochs recorded.)
    pub fn problem(&self) -> Option<String> {
        let accuracies = [
            ("final_val_acc", self.final_val_acc),
            ("best_val_acc", self.best_val_acc),
            ("final_val_acc_ema", self.final_val_acc_ema),
            ("final_val_acc_tta", self.final_val_acc_tta),
            ("test_acc", self.test_acc),
            ("test_top5", self.test_top5),
            ("test_acc_tta", self.test_acc_tta),
            ("test_acc_ema", self.test_acc_ema),
        ];
        if self.status == Status::Completed && self.final_val_acc.is_none() {
            return Some("status = completed without final_val_acc: a completed run records its accuracy".into());
        }
        let bounded = self.device != "external";
        // `record_failure` writes every failed result: with the reason, and no validation count.
        if bounded && self.status == Status::Failed && (self.error.is_none() || self.val_images != 0) {
            return Some(format!(
                "status = failed with {}: a failed run records why it failed, and no validation count",
                match self.error {
                    None => "no error".to_string(),
                    Some(_) => format!("val_images = {}", self.val_images),
                }
            ));
        }
        for (field, value) in accuracies {
            let within = |v: f64| match bounded {
                true => (0.0..=1.0).contains(&v),
                false => v.abs() <= MAX_EXTERNAL_METRIC,
            };
            if let Some(v) = value.filter(|&v| !v.is_finite() || !within(v)) {
                let want = if bounded {
                    "a fraction in [0, 1]".to_string()
                } else {
                    format!("a finite number of magnitude at most {MAX_EXTERNAL_METRIC:e}")
                };
                return Some(format!("{field} = {v}: expected {want}"));
            }
        }
        if bounded
            && self.status != Status::Failed
            && let Some(problem) = self.counted_problem()
        {
            return Some(problem);
        }
        if let Some(best) = self.best_epoch.filter(|&b| bounded && b > self.epochs) {
            return Some(format!("best_epoch = {best} past epochs = {}", self.epochs));
        }
        if let (true, Some(best), Some(last)) = (bounded, self.best_val_acc, self.final_val_acc)
            && best < last - 1e-12
        {
            return Some(format!(
                "best_val_acc = {best} below final_val_acc = {last}: the best epoch's is the largest"
            ));
        }
        let wall = self.wall_seconds;
        (!(wall.is_finite() && (0.0..=MAX_FIGURE).contains(&wall)))
            .then(|| format!("wall_seconds = {wall:e}: expected a number from 0 to {MAX_FIGURE:e}"))
    }

    /// What makes darkmagic's validation accuracies impossible, if anything: each counts
    /// correct images out of `val_images`, so a run with accuracies has validation images and
    /// each accuracy times their number is a whole number (an edited figure rarely is). Not for
    /// a failed run's record, written from its metrics alone (`val_images` 0).
    fn counted_problem(&self) -> Option<String> {
        let accuracies = [
            ("final_val_acc", self.final_val_acc),
            ("best_val_acc", self.best_val_acc),
            ("final_val_acc_ema", self.final_val_acc_ema),
            ("final_val_acc_tta", self.final_val_acc_tta),
        ];
        if let Some(problem) = self.test_counted_problem() {
            return Some(problem);
        }
        let n = self.val_images as f64;
        let (field, v) = accuracies.into_iter().find_map(|(f, v)| Some((f, v?)))?;
        if self.val_images == 0 {
            return Some(format!(
                "val_images = 0 beside {field} = {v}: an accuracy is counted on the validation images"
            ));
        }
        let (field, v) = accuracies
            .into_iter()
            .filter_map(|(f, v)| Some((f, v?)))
            .find(|(_, v)| (v * n - (v * n).round()).abs() > 1e-6)?;
        Some(format!(
            "{field} = {v}: not a count of correct images out of val_images = {}",
            self.val_images
        ))
    }

    /// What makes the test accuracies impossible, if anything: a run records them only with
    /// test images, a completed one always, and each counts correct images out of
    /// `test_images` (records from before the count are not checked).
    fn test_counted_problem(&self) -> Option<String> {
        let n = self.test_images?;
        if n > 0 && self.status == Status::Completed && self.test_acc.is_none() {
            return Some(format!(
                "test_images = {n} without test_acc: a completed run with a test split records its test accuracy"
            ));
        }
        let accuracies = [
            ("test_acc", self.test_acc),
            ("test_top5", self.test_top5),
            ("test_acc_tta", self.test_acc_tta),
            ("test_acc_ema", self.test_acc_ema),
        ];
        let (field, v) = accuracies.into_iter().find_map(|(f, v)| Some((f, v?)))?;
        if n == 0 {
            return Some(format!(
                "{field} = {v} in a run with test_images = 0: a run without a test split has no test accuracy"
            ));
        }
        let (field, v) = accuracies
            .into_iter()
            .filter_map(|(f, v)| Some((f, v?)))
            .find(|(_, v)| (v * n as f64 - (v * n as f64).round()).abs() > 1e-6)?;
        Some(format!(
            "{field} = {v}: not a count of correct images out of test_images = {n}"
        ))
    }

    /// A result summarising `metrics`, with the given status.
    pub fn from_metrics(
        status: Status,
        metrics: &[EpochMetrics],
        wall_seconds: f64,
        device: String,
        val_images: usize,
    ) -> Self {
        let best = metrics.iter().max_by(|a, b| a.val_acc.total_cmp(&b.val_acc));
        RunResult {
            status,
            error: None,
            epochs: metrics.len(),
            final_val_acc: metrics.last().map(|m| m.val_acc),
            best_val_acc: best.map(|m| m.val_acc),
            best_epoch: best.map(|m| m.epoch),
            final_val_acc_ema: None,
            final_val_acc_tta: None,
            test_acc: None,
            test_top5: None,
            test_acc_tta: None,
            test_acc_ema: None,
            wall_seconds,
            device,
            val_images,
            test_images: None,
            recipe_digest: None,
        }
    }
}

/// The largest learning rate, weight decay, throughput (images/s) or time (s) a record may
/// hold, the bound of an external trainer's figures (which its CSV's rows become): what lies
/// beyond was edited, and printed as hundreds of digits.
pub const MAX_FIGURE: f64 = MAX_EXTERNAL_METRIC;

/// What a trained model takes and gives, as timm's `pretrained_cfg`: the input's shape and
/// normalisation (from the training split) and the class names, in output order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Per-channel mean and standard deviation of inputs in [0, 1] scale (1 or `channels` values).
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// CRC-32C (hex) of the run's `recipe.toml` when the model was built, set by
    /// [`RunDir::write_spec`] and checked by [`RunDir::read_spec`]: `eval` and `predict` hold
    /// the recipe to it even where `result.json` is gone. None in records written before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recipe_digest: Option<String>,
    /// CRC-32C (hex) of the other fields as JSON, set by [`RunDir::write_spec`] and checked by
    /// [`RunDir::read_spec`]: an edited normalisation or class list would change every
    /// prediction without a word. None in records written before the digest (`eval` holds
    /// those to the data set instead).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub digest: Option<String>,
}

impl ModelSpec {
    /// The digest of every field but the digest itself.
    fn computed_digest(&self) -> String {
        json_digest(&ModelSpec {
            digest: None,
            ..self.clone()
        })
    }

    /// Whether `other` holds the same input and classes: the same fields, floats equal to
    /// within rounding (a legacy record's normalisation against the data's, computed again).
    pub fn same_as(&self, other: &ModelSpec) -> bool {
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(1.0))
        };
        (&self.classes, self.channels, self.height, self.width)
            == (&other.classes, other.channels, other.height, other.width)
            && close(&self.mean, &other.mean)
            && close(&self.std, &other.std)
    }

    /// What makes this spec impossible for a trained model, if anything.
    fn problem(&self) -> Option<String> {
        let side = 1..=crate::recipe::MAX_IMAGE_SIZE;
        let values = |v: &[f64]| v.len() == 1 || v.len() == self.channels;
        if !(1..=4).contains(&self.channels) {
            Some(format!("channels is {}; expected 1 to 4", self.channels))
        } else if !side.contains(&self.height) || !side.contains(&self.width) {
            Some(format!(
                "the input is {}x{}; expected sides of 1 to {}",
                self.height,
                self.width,
                crate::recipe::MAX_IMAGE_SIZE
            ))
        } else if !values(&self.mean) || !values(&self.std) {
            let want = match self.channels {
                1 => "1 value each".to_string(),
                c => format!("1 or {c} values each"),
            };
            Some(format!(
                "mean and std have {} and {} values; expected {want} (channels is {})",
                self.mean.len(),
                self.std.len(),
                self.channels
            ))
        } else if self.mean.iter().any(|m| !m.is_finite()) || self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            Some("mean must be finite and std finite and positive".into())
        } else if self.classes.is_empty() {
            Some("no classes".into())
        } else {
            None
        }
    }
}

/// A run directory and its files.
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// The run dir at `path`, to read; nothing is created or checked (a missing record reads
    /// as None).
    pub fn open(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    /// Creates the folder (and its parents) if needed; a file in its place is an error.
    pub fn create(path: &Path) -> Result<RunDir> {
        if path.exists() && !path.is_dir() {
            return Err(Error::RunDir {
                path: path.to_path_buf(),
                message: "exists and is not a folder".into(),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        Ok(RunDir::open(path))
    }

    /// Holds the run dir for one training run (`darkmagic train`) until the guard is dropped or
    /// the process ends (killed too): an advisory `flock` on the folder itself, so no file is
    /// left behind. A second run into the same folder meanwhile is refused: both would write
    /// the same checkpoint, metrics and result, and the last to finish would mix them. Where
    /// the filesystem cannot lock a folder (some NFS mounts answer `EBADF`), the run goes on
    /// unheld (None) rather than fail.
    #[cfg(unix)]
    pub fn hold(&self) -> Result<Option<std::fs::File>> {
        use std::os::fd::AsRawFd;
        unsafe extern "C" {
            fn flock(fd: i32, operation: i32) -> i32;
        }
        const LOCK_EX: i32 = 2;
        const LOCK_NB: i32 = 4;
        let folder = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        // SAFETY: flock takes a file descriptor this function owns and an operation flag.
        if unsafe { flock(folder.as_raw_fd(), LOCK_EX | LOCK_NB) } == 0 {
            return Ok(Some(folder));
        }
        match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::WouldBlock => Err(Error::RunDir {
                path: self.path.clone(),
                message: "another darkmagic train is training into this run dir now; wait for it, or train into \
                          another --run-dir"
                    .into(),
            }),
            _ => Ok(None),
        }
    }

    /// Records that the run ended without a result: `result.json` with status `failed`, the
    /// epochs it recorded, and `reason` (plus `detail`, e.g. the tail of its output) as the
    /// error; `train.log` gets the reason.
    pub fn record_failure(&self, reason: &str, detail: &str, device: &str) -> Result<()> {
        let metrics = self.read_metrics().unwrap_or_default();
        let wall = metrics.iter().map(|m| m.seconds).sum();
        let mut r = RunResult::from_metrics(Status::Failed, &metrics, wall, device.into(), 0);
        r.error = Some(format!("{reason}\n{detail}").trim().to_string());
        self.log(&format!("failed: {reason}"));
        self.write_result(&r)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_metrics(&self, metrics: &[EpochMetrics]) -> Result<()> {
        let mut text = String::new();
        for m in metrics {
            text.push_str(&serde_json::to_string(m).expect("metrics serialize"));
            text.push('\n');
        }
        write_atomic(&self.file(METRICS), text.as_bytes())
    }

    /// Reads `metrics.jsonl`; a missing file is an empty history. A line that does not parse or
    /// that no run could have written (see `EpochMetrics::problem`: an epoch twice or out of
    /// order, an accuracy outside [0, 1]) is an error naming the file, the line and the field.
    pub fn read_metrics(&self) -> Result<Vec<EpochMetrics>> {
        let path = self.file(METRICS);
        let Some(text) = read_record(&path)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<EpochMetrics> = Vec::new();
        for (i, l) in text.lines().enumerate() {
            // darkmagic writes it whole: a line that does not read is an edit or a damaged disk.
            let bad = |message: String| Error::RunDir {
                path: path.clone(),
                message: format!(
                    "line {}: {message} (restore it, or delete it and checkpoint.safetensors to train the run from the \
                     start: in a checklist, the trial's folder)",
                    i + 1
                ),
            };
            let m: EpochMetrics = serde_json::from_str(l).map_err(|e| bad(e.to_string()))?;
            if let Some(problem) = m.problem(out.last().map(|p| p.epoch)) {
                return Err(bad(problem));
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Writes `result.json`, bound to the run dir's `recipe.toml` by its digest.
    pub fn write_result(&self, result: &RunResult) -> Result<()> {
        let bound = RunResult {
            recipe_digest: self.recipe_digest()?,
            ..result.clone()
        };
        self.write_json(RESULT, &bound)
    }

    /// CRC-32C (hex) of `recipe.toml`'s bytes; None when the run dir has none.
    fn recipe_digest(&self) -> Result<Option<String>> {
        Ok(read_record(&self.file(RECIPE))?.map(|t| digest(t.as_bytes())))
    }

    /// Reads `result.json`; None before the run ends. A result no run could have written (an
    /// accuracy outside [0, 1] or not finite, a negative wall time), or one beside another
    /// recipe than the one it ran (`recipe_digest`), is an error naming the file and the field,
    /// never a figure the verdicts would use.
    pub fn read_result(&self) -> Result<Option<RunResult>> {
        let result: Option<RunResult> = self.read_json(RESULT)?;
        if let Some(problem) = result.as_ref().and_then(RunResult::problem) {
            return Err(Error::RunDir {
                path: self.file(RESULT),
                message: problem,
            });
        }
        // (A failed result is retried, never judged: its recipe may be written again first.)
        let bound = result.as_ref().filter(|r| r.status != Status::Failed);
        if let Some(then) = bound.and_then(|r| r.recipe_digest.as_ref()) {
            let message = match self.recipe_digest()? {
                None => format!(
                    "is missing beside a finished result.json, which records the recipe this run trained \
                     (recipe_digest = {then:?}): restore it"
                ),
                Some(now) if now != *then => format!(
                    "is not the recipe this run trained (result.json records recipe_digest = {then:?}, the file's \
                     bytes give {now:?}): it was edited after the run, or result.json belongs to another run dir"
                ),
                Some(_) => return Ok(result),
            };
            return Err(Error::RunDir {
                path: self.file(RECIPE),
                message,
            });
        }
        Ok(result)
    }

    /// What a training run left here, in words, when it left something a new run would
    /// overwrite: its result (with the status) or, unfinished, its checkpoint or metrics. None
    /// for a new folder, or one that holds only a recipe (a checklist's trial before it ran).
    pub fn holds_run(&self) -> Result<Option<String>> {
        if let Some(r) = self.read_result()? {
            return Ok(Some(format!("a {} run ({RESULT})", r.status.name())));
        }
        let unfinished = [CHECKPOINT, METRICS]
            .into_iter()
            .find(|f| std::fs::metadata(self.file(f)).is_ok_and(|m| m.len() > 0));
        Ok(unfinished.map(|f| format!("an unfinished run ({f})")))
    }

    /// Writes `model.json`, bound to the run dir's `recipe.toml` and sealed with its digest.
    pub fn write_spec(&self, spec: &ModelSpec) -> Result<()> {
        let bound = ModelSpec {
            recipe_digest: self.recipe_digest()?,
            ..spec.clone()
        };
        let sealed = ModelSpec {
            digest: Some(bound.computed_digest()),
            ..bound
        };
        self.write_json(MODEL, &sealed)
    }

    /// Reads `model.json`; None when the run dir has none (trained before darkmagic wrote it).
    /// A spec no trained model could have (a side of 0 or past `MAX_IMAGE_SIZE`, no channels,
    /// normalisation values missing or not positive and finite) is an error naming the file.
    pub fn read_spec(&self) -> Result<Option<ModelSpec>> {
        let spec: Option<ModelSpec> = self.read_json(MODEL)?;
        let edited = |s: &ModelSpec| {
            let d = s.digest.as_ref().filter(|d| **d != s.computed_digest())?;
            Some(format!(
                "digest = {d:?} does not match the record's fields (classes, input size, mean, std): it was edited; \
                 restore it"
            ))
        };
        if let Some(problem) = spec.as_ref().and_then(|s| s.problem().or_else(|| edited(s))) {
            return Err(Error::RunDir {
                path: self.file(MODEL),
                message: problem,
            });
        }
        let now = self.recipe_digest()?;
        if let Some(then) = spec.as_ref().and_then(|s| s.recipe_digest.as_ref())
            && now.as_ref() != Some(then)
        {
            return Err(Error::RunDir {
                path: self.file(RECIPE),
                message: format!(
                    "is not the recipe this model was built from (model.json records recipe_digest = {then:?}, the \
                     file gives {}): it was edited or replaced after training; restore it",
                    now.map_or("nothing: it is missing".into(), |d| format!("{d:?}"))
                ),
            });
        }
        Ok(spec)
    }

    /// Writes `value` as pretty JSON to the file `name`, atomically.
    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value).expect("run dir records serialize");
        write_atomic(&self.file(name), format!("{text}\n").as_bytes())
    }

    /// Reads the JSON file `name`; None when it does not exist, an error naming it when it does
    /// not parse.
    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.file(name);
        let Some(text) = read_record(&path)? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| Error::RunDir {
            path,
            message: e.to_string(),
        })
    }

    /// The last `LOG_TAIL_BYTES` of `train.log` as text, for reports; empty when it is missing
    /// or not a regular file of this run dir (a link is not followed: a report embeds nothing
    /// from elsewhere).
    pub fn log_tail(&self) -> String {
        crate::files::tail(&self.file(LOG), LOG_TAIL_BYTES)
    }

    /// Appends one line to `train.log` (best effort: logging never stops training; a log that
    /// is not a regular file is refused where the run starts, [`RunDir::check_logs`]).
    pub fn log(&self, line: &str) {
        if let Ok(mut f) = crate::files::open_append(&self.file(LOG)) {
            let _ = writeln!(f, "{line}");
        }
    }

    /// The run dir's logs (`train.log`, `stdout.log`) are regular files or absent: a FIFO there
    /// would block the run at its first line, a device swallow it, a link have the log
    /// appended to another file.
    pub fn check_logs(&self) -> Result<()> {
        for name in [LOG, "stdout.log"] {
            let path = self.file(name);
            match std::fs::symlink_metadata(&path) {
                // Appended to, so a link would add the log to whatever file it names.
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::RunDir {
                        path,
                        message: "is a symbolic link: a run's log is appended to, so a link would write into the file \
                                  it names; remove it"
                            .into(),
                    });
                }
                Ok(_) => crate::files::check_regular(&path, u64::MAX)?,
                Err(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(epoch: usize, val_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            step: epoch * 10,
            lr: 0.1,
            weight_decay: None,
            train_loss: 1.0,
            train_acc: 0.5,
            val_loss: 1.0,
            val_acc,
            val_top5: None,
            val_acc_ema: None,
            val_acc_tta: None,
            images_per_sec: 100.0,
            seconds: 1.0,
        }
    }

    /// Impossible results are refused by field on read; an external trainer's metric may lie
    /// outside [0, 1] (a loss, a percentage) but must be finite.
    #[test]
    fn an_impossible_result_is_refused_with_the_field_named() {
        let dir = RunDir::create(&crate::testutil::tempdir("rundir-result")).unwrap();
        let good = RunResult::from_metrics(Status::Completed, &[m(1, 0.5), m(2, 0.9)], 3.0, "cpu".into(), 100);
        for (field, value, want) in [
            (
                "final_val_acc",
                serde_json::json!(2.0),
                "final_val_acc = 2: expected a fraction in [0, 1]",
            ),
            ("final_val_acc", serde_json::json!(-0.5), "final_val_acc = -0.5"),
            ("wall_seconds", serde_json::json!(-1.0), "wall_seconds = -1"),
            ("best_epoch", serde_json::json!(7), "best_epoch = 7 past epochs = 2"),
            (
                "best_val_acc",
                serde_json::json!(0.1),
                "best_val_acc = 0.1 below final_val_acc = 0.9",
            ),
            (
                "val_images",
                serde_json::json!(0),
                "val_images = 0 beside final_val_acc = 0.9: an accuracy is counted",
            ),
            (
                "final_val_acc",
                serde_json::json!(0.8975),
                "final_val_acc = 0.8975: not a count of correct images out of val_images = 100",
            ),
        ] {
            let mut v = serde_json::to_value(&good).unwrap();
            v[field] = value;
            std::fs::write(dir.file(RESULT), v.to_string()).unwrap();
            let e = dir.read_result().unwrap_err().to_string();
            assert!(e.contains("result.json") && e.contains(want), "{e}");
        }
        let mut v = serde_json::to_value(&good).unwrap();
        v["final_val_acc"] = serde_json::json!("NaN");
        std::fs::write(dir.file(RESULT), v.to_string()).unwrap();
        assert!(dir.read_result().unwrap_err().to_string().contains("result.json"));
        let external = RunResult {
            final_val_acc: Some(75.3),
            device: "external".into(),
            ..good.clone()
        };
        dir.write_result(&external).unwrap();
        assert_eq!(dir.read_result().unwrap(), Some(external.clone()));
        let huge = RunResult {
            final_val_acc: Some(5.26e17),
            ..external
        };
        dir.write_result(&huge).unwrap();
        assert!(
            dir.read_result()
                .unwrap_err()
                .to_string()
                .contains("of magnitude at most 1e15")
        );
        dir.write_result(&good).unwrap();
        assert_eq!(dir.read_result().unwrap(), Some(good));
    }

    #[test]
    fn metrics_round_trip_and_best_epoch() {
        let dir = RunDir::create(&crate::testutil::tempdir("rundir")).unwrap();
        let ms = vec![m(1, 0.5), m(2, 0.9), m(3, 0.8)];
        dir.write_metrics(&ms).unwrap();
        assert_eq!(dir.read_metrics().unwrap(), ms);
        let r = RunResult::from_metrics(Status::Completed, &ms, 3.0, "cpu".into(), 100);
        assert_eq!(
            (r.final_val_acc, r.best_val_acc, r.best_epoch),
            (Some(0.8), Some(0.9), Some(2))
        );
        dir.write_result(&r).unwrap();
        assert_eq!(dir.read_result().unwrap(), Some(r));
        let names: Vec<_> = std::fs::read_dir(&dir.path)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    }

    /// Every accuracy a run can record, k/179 (the digits' validation split) and k/10000
    /// (CIFAR-10 and Fashion-MNIST's test splits), is read back with the bits it was written
    /// with. serde_json without `float_roundtrip` parses some shortest representations to the
    /// neighbouring double (162/179 = 0.9050279329608939 came back as ...894), and every
    /// "identical summary after resume" comparison rests on exact reads.
    #[test]
    fn accuracies_read_back_bit_for_bit() {
        let dir = RunDir::create(&crate::testutil::tempdir("rundir-bits")).unwrap();
        let values: Vec<f64> = (0..=179)
            .map(|k| k as f64 / 179.0)
            .chain((0..=10_000).map(|k| k as f64 / 10_000.0))
            .collect();
        let ms: Vec<EpochMetrics> = values.iter().enumerate().map(|(i, &v)| m(i + 1, v)).collect();
        dir.write_metrics(&ms).unwrap();
        let back = dir.read_metrics().unwrap();
        let wrong: Vec<f64> = values
            .iter()
            .zip(&back)
            .filter(|(v, b)| v.to_bits() != b.val_acc.to_bits())
            .map(|(v, _)| *v)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} values read back changed: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        let mut r = RunResult::from_metrics(Status::Completed, &ms[..1], 1.0, "cpu".into(), 179);
        for &v in &values[..180] {
            (r.final_val_acc, r.best_val_acc) = (Some(v), Some(v));
            dir.write_result(&r).unwrap();
            let back = dir.read_result().unwrap().unwrap().final_val_acc.unwrap();
            assert_eq!(v.to_bits(), back.to_bits(), "result.json changed {v} into {back}");
        }
    }

    #[test]
    fn corrupt_metrics_line_is_named() {
        let dir = RunDir::create(&crate::testutil::tempdir("rundir-bad")).unwrap();
        std::fs::write(dir.file(METRICS), "{\"epoch\": 1}\n").unwrap();
        let e = dir.read_metrics().unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl") && e.contains("line 1"), "{e}");
    }

    /// Lines no run could write are refused with the line and the field: an epoch repeated, out
    /// of order or 0, an accuracy outside [0, 1], a negative learning rate or time.
    #[test]
    fn impossible_metrics_lines_are_refused_by_line_and_field() {
        let dir = RunDir::create(&crate::testutil::tempdir("rundir-metrics")).unwrap();
        let check = |lines: &[EpochMetrics], want: &str| {
            dir.write_metrics(lines).unwrap();
            let e = dir.read_metrics().unwrap_err().to_string();
            assert!(e.contains("metrics.jsonl") && e.contains(want), "{want}: {e}");
        };
        check(&[m(1, 0.5), m(1, 0.6)], "line 2: epoch = 1 after epoch 1");
        check(&[m(2, 0.5), m(1, 0.6)], "line 2: epoch = 1 after epoch 2");
        check(&[m(0, 0.5)], "line 1: epoch = 0");
        check(
            &[EpochMetrics {
                train_acc: 1.5,
                ..m(1, 0.5)
            }],
            "train_acc = 1.5",
        );
        check(
            &[
                m(1, 0.5),
                EpochMetrics {
                    val_acc_ema: Some(-0.1),
                    ..m(2, 0.5)
                },
            ],
            "line 2: val_acc_ema = -0.1",
        );
        check(&[EpochMetrics { lr: -1.0, ..m(1, 0.5) }], "lr = -1");
        check(
            &[EpochMetrics {
                val_top5: Some(0.4),
                ..m(1, 0.5)
            }],
            "val_top5 = 0.4 below val_acc = 0.5",
        );
        check(
            &[EpochMetrics {
                seconds: -2.0,
                ..m(1, 0.5)
            }],
            "seconds = -2",
        );
        // An external trainer's metric (val_acc) may be any finite number.
        dir.write_metrics(&[m(1, 0.5), m(2, 37.5)]).unwrap();
        assert_eq!(dir.read_metrics().unwrap().len(), 2);
    }
}
