//! The command line's arguments as clap parses them; `main.rs` turns each command into calls of
//! the library.
use clap::{Args, Parser, Subcommand};
use darkmagic::eval::classifier::Split;
use darkmagic::eval::predict::Format;
use darkmagic::recipe::Arch;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "darkmagic",
    about = "Train image classifiers with the dark magic tricks, and test which ones help",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Print the version, the libtorch this process loaded and the CUDA devices it sees.
    #[arg(short = 'V', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train one recipe into a run directory.
    Train(TrainArgs),
    /// Run the baseline and every one-factor variant, several seeds each, and write the report.
    Checklist(Box<ChecklistArgs>),
    /// Evaluate a trained model on a split of a data set: top-1/top-5, loss, per-class accuracy
    /// and confusion matrix (printed, and written as JSON and CSV), as timm's validate.py.
    Eval(EvalArgs),
    /// Classify image files with a trained model: the top-k classes and their probabilities per
    /// image, as CSV or JSON (timm's inference.py).
    Predict(PredictArgs),
    /// Rebuild a checklist's report (summary.json/csv/md, report.html) from its run dirs.
    Report {
        /// The checklist directory.
        dir: PathBuf,
        /// Also send the checklist (what the server lacks of it) to the MLflow tracking server
        /// at URI.
        #[arg(long, value_name = "URI")]
        mlflow: Option<String>,
    },
    /// Print the schedules of a recipe as CSV (step, epoch, lr, weight_decay).
    Schedule(RecipeArgs),
    /// Print the resolved recipe (defaults, file and overrides) as TOML.
    Recipe(RecipeArgs),
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Augmentation tools.
    Augment {
        #[command(subcommand)]
        command: AugmentCommand,
    },
    /// Throughput benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Args)]
pub struct RecipeArgs {
    /// Recipe TOML file; defaults apply to every field it omits (no file: all defaults; for
    /// `checklist`, the plain first-run recipe, recipes/first-run.toml).
    #[arg(long)]
    pub recipe: Option<PathBuf>,
    /// Override a field: `--set optim.lr=0.05 --set model.se=false`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Run directory for recipe.toml, metrics.jsonl, result.json, the checkpoint and the log.
    #[arg(long, default_value = "runs/train")]
    pub run_dir: PathBuf,
    /// Continue from the run directory's checkpoint (and its recipe.toml when --recipe is not given).
    #[arg(long)]
    pub resume: bool,
    /// CPU threads (shorthand for --set train.threads=N; 0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Initial weights: a darkmagic checkpoint or a torchvision safetensors state dict
    /// (shorthand for --set model.init=PATH).
    #[arg(long)]
    pub init: Option<PathBuf>,
}

/// Which trained model to use.
#[derive(Args)]
pub struct ModelArgs {
    /// Run directory of a trained model: its recipe.toml, model.json and checkpoint.
    #[arg(long, required_unless_present = "weights", conflicts_with = "weights")]
    pub run_dir: Option<PathBuf>,
    /// Instead of a run dir: a safetensors state dict with torchvision's names (or a darkmagic
    /// checkpoint). The recipe describes the model (--set model.arch=resnet18 ...) and its data
    /// set gives the classes, input size and normalisation.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Use the checkpoint's EMA weights (runs with train.ema_decay > 0).
    #[arg(long, requires = "run_dir")]
    pub ema: bool,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// CPU threads (shorthand for --set train.threads=N; 0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Evaluate on another data set (a dataset folder, or `digits`): sets data.path and
    /// data.dataset. Its classes, channels and image size must be the model's.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which images of the data set.
    #[arg(long, value_enum, default_value = "val")]
    pub split: Split,
    /// Folder for <split>.json and the CSV files (default: RUN_DIR/eval, or with --data
    /// RUN_DIR/eval/<folder name>-<digest of its path>, so that two data sets of one name keep
    /// their figures apart; required with --weights).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Image files (PNG, JPEG) or folders, searched recursively.
    #[arg(required = true, value_name = "IMAGE_OR_FOLDER")]
    pub images: Vec<PathBuf>,
    /// Classes per image, most probable first (at most the class count).
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Add every class's logit to each image's row.
    #[arg(long)]
    pub logits: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ChecklistArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Checklist directory: trials, summaries and report.html. Rerunning resumes it.
    #[arg(long, default_value = "runs/checklist")]
    pub out: PathBuf,
    /// Seeds of the first round (shorthand for --set checklist.seeds=N).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// The most seeds a variant gets in later rounds (shorthand for --set checklist.max_seeds=N).
    #[arg(long)]
    pub max_seeds: Option<usize>,
    /// default (the article's checklist) or extended (plus the "future posts" tricks).
    #[arg(long)]
    pub plan: Option<String>,
    /// List the trials, what each changes, and the estimated compute; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the state of each trial of the checklist in DIR (e.g. after --detach) and exit.
    #[arg(long, value_name = "DIR", exclusive = true)]
    pub status: Option<PathBuf>,
    /// Where and how the trials run.
    #[command(flatten)]
    pub run: darkmagic::executor::Settings,
    /// Log the checklist to the MLflow tracking server at URI (http://host:port): one run per
    /// trial, nested under a run for the checklist (sets checklist.mlflow).
    #[arg(long, value_name = "URI")]
    pub mlflow: Option<String>,
    /// Replace the design fixed at this checklist's first look (design.json) with the one of
    /// the current settings, over the same trials: for a checklist planned under an older
    /// default or too few seeds. The report names every design replaced, since choosing a new
    /// one after seeing results is the reader's to judge.
    #[arg(long)]
    pub redesign: bool,
    /// Remove the directory's checklist.lock first, whoever holds it: for a lock left on a
    /// shared filesystem by a host where the checklist no longer runs.
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Print a dataset's format, classes, counts per class, image size and channels.
    Inspect {
        /// A dataset folder, or `digits` for the embedded set.
        path: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AugmentCommand {
    /// Apply one AutoAugment op at one magnitude bin to an image file.
    Apply {
        /// ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast,
        /// Sharpness, Posterize, Solarize, AutoContrast, Equalize or Invert.
        #[arg(long)]
        op: String,
        /// Magnitude bin 0..=9, as in the AutoAugment tables.
        #[arg(long, default_value_t = 9)]
        bin: usize,
        /// Negate the magnitude (signed ops only).
        #[arg(long)]
        negate: bool,
        /// Fill of pixels brought in by geometric ops.
        #[arg(long, default_value_t = 0)]
        fill: u8,
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long = "out")]
        output: PathBuf,
    },
    /// Write a grid of augmented training samples of a recipe's dataset as a PNG.
    Preview {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[arg(long = "out")]
        output: PathBuf,
        #[arg(long, default_value_t = 64)]
        count: usize,
    },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Images per second of the training loader: the CIFAR train transform with AutoAugment on
    /// random images (bench/augment_cifar.sh), or with --folder the ImageNet one (decode,
    /// random-resized crop 224, flip, AutoAugment ImageNet) on its files
    /// (bench/augment_imagenet.sh); both scripts compare with torchvision.
    Augment {
        #[arg(long, default_value_t = 4096)]
        images: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// An image folder dataset: benchmark the ImageNet transform on its files.
        #[arg(long)]
        folder: Option<PathBuf>,
    },
    /// Training images per second of one model on random data.
    Train(BenchTrainArgs),
    /// Images per second of reading a data set as a run reads it at its start: the listing,
    /// then every image of both splits decoded to pixels on one thread (`data.decode =
    /// "at_load"`); bench/dataset_readers.sh compares with the Python libraries.
    Read {
        /// The data set: a folder, manifest, parquet file or folder, shard, or brace pattern.
        path: PathBuf,
        /// Its format (`data.dataset`); guessed from the files when left out.
        #[arg(long)]
        dataset: Option<String>,
    },
}

#[derive(Args)]
pub struct BenchTrainArgs {
    #[arg(long, value_parser = parse_arch, default_value = "resnet20")]
    pub model: Arch,
    #[arg(long, default_value_t = 128)]
    pub batch: i64,
    /// Channels x height x width.
    #[arg(long, default_value = "3x32x32")]
    pub image: String,
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    #[arg(long, default_value_t = 10)]
    pub classes: i64,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Weights and batch in channels-last memory order (as bench/train_step.py --channels-last).
    #[arg(long)]
    pub channels_last: bool,
    /// Autocast: off, bf16 or fp16 (as bench/train_step.py --amp).
    #[arg(long, default_value = "off")]
    pub amp: String,
}

pub fn parse_arch(s: &str) -> Result<Arch, String> {
    let v = toml::Value::String(s.to_string());
    Arch::deserialize(v).map_err(|e| e.to_string())
}
