//! Executors run trials: each trial is one `darkmagic train --run-dir D --resume` process, so a
//! crash or divergence ends one trial, never the checklist, and every executor (this machine,
//! Slurm, Ray) runs the very same command.
pub mod http;
pub mod local;
pub mod ray;
pub mod slurm;
pub mod strays;

use darkmagic_base::error::{Error, Result};
use darkmagic_base::rundir::{RunDir, Status};
use std::path::{Path, PathBuf};

/// One trial to run: its run directory (holding `recipe.toml`) and how to show it.
#[derive(Clone, Debug)]
pub struct Job {
    pub dir: PathBuf,
    pub label: String,
    pub epochs: usize,
}

/// Something that runs jobs to the end (completed, diverged or failed: each records its own
/// status in its run directory).
pub trait Executor {
    fn run_all(&mut self, jobs: &[Job]) -> Result<()>;
}

/// Most GPUs one trial may ask for (`--gpus`): more than any node holds.
pub const MAX_GPUS: f64 = 1024.0;

/// Where the checklist's trials run (`--executor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// This machine: its cores, or its GPUs.
    Local,
    /// A Slurm cluster: one `sbatch --array` per round.
    Slurm,
    /// A Ray cluster, through its Jobs API.
    Ray,
}

impl ExecutorKind {
    /// The name `--executor` takes.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
            ExecutorKind::Ray => "ray",
        }
    }
}

/// Where and how the checklist's trials run: the flags of `darkmagic checklist` that say so,
/// one struct from the command line to the executor.
#[derive(Clone, Debug, clap::Args)]
pub struct Settings {
    /// Where trials run: local (this machine), slurm (sbatch --array) or ray (Ray Jobs API).
    #[arg(long = "executor", value_name = "EXECUTOR", value_enum, default_value = "local")]
    pub kind: ExecutorKind,
    /// Trials run at once (default: one per GPU, else one per core).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// CPU threads per trial (default: cores / parallel; a cluster task's CPUs, default 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Trials packed on each GPU (sets --parallel to K x the GPU count): small trials leave a GPU
    /// mostly idle, so several at once finish more trials per hour.
    #[arg(long, value_name = "K")]
    pub trials_per_gpu: Option<usize>,
    /// Slurm: submit and return without waiting (refused with the other executors, whose trials
    /// run while the command runs).
    #[arg(long)]
    pub detach: bool,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm time limit per task, e.g. 01:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm memory per task, e.g. 8G.
    #[arg(long)]
    pub mem: Option<String>,
    /// GPUs per trial (Slurm: --gres=gpu:N; Ray: entrypoint_num_gpus).
    #[arg(long, default_value_t = 0.0)]
    pub gpus: f64,
    /// Extra #SBATCH line, repeatable: --sbatch-line=--account=lab.
    #[arg(long = "sbatch-line", value_name = "LINE")]
    pub sbatch_lines: Vec<String>,
    /// Cluster submissions per trial before it is recorded as failed (default 3; refused with
    /// the local executor, which runs each trial once: a rerun of the checklist resumes).
    #[arg(long)]
    pub attempts: Option<usize>,
    /// Ray dashboard address.
    #[arg(long, default_value = DEFAULT_RAY_ADDRESS)]
    pub ray_address: String,
    /// Ray: file holding the cluster's authentication token (default: RAY_AUTH_TOKEN, then
    /// RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token, as Ray's own clients look for it).
    #[arg(long, value_name = "FILE")]
    pub ray_token_file: Option<PathBuf>,
}

/// Ray's dashboard on this machine, `--ray-address`'s default.
pub const DEFAULT_RAY_ADDRESS: &str = "http://127.0.0.1:8265";

/// The most trials `--parallel` (and `--trials-per-gpu`) runs at once.
pub const MAX_PARALLEL: usize = 1024;
/// The most times `--attempts` submits one trial.
pub const MAX_ATTEMPTS: usize = 100;
/// Submissions per trial on a cluster without `--attempts`.
pub const DEFAULT_ATTEMPTS: usize = 3;

impl Settings {
    /// Every setting within what it can do, before anything runs: counts of processes and
    /// threads bounded (each is one this machine or a cluster would start), `--detach` only
    /// where something outlives this process (sbatch), GPUs a finite count, no credentials in
    /// the Ray address.
    pub fn check(&self) -> Result<()> {
        let within = Error::flag_within::<usize>;
        if self.detach && self.kind != ExecutorKind::Slurm {
            return Err(Error::flag(
                "--detach",
                format!(
                    "only the slurm executor submits the trials and returns; with --executor {} they run while this command runs",
                    self.kind.name()
                ),
            ));
        }
        if let Some(a) = self.attempts {
            within("--attempts", a, 1, MAX_ATTEMPTS)?;
        }
        self.check_applies()?;
        if let Some(p) = self.parallel {
            within("--parallel", p, 1, MAX_PARALLEL)?;
        }
        if let Some(k) = self.trials_per_gpu {
            within("--trials-per-gpu", k, 1, MAX_PARALLEL)?;
        }
        if let Some(t) = self.threads {
            within("--threads", t, 0, darkmagic_base::recipe::MAX_THREADS)?;
            // 0 means all cores only on this machine.
            if t == 0 && self.kind != ExecutorKind::Local {
                return Err(Error::flag(
                    "--threads",
                    format!("got 0; a {} task needs at least 1 CPU", self.kind.name()),
                ));
            }
        }
        let whole = self.gpus.fract() == 0.0;
        if !(self.gpus.is_finite() && (0.0..=MAX_GPUS).contains(&self.gpus))
            || (self.kind == ExecutorKind::Slurm && !whole)
        {
            return Err(Error::flag(
                "--gpus",
                format!(
                    "got {:?}; expected a number from 0 to {MAX_GPUS} (a whole number for Slurm's --gres=gpu:N)",
                    self.gpus
                ),
            ));
        }
        if self.kind == ExecutorKind::Ray && darkmagic_base::uri::credentials(&self.ray_address).is_some() {
            return Err(Error::flag(
                "--ray-address",
                format!(
                    "{}: credentials in the address are not supported (darkmagic prints it); give the token with --ray-token-file",
                    darkmagic_base::uri::redacted(&self.ray_address)
                ),
            ));
        }
        Ok(())
    }

    /// Every flag given applies to the executor chosen: a Slurm setting with `--executor local`
    /// or a Ray one with Slurm would be accepted and do nothing.
    fn check_applies(&self) -> Result<()> {
        let kind = self.kind;
        let given = [
            ("--partition", ExecutorKind::Slurm, self.partition.is_some()),
            ("--time", ExecutorKind::Slurm, self.time.is_some()),
            ("--mem", ExecutorKind::Slurm, self.mem.is_some()),
            ("--sbatch-line", ExecutorKind::Slurm, !self.sbatch_lines.is_empty()),
            ("--ray-token-file", ExecutorKind::Ray, self.ray_token_file.is_some()),
            (
                "--ray-address",
                ExecutorKind::Ray,
                self.ray_address != DEFAULT_RAY_ADDRESS,
            ),
        ];
        if let Some((flag, wants, _)) = given.iter().find(|(_, wants, set)| *set && *wants != kind) {
            return Err(Error::flag(
                *flag,
                format!(
                    "a {} setting; with --executor {} it would do nothing",
                    wants.name(),
                    kind.name()
                ),
            ));
        }
        if kind == ExecutorKind::Local && self.attempts.is_some() {
            return Err(Error::flag(
                "--attempts",
                "a cluster setting (submissions per trial); the local executor runs each trial once, and rerunning the \
                 checklist resumes the trials that failed",
            ));
        }
        if kind == ExecutorKind::Local && self.gpus != 0.0 {
            return Err(Error::flag(
                "--gpus",
                "a cluster setting (GPUs per task); the local executor gives trials the GPUs libtorch sees (--trials-per-gpu)",
            ));
        }
        Ok(())
    }

    /// This machine's share of trials and threads under these settings, with `gpus` GPUs.
    pub fn local(&self, gpus: usize) -> Result<local::Local> {
        local::Local::for_this_machine(gpus, self.parallel, self.threads, self.trials_per_gpu)
    }
}

/// The executor the settings name, checked ([`Settings::check`]): `local` runs on this machine as
/// `local` says; the cluster executors run the same binary as `local.exe` with checklist
/// directory `root`.
pub fn build(s: &Settings, local: local::Local, root: &Path) -> Result<Box<dyn Executor>> {
    s.check()?;
    let threads = s.threads.unwrap_or(1);
    let poll = std::time::Duration::from_millis(500);
    Ok(match s.kind {
        ExecutorKind::Local => Box::new(local),
        ExecutorKind::Slurm => {
            let slurm = slurm::Slurm {
                exe: local.exe,
                root: root.to_path_buf(),
                cpus_per_task: threads,
                partition: s.partition.clone(),
                time: s.time.clone(),
                mem: s.mem.clone(),
                gpus: s.gpus as usize,
                extra: s.sbatch_lines.clone(),
                attempts: s.attempts.unwrap_or(DEFAULT_ATTEMPTS),
                detach: s.detach,
                poll,
            };
            // Every value of the batch script is checked before anything runs.
            slurm.check()?;
            Box::new(slurm)
        }
        ExecutorKind::Ray => Box::new(ray::Ray {
            exe: local.exe,
            address: s.ray_address.clone(),
            token: ray::Token::find(s.ray_token_file.as_deref())?,
            cpus: threads,
            gpus: s.gpus,
            attempts: s.attempts.unwrap_or(DEFAULT_ATTEMPTS),
            poll,
        }),
    })
}

/// Why a job of a cluster round did not finish, and the cluster's log for it.
pub struct Unfinished {
    pub reason: String,
    pub log: PathBuf,
}

/// Runs cluster rounds until every job has a final result or `attempts` rounds are spent.
/// `round(pending, attempt)` runs the pending jobs once and returns, for each, what to record if
/// it ends without a final result; it returns None when it does not wait for them (detached).
/// Jobs still unfinished after the last round get `result.json` with status `failed`.
pub fn with_retries(
    jobs: &[Job],
    attempts: usize,
    mut round: impl FnMut(&[Job], usize) -> Result<Option<Vec<Unfinished>>>,
) -> Result<()> {
    let mut pending: Vec<Job> = jobs.to_vec();
    for attempt in 1..=attempts {
        let Some(outcomes) = round(&pending, attempt)? else {
            return Ok(());
        };
        let mut left = Vec::new();
        for (job, u) in pending.into_iter().zip(outcomes) {
            if finished(&job.dir)? {
                continue;
            }
            println!("{}: {}", job.label, u.reason);
            if attempt == attempts {
                record_failure(&job.dir, &format!("{} (attempt {attempt})", u.reason), &u.log)?;
            } else {
                left.push(job);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        pending = left;
    }
    Ok(())
}

/// Whether a trial's run dir holds a final result (completed, diverged or stopped early):
/// nothing to rerun. A result that cannot be read is an error naming it, not a reason to train
/// over it.
pub fn finished(dir: &Path) -> Result<bool> {
    let r = RunDir::open(dir).read_result()?;
    Ok(r.is_some_and(|r| matches!(r.status, Status::Completed | Status::Diverged | Status::Stopped)))
}

/// Records that a trial ended without a result (its process crashed or was killed, or a
/// cluster gave up on it): `result.json` with status `failed`, the reason and the tail of the
/// trial's output log, unless the trial wrote its own result.
pub fn record_failure(dir: &Path, reason: &str, log: &Path) -> Result<()> {
    let run = RunDir::open(dir);
    if run.read_result()?.is_some() {
        return Ok(());
    }
    let text = darkmagic_base::files::tail(log, darkmagic_base::rundir::LOG_TAIL_BYTES);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    run.record_failure(reason, &tail, "unknown")
}

/// The signal a child gets when its parent dies ([`die_with_parent`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentDeath {
    /// SIGKILL: for a process that must not outlive its parent by a moment (an external trainer).
    Kill,
    /// SIGTERM: for a `darkmagic train` trial, which ends at once but first kills what its
    /// external trainer left running (`strays`).
    Term,
}

/// Makes a child process receive `signal` when its parent dies (`PR_SET_PDEATHSIG`): a killed
/// checklist leaves no trial writing into its run dirs (the rerun resumes them from
/// checkpoints), and a killed trial no external trainer running on.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut std::process::Command, signal: ParentDeath) {
    use std::os::unix::process::CommandExt;
    const PR_SET_PDEATHSIG: i32 = 1;
    let signal: u64 = match signal {
        ParentDeath::Kill => 9,
        ParentDeath::Term => 15,
    };
    unsafe extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    // SAFETY: prctl is async-signal-safe and only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(move || {
            prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut std::process::Command, _signal: ParentDeath) {}

/// Quotes a string for a POSIX shell: `'...'`, with each `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
