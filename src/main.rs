//! The `darkmagic` command line: a thin layer over the library.
use anyhow::{Context, Result, bail};
use clap::Parser;
use darkmagic::checklist;
use darkmagic::data;
use darkmagic::eval::classifier::Classifier;
use darkmagic::eval::predict;
use darkmagic::mlflow::Tracker;
use darkmagic::recipe::Recipe;
use darkmagic::schedule::LrSchedule;
use darkmagic::{rundir, runtime, session, train};
use std::path::Path;

mod cli;

/// mimalloc for the whole process: with its `override` feature the binary also exports
/// `malloc`/`free`, so libtorch's tensor buffers come from it too. A small CPU training step
/// allocates and frees a few hundred tensors; glibc's malloc spent about 7% of a ResNet-20
/// digits step there (`perf`), and mimalloc makes the step about 1.07x faster (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::*;
use serde::Deserialize;

/// The `darkmagic` built from source: no launcher started it, so a `DARKMAGIC_LAUNCHER` in its
/// environment is not its own and is ignored (trials start as this executable).
#[cfg_attr(feature = "wheel", allow(dead_code))]
pub fn main() {
    start(false)
}

/// The command line; `from_launcher`: the pip wheel's launcher started this process (the
/// wheel's `darkmagic-core`), whose variables it then takes and removes.
pub fn start(from_launcher: bool) {
    if from_launcher {
        // SAFETY: first thing in main, before any thread exists.
        unsafe { darkmagic::launcher::restore_environment() };
    }
    default_sigpipe();
    quiet_panics();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        let code = if e.is::<TrialsFailed>() { TrialsFailed::EXIT } else { 1 };
        std::process::exit(code);
    }
}

/// A panic that is libtorch failing to allocate memory prints one line and no backtrace: with
/// `RUST_BACKTRACE` set, capturing one needed memory there was none of, and the process aborted
/// and hung instead of recording the run as failed. Where the panic is caught (a training run),
/// the error that follows names the fix. A panic inside `error::contain` prints nothing (its error
/// follows). `println!` failing (stdout on a full disk, `> /dev/full`) is an `error:` line and
/// exit 1, as any other failed write. Every other panic prints as Rust's default hook prints it.
fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if darkmagic::error::in_contained() {
            return; // a parser's panic, turned into an error naming the file
        }
        let message = darkmagic::error::panic_message(info.payload());
        if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write to standard output: {cause}");
            std::process::exit(1);
        }
        if darkmagic::error::out_of_memory(&message) {
            eprintln!(
                "libtorch could not allocate memory: {}",
                darkmagic::error::without_frames(&message)
            );
            return;
        }
        default(info)
    }));
}

/// Restores the default action of SIGPIPE, which Rust's runtime ignores: `darkmagic schedule |
/// head` then ends quietly when `head` exits, as other Unix tools do, instead of panicking on
/// the failed write. (Sockets are unaffected: Rust sends with MSG_NOSIGNAL.)
#[cfg(unix)]
fn default_sigpipe() {
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn run(cli: Cli) -> Result<()> {
    if cli.version {
        println!("{}", darkmagic::runtime::version::report());
        return Ok(());
    }
    let Some(command) = cli.command else {
        bail!("no command given: `darkmagic --help` lists them");
    };
    match command {
        Command::Train(a) => train_cmd(a),
        Command::Checklist(a) => checklist_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Predict(a) => predict_cmd(a),
        Command::Report { dir, mlflow } => report_cmd(&dir, mlflow.as_deref()),
        Command::Schedule(a) => schedule_cmd(&load_recipe(&a, None)?),
        Command::Recipe(a) => {
            print!("{}", load_recipe(&a, None)?.to_toml());
            Ok(())
        }
        Command::Data {
            command: DataCommand::Inspect { path },
        } => inspect_cmd(&path),
        Command::Bench { command } => bench_cmd(command),
        Command::Augment { command } => augment_cmd(command),
    }
}

/// The recipe from `--recipe` (or `fallback` when absent) plus the `--set` overrides.
fn load_recipe(a: &RecipeArgs, fallback: Option<&Path>) -> Result<Recipe> {
    let path = a.recipe.as_deref().or(fallback);
    Ok(Recipe::load(path, &a.overrides)?)
}

fn train_cmd(mut a: TrainArgs) -> Result<()> {
    if let Some(t) = a.threads {
        a.recipe.overrides.push(format!("train.threads={t}"));
    }
    if let Some(p) = &a.init {
        let value = toml::Value::String(p.display().to_string());
        a.recipe.overrides.push(format!("model.init={value}"));
    }
    let saved = a.run_dir.join(rundir::RECIPE);
    if a.resume && a.recipe.recipe.is_none() && !saved.exists() && a.run_dir.join(rundir::CHECKPOINT).exists() {
        // The defaults would build another model than the checkpoint's.
        bail!(
            "--resume: {} is missing, and the run's checkpoint needs the recipe it trained with; restore it, or give \
             that recipe with --recipe",
            saved.display()
        );
    }
    let fallback = (a.resume && saved.exists()).then_some(saved.as_path());
    let recipe = load_recipe(&a.recipe, fallback)?;
    if recipe.external.is_some() {
        // What an external trainer starts and detaches (setsid) comes back to this process, to
        // be ended with the trial.
        darkmagic::executor::strays::adopt();
    }
    let result =
        train::run(&recipe, &a.run_dir, a.resume).with_context(|| format!("training into {}", a.run_dir.display()))?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    match result.status {
        rundir::Status::Completed => Ok(()),
        s => bail!(
            "run ended with status {s:?}; see {}",
            a.run_dir.join(rundir::LOG).display()
        ),
    }
}

/// The model `a` names, with `extra` overrides after the command line's.
fn classifier(a: &ModelArgs, extra: &[String]) -> Result<Classifier> {
    let mut overrides = a.recipe.overrides.clone();
    overrides.extend_from_slice(extra);
    if let Some(t) = a.threads {
        overrides.push(format!("train.threads={t}"));
    }
    Ok(match (&a.run_dir, &a.weights) {
        (Some(dir), _) => {
            if a.recipe.recipe.is_some() {
                bail!("--recipe: a run dir brings its own recipe.toml; change its fields with --set");
            }
            Classifier::from_run_dir(dir, a.ema, &overrides)?
        }
        (None, Some(w)) => Classifier::from_weights(w, Recipe::load(a.recipe.recipe.as_deref(), &overrides)?)?,
        (None, None) => bail!("--run-dir or --weights: one is needed"),
    })
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let mut data = Vec::new();
    if let Some(p) = &a.data {
        let kind = toml::Value::try_from(data::detect(p)?)?;
        data.push(format!("data.dataset={kind}"));
        if p.as_os_str() != "digits" {
            data.push(format!("data.path={}", toml::Value::String(p.display().to_string())));
        }
    }
    let changes_data = a
        .model
        .recipe
        .overrides
        .iter()
        .any(|o| o.starts_with("data.") || o.starts_with("seed="));
    if a.out.is_none() && a.data.is_none() && a.model.run_dir.is_some() && changes_data {
        // Another split's figures would replace the run's own (a checklist's report links them),
        // and a split redrawn from the training images is not held-out data.
        bail!(
            "--out: needed with --set data.* or seed= on a run dir's own data set: the figures go to a folder of your \
             choice, not over the run's own in RUN_DIR/eval; a validation split redrawn this way may hold images the \
             model trained on"
        );
    }
    let out = match (&a.out, &a.model.run_dir) {
        (Some(o), _) => o.clone(),
        // Another data set's figures go beside the run's own, not over them, nor over those of
        // another data set of the same folder name: named by the folder they resolve to and a
        // digest of its whole path (`--data .` and `--data ..` resolved first).
        (None, Some(dir)) => match &a.data {
            Some(p) if p.as_os_str() == "digits" => dir.join(rundir::EVAL).join("digits"),
            Some(p) => {
                let real = p.canonicalize().map_err(|e| darkmagic::error::Error::io(p, e))?;
                let name = real
                    .file_name()
                    .map_or("data".into(), |n| n.to_string_lossy().to_string());
                let digest = rundir::digest(real.as_os_str().as_encoded_bytes());
                dir.join(rundir::EVAL).join(format!("{name}-{digest}"))
            }
            None => dir.join(rundir::EVAL),
        },
        (None, None) => bail!("--out: needed with --weights (there is no run dir to write into)"),
    };
    let c = classifier(&a.model, &data)?;
    let (images, _) = c.labelled(a.split)?;
    let (plain, tta) = c.evaluate(&images)?;
    let split = format!("{:?}{}", a.split, if a.model.ema { "-ema" } else { "" }).to_lowercase();
    let mut written = plain.write(&out, &split, &c.spec.classes, &images)?;
    print!("{}", plain.text(&split, &c.spec.classes));
    if let Some(t) = tta {
        let split = format!("{split}-tta");
        written.extend(t.write(&out, &split, &c.spec.classes, &images)?);
        print!("{}", t.text(&split, &c.spec.classes));
    }
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    if a.top_k == 0 {
        bail!("--top-k: got 0; expected at least 1 class per image");
    }
    if let (Some(out), Some(run)) = (&a.out, &a.model.run_dir)
        && rundir::is_own_path(run, out)
    {
        bail!(
            "--out: {} is one of the run's own files; write the predictions elsewhere",
            out.display()
        );
    }
    let files = data::folder::image_files(&a.images)?;
    if let Some(out) = &a.out
        && let Ok(real) = out.canonicalize()
        && files.iter().any(|f| f.canonicalize().is_ok_and(|f| f == real))
    {
        bail!(
            "--out: {} is one of the images to classify; write the predictions elsewhere",
            out.display()
        );
    }
    let c = classifier(&a.model, &[])?;
    let predictions = c.predict(files, a.top_k, a.logits)?;
    let text = predict::render(&predictions, &c.spec.classes, a.format);
    match &a.out {
        Some(path) => darkmagic::files::write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(())
}

fn checklist_cmd(mut a: Box<ChecklistArgs>) -> Result<()> {
    if let Some(n) = a.seeds {
        a.recipe.overrides.push(format!("checklist.seeds={n}"));
    }
    if let Some(n) = a.max_seeds {
        a.recipe.overrides.push(format!("checklist.max_seeds={n}"));
    }
    if let Some(p) = &a.plan {
        a.recipe.overrides.push(format!("checklist.plan={p}"));
    }
    if let Some(uri) = &a.mlflow {
        let text = toml::Value::String(uri.clone());
        a.recipe.overrides.push(format!("checklist.mlflow={text}"));
    }
    if let Some(dir) = &a.status {
        print!("{}", checklist::status_text(dir)?);
        return Ok(());
    }
    let saved = a.out.join(checklist::BASELINE);
    let baseline = if a.recipe.recipe.is_none() && !saved.exists() {
        let (recipe, file) = darkmagic::recipe::first_run(&a.recipe.overrides)?;
        eprintln!("no --recipe: the first-run checklist, a plain recipe ({file}) and the article's tricks around it");
        recipe
    } else {
        load_recipe(&a.recipe, saved.exists().then_some(saved.as_path()))?
    };
    if a.dry_run {
        a.run.check()?;
        let local = a.run.local(darkmagic::runtime::gpu_count())?;
        let ips = darkmagic::bench::recipe_images_per_sec(&baseline, local.threads);
        print!("{}", checklist::describe(&baseline, ips, local.parallel)?);
        return Ok(());
    }
    let options = session::Options {
        redesign: a.redesign,
        break_lock: a.break_lock,
        gpus: darkmagic::runtime::gpu_count(),
    };
    let ended = session::run(&baseline, &a.out, &a.run, options)
        .with_context(|| format!("checklist in {}", a.out.display()))?;
    if a.run.detach {
        return Ok(());
    }
    print!("{}", std::fs::read_to_string(a.out.join("summary.md"))?);
    println!("\nreport: {}", a.out.join("report.html").display());
    if !ended.failed.is_empty() {
        return Err(TrialsFailed(ended.failed).into());
    }
    Ok(())
}

/// The checklist finished but some trials failed: exit status `TrialsFailed::EXIT`, so that a
/// script can tell it from a checklist that could not run (1) and from success (0).
#[derive(Debug)]
struct TrialsFailed(Vec<String>);

impl TrialsFailed {
    const EXIT: i32 = 3;
}

impl std::fmt::Display for TrialsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} trial(s) failed ({}); see their train.log, and rerun the same command to retry them",
            self.0.len(),
            self.0.join(", ")
        )
    }
}

impl std::error::Error for TrialsFailed {}

fn report_cmd(dir: &Path, mlflow: Option<&str>) -> Result<()> {
    let summary = checklist::analysis::analyze(dir)?;
    // Refused only where the last summary says a design was fixed: a --detach'ed checklist's
    // first look, completed on the cluster, is fixed by the resume that reads it.
    checklist::require_design(dir, &summary)?;
    checklist::analysis::require_baseline_record(dir, &summary)?;
    if summary.baseline.seeds.is_empty() && !summary.tuning.is_empty() {
        bail!(
            "{}: only tuning runs so far (trials/*/tune-*): the arms' seeds run once their tuning ends; rerun the \
             checklist, or report when it has run them",
            dir.display()
        );
    }
    if summary.baseline.seeds.is_empty() {
        bail!(
            "{}: no checklist trials found (expected trials/*/seed-*/trial.json)",
            dir.display()
        );
    }
    darkmagic::report::write(dir, &summary)?;
    println!("{}", dir.join("report.html").display());
    if let Some(uri) = mlflow {
        // Not while a checklist runs here: it sends the same trials.
        let _lock = checklist::lock::Lock::acquire(dir)?;
        Tracker::start(uri, dir)?.sync(&summary)?;
        println!("mlflow: sent to {uri}");
    }
    Ok(())
}

fn schedule_cmd(recipe: &Recipe) -> Result<()> {
    let d = data::load_splits(recipe)?;
    let steps_per_epoch = recipe.steps_per_epoch(d.train.len());
    let s = LrSchedule::new(&recipe.schedule, recipe.peak_lr(), recipe.train.epochs, steps_per_epoch);
    s.check()?;
    println!("step,epoch,lr,weight_decay");
    for step in 0..s.total_steps() {
        let wd = s.weight_decay(step, recipe.optim.weight_decay);
        println!(
            "{step},{:.4},{:.6e},{wd:.6e}",
            step as f64 / steps_per_epoch as f64,
            s.lr(step)
        );
    }
    Ok(())
}

fn inspect_cmd(path: &Path) -> Result<()> {
    print!("{}", data::describe(path)?);
    Ok(())
}

fn augment_cmd(cmd: AugmentCommand) -> Result<()> {
    use darkmagic::preview;
    match cmd {
        AugmentCommand::Apply {
            op,
            bin,
            negate,
            fill,
            input,
            output,
        } => {
            preview::apply_op_file(preview::op_by_name(&op)?, bin, negate, fill, &input, &output)?;
        }
        AugmentCommand::Preview { recipe, output, count } => {
            within("--count", count as u64, 1, MAX_PREVIEW)?;
            let r = load_recipe(&recipe, None)?;
            let splits = data::load_splits(&r)?;
            preview::write_image(&output, preview::grid(&splits.train, &r.augment, r.seed, count)?)?;
        }
    }
    Ok(())
}

/// The most samples a preview grid shows.
const MAX_PREVIEW: u64 = 4096;
/// The most random images `bench augment` makes (each a 32x32 RGB image held at once).
const MAX_BENCH_IMAGES: u64 = 1 << 20;
/// The largest `bench train` batch, class count and step count.
const MAX_BENCH_BATCH: u64 = 1 << 16;
const MAX_BENCH_CLASSES: u64 = 1 << 20;
const MAX_BENCH_STEPS: u64 = 1 << 20;
/// The most numbers one `bench train` batch may hold.
const MAX_BENCH_ELEMENTS: i64 = 1 << 31;

/// `value` of `flag` when it lies in `lo..=hi`; else an error that names the flag and the range.
fn within(flag: &str, value: u64, lo: u64, hi: u64) -> Result<u64> {
    Ok(darkmagic::Error::flag_within(flag, value, lo, hi)?)
}

fn bench_cmd(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Augment {
            images,
            threads,
            folder,
        } => {
            within("--images", images as u64, 1, MAX_BENCH_IMAGES)?;
            within("--threads", threads as u64, 0, darkmagic::recipe::MAX_THREADS as u64)?;
            match folder {
                Some(dir) => {
                    let ips = darkmagic::bench::augment_folder_images_per_sec(&dir, threads)?;
                    println!("darkmagic augment ImageNet AutoAugment threads={threads}: {ips:.1} images/s");
                }
                None => {
                    let ips = darkmagic::bench::augment_images_per_sec(images, threads);
                    println!("darkmagic augment CIFAR AutoAugment threads={threads}: {ips:.1} images/s");
                }
            }
            Ok(())
        }
        BenchCommand::Train(a) => bench_train(a),
        BenchCommand::Read { path, dataset } => {
            let kind = match dataset {
                Some(d) => darkmagic::recipe::DatasetKind::deserialize(toml::Value::String(d)).context(
                    "--dataset: expected a data.dataset value (folder, manifest, parquet, webdataset, idx, ...)",
                )?,
                None => darkmagic::data::detect(&path)?,
            };
            let (format, n, seconds) = darkmagic::bench::read_seconds(kind, &path)?;
            println!(
                "darkmagic read {format}: {n} images in {seconds:.3} s: {:.1} images/s",
                n as f64 / seconds
            );
            Ok(())
        }
    }
}

fn bench_train(a: BenchTrainArgs) -> Result<()> {
    let dims: Vec<i64> = a
        .image
        .split('x')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("--image: expected CxHxW, e.g. 3x32x32")?;
    let [c, h, w] = dims[..] else {
        bail!("--image: expected CxHxW, e.g. 3x32x32")
    };
    if dims.iter().any(|&d| d < 1) || a.batch < 1 || a.classes < 1 {
        bail!("--image, --batch, --classes: every size must be at least 1");
    }
    within("--image", c as u64, 1, 4)?;
    for side in [h, w] {
        within("--image", side as u64, 1, darkmagic::recipe::MAX_IMAGE_SIZE as u64)?;
    }
    within("--batch", a.batch as u64, 1, MAX_BENCH_BATCH)?;
    within("--classes", a.classes as u64, 1, MAX_BENCH_CLASSES)?;
    let elements = a.batch * c * h * w;
    if elements > MAX_BENCH_ELEMENTS {
        bail!(
            "--batch x --image: {elements} numbers in one batch; expected at most {MAX_BENCH_ELEMENTS} (8 GiB of floats)"
        );
    }
    within("--steps", a.steps as u64, 1, MAX_BENCH_STEPS)?;
    within("--warmup", a.warmup as u64, 0, MAX_BENCH_STEPS)?;
    within("--threads", a.threads as u64, 0, darkmagic::recipe::MAX_THREADS as u64)?;
    let choice = parse_device(&a.device)?;
    let amp = darkmagic::recipe::Amp::deserialize(toml::Value::String(a.amp.clone()))
        .context("--amp: expected off, bf16 or fp16")?;
    runtime::configure_cpu(a.threads);
    let device = runtime::resolve_device(choice)?;
    let b = darkmagic::bench::TrainBench {
        arch: a.model,
        batch: a.batch,
        image: [c, h, w],
        classes: a.classes,
        steps: a.steps,
        warmup: a.warmup,
        device,
        channels_last: a.channels_last,
        amp: runtime::amp::resolve(amp, device),
    };
    let ips = darkmagic::bench::train_images_per_sec(&b);
    println!(
        "darkmagic train {:?} batch {} image {} device {device:?} threads {} channels_last {} amp {}: {ips:.1} images/s",
        a.model,
        a.batch,
        a.image,
        tch::get_num_threads(),
        a.channels_last,
        a.amp
    );
    Ok(())
}

fn parse_device(s: &str) -> Result<darkmagic::recipe::DeviceChoice> {
    darkmagic::recipe::DeviceChoice::deserialize(toml::Value::String(s.to_string()))
        .context("--device: expected auto, cpu or cuda")
}
