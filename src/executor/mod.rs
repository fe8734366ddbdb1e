//! Executors run trials: each trial is one `darkmagic train --run-dir D --resume` process, so a
//! crash or divergence ends one trial, never the checklist, and every executor (this machine,
//! Slurm, Ray) runs the very same command.
pub mod http;
pub mod local;
pub mod ray;
pub mod slurm;

use crate::error::{Error, Result};
use crate::rundir::{RunDir, Status};
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

/// Where and how the checklist's trials run, as `darkmagic checklist` takes it.
pub struct Settings {
    /// `local`, `slurm` or `ray`.
    pub kind: String,
    /// CPU threads per trial (a cluster task's CPUs).
    pub threads: usize,
    /// Cluster submissions per trial before it is recorded as failed.
    pub attempts: usize,
    /// GPUs per trial (Slurm: whole GPUs).
    pub gpus: f64,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    /// Extra `#SBATCH` lines.
    pub sbatch_lines: Vec<String>,
    /// Slurm: submit and return without waiting.
    pub detach: bool,
    pub ray_address: String,
    pub ray_token_file: Option<PathBuf>,
}

/// The executor `s.kind` names, checked: `local` runs on this machine as `local` says; the
/// cluster executors run the same binary as `local.exe` with checklist directory `root`.
pub fn build(s: &Settings, local: local::Local, root: &Path) -> Result<Box<dyn Executor>> {
    if s.attempts == 0 {
        return Err(Error::flag(
            "--attempts",
            "got 0; expected at least 1 submission per trial",
        ));
    }
    if s.threads > crate::recipe::MAX_THREADS {
        return Err(Error::flag(
            "--threads",
            format!("got {}; expected at most {}", s.threads, crate::recipe::MAX_THREADS),
        ));
    }
    if s.kind != "local" && s.threads == 0 {
        return Err(Error::flag(
            "--threads",
            format!("got 0; a {} task needs at least 1 CPU", s.kind),
        ));
    }
    let whole = s.gpus.fract() == 0.0;
    if !(s.gpus.is_finite() && (0.0..=MAX_GPUS).contains(&s.gpus)) || (s.kind == "slurm" && !whole) {
        return Err(Error::flag(
            "--gpus",
            format!(
                "got {:?}; expected a number from 0 to {MAX_GPUS} (a whole number for Slurm's --gres=gpu:N)",
                s.gpus
            ),
        ));
    }
    if s.kind == "ray" && crate::uri::credentials(&s.ray_address).is_some() {
        return Err(Error::flag(
            "--ray-address",
            format!(
                "{}: credentials in the address are not supported (darkmagic prints it); give the token with --ray-token-file",
                crate::uri::redacted(&s.ray_address)
            ),
        ));
    }
    let poll = std::time::Duration::from_millis(500);
    Ok(match s.kind.as_str() {
        "local" => Box::new(local),
        "slurm" => {
            let slurm = slurm::Slurm {
                exe: local.exe,
                root: root.to_path_buf(),
                cpus_per_task: s.threads,
                partition: s.partition.clone(),
                time: s.time.clone(),
                mem: s.mem.clone(),
                gpus: s.gpus as usize,
                extra: s.sbatch_lines.clone(),
                attempts: s.attempts,
                detach: s.detach,
                poll,
            };
            // Every value of the batch script is checked before anything runs.
            slurm.check()?;
            Box::new(slurm)
        }
        "ray" => Box::new(ray::Ray {
            exe: local.exe,
            address: s.ray_address.clone(),
            token: ray::Token::find(s.ray_token_file.as_deref())?,
            cpus: s.threads,
            gpus: s.gpus,
            attempts: s.attempts,
            poll,
        }),
        other => {
            return Err(Error::flag(
                "--executor",
                format!("unknown `{other}`; expected local, slurm or ray"),
            ));
        }
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
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    run.record_failure(reason, &tail, "unknown")
}

/// Makes a child process receive SIGKILL when its parent dies (`PR_SET_PDEATHSIG`): a killed
/// checklist leaves no trial writing into its run dirs (the rerun resumes them from
/// checkpoints), and a killed trial no external trainer running on.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGKILL: u64 = 9;
    unsafe extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    // SAFETY: prctl is async-signal-safe and only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut std::process::Command) {}

/// Quotes a string for a POSIX shell: `'...'`, with each `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
