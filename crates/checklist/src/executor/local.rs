//! The local executor: up to `parallel` trial processes at once on this machine, `threads` CPU
//! threads each; with GPUs, each trial is pinned to one with `CUDA_VISIBLE_DEVICES`, round-robin,
//! so `parallel` = K x the GPU count packs K trials on every GPU (small trials leave most of a
//! GPU idle alone: BENCHMARKS.md measures packing). A live view shows each running
//! trial's epoch and an overall ETA; each trial's output goes to `stdout.log` in its run dir.
use super::{Executor, Job};
use darkmagic_base::error::{Error, Result};
use darkmagic_base::rundir::Status;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Local {
    /// The `darkmagic` binary to run.
    pub exe: PathBuf,
    pub parallel: usize,
    pub threads: usize,
    /// GPU indices to pin trials to (trial slot `s` runs on `gpus[s % gpus.len()]`); empty for CPU.
    pub gpus: Vec<usize>,
}

struct Running {
    child: Child,
    job: Job,
    slot: usize,
    bar: ProgressBar,
}

/// Trials at once and threads per trial on `cores` cores and `gpus` GPUs, from the flags given.
fn share(
    cores: usize,
    gpus: usize,
    parallel: Option<usize>,
    threads: Option<usize>,
    trials_per_gpu: Option<usize>,
) -> Result<(usize, usize)> {
    let flag = |message: &str| Err(Error::flag("--trials-per-gpu", message));
    let parallel = match (parallel, trials_per_gpu) {
        (Some(_), Some(_)) => return flag("give --parallel or --trials-per-gpu, not both"),
        (_, Some(0)) => return flag("got 0; expected at least 1 trial per GPU"),
        (_, Some(_)) if gpus == 0 => return flag("libtorch sees no GPU here; use --parallel for CPU trials"),
        (Some(p), None) => p,
        (None, k) if gpus > 0 => gpus * k.unwrap_or(1),
        (None, _) => cores,
    }
    .max(1);
    Ok((parallel, threads.unwrap_or((cores / parallel).max(1))))
}

impl Local {
    /// Defaults from the machine: `trials_per_gpu` (default 1) trials per GPU when libtorch
    /// sees `gpus` GPUs (numbered from 0), else one single-threaded trial per core; the cores are
    /// shared out among the trials unless `threads` says otherwise.
    pub fn for_this_machine(
        gpus: usize,
        parallel: Option<usize>,
        threads: Option<usize>,
        trials_per_gpu: Option<usize>,
    ) -> Result<Local> {
        let exe = darkmagic_base::launcher::self_command()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let gpus: Vec<usize> = (0..gpus).collect();
        let (parallel, threads) = share(cores, gpus.len(), parallel, threads, trials_per_gpu)?;
        Ok(Local {
            exe,
            parallel,
            threads,
            gpus,
        })
    }

    fn spawn(&self, job: &Job, slot: usize) -> Result<Child> {
        let log = job.dir.join("stdout.log");
        let out = darkmagic_base::files::open_append(&log)?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("train")
            .arg("--run-dir")
            .arg(&job.dir)
            .arg("--resume")
            .arg("--threads")
            .arg(self.threads.to_string());
        if !self.gpus.is_empty() {
            cmd.env("CUDA_VISIBLE_DEVICES", self.gpus[slot % self.gpus.len()].to_string());
        }
        super::die_with_parent(&mut cmd, super::ParentDeath::Term);
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(&self.exe, e))
    }
}

/// How a trial process ended, in words: its exit code or the signal that killed it.
fn exit_reason(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("the trial process was killed by signal {signal}");
    }
    format!(
        "the trial process exited with status {} without writing result.json",
        status.code().unwrap_or(-1)
    )
}

/// Epochs a run directory has recorded so far.
fn epochs_done(job: &Job) -> usize {
    std::fs::read_to_string(job.dir.join(darkmagic_base::rundir::METRICS)).map_or(0, |t| t.lines().count())
}

impl Executor for Local {
    fn run_all(&mut self, jobs: &[Job]) -> Result<()> {
        let multi = console();
        let total: usize = jobs.iter().map(|j| j.epochs).sum();
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} epochs, eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let trial_style = ProgressStyle::with_template("  {prefix:40} [{bar:20}] epoch {pos}/{len}")
            .expect("valid template")
            .progress_chars("=> ");
        // A trial's descendants come back to this process if its `darkmagic train` is killed
        // (which would otherwise leave them to init): ended below, once that trial has ended.
        super::strays::adopt();
        let mut queue: std::collections::VecDeque<Job> = jobs.iter().cloned().collect();
        let mut running: Vec<Running> = Vec::new();
        let (mut finished, mut done_epochs) = (0usize, 0usize);
        while !queue.is_empty() || !running.is_empty() {
            while running.len() < self.parallel {
                let Some(job) = queue.pop_front() else { break };
                let slot = (0..self.parallel)
                    .find(|s| !running.iter().any(|r| r.slot == *s))
                    .unwrap_or(0);
                let bar = multi.add(ProgressBar::new(job.epochs as u64));
                bar.set_style(trial_style.clone());
                bar.set_prefix(job.label.clone());
                running.push(Running {
                    child: self.spawn(&job, slot)?,
                    job,
                    slot,
                    bar,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
            let mut i = 0;
            while i < running.len() {
                let r = &mut running[i];
                r.bar.set_position(epochs_done(&r.job) as u64);
                match r.child.try_wait().map_err(|e| Error::io(&r.job.dir, e))? {
                    None => i += 1,
                    Some(status) => {
                        let r = running.swap_remove(i);
                        let live: Vec<u32> = running.iter().map(|r| r.child.id()).collect();
                        super::strays::end_all_but(&live);
                        finished += 1;
                        done_epochs += r.job.epochs;
                        // A process that crashed (panic, abort, signal) wrote no result.json:
                        // record it as failed, with the end of its output, rather than leave
                        // it looking unfinished.
                        let log = r.job.dir.join("stdout.log");
                        super::record_failure(&r.job.dir, &exit_reason(status), &log)?;
                        let ended = darkmagic_base::rundir::RunDir::open(&r.job.dir).read_result();
                        let what = match ended.ok().flatten().map(|r| r.status) {
                            Some(Status::Completed) if status.success() => "done",
                            Some(Status::Stopped) => "stopped early, far below its baseline trial (see its train.log)",
                            Some(Status::Diverged) => "diverged (see its train.log)",
                            _ => "ended with an error (see its train.log)",
                        };
                        multi.suspend(|| println!("[{finished}/{}] {} {what}", jobs.len(), r.job.label));
                        r.bar.finish_and_clear();
                        multi.remove(&r.bar);
                    }
                }
            }
            let live: usize = running.iter().map(|r| epochs_done(&r.job)).sum();
            overall.set_prefix(format!("{finished}/{} trials", jobs.len()));
            overall.set_position((done_epochs + live) as u64);
        }
        overall.finish_and_clear();
        multi.remove(&overall);
        Ok(())
    }
}

/// The live progress view of the trials running on this machine (one per process: the
/// terminal is one).
fn console() -> &'static MultiProgress {
    static CONSOLE: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();
    CONSOLE.get_or_init(MultiProgress::new)
}

/// Prints `line` on standard error above the progress view, which a plain `eprintln!` from
/// another thread (the MLflow watcher's warning) would cut through.
pub fn warn(line: &str) {
    console().suspend(|| eprintln!("{line}"));
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn trials_and_threads_are_shared_out_over_cores_and_gpus() {
        // (cores, gpus, --parallel, --threads, --trials-per-gpu) -> (parallel, threads)
        assert_eq!(share(16, 0, None, None, None).unwrap(), (16, 1));
        assert_eq!(share(16, 1, None, None, None).unwrap(), (1, 16));
        assert_eq!(share(16, 1, None, None, Some(3)).unwrap(), (3, 5));
        assert_eq!(share(16, 2, None, None, Some(4)).unwrap(), (8, 2));
        assert_eq!(share(16, 2, Some(5), Some(2), None).unwrap(), (5, 2));
        assert_eq!(share(2, 1, None, None, Some(4)).unwrap(), (4, 1));
        let err = |r: darkmagic_base::error::Result<(usize, usize)>| r.unwrap_err().to_string();
        assert!(err(share(16, 1, Some(2), None, Some(2))).contains("not both"));
        assert!(err(share(16, 1, None, None, Some(0))).contains("at least 1"));
        assert!(err(share(16, 0, None, None, Some(2))).contains("no GPU"));
    }
}
