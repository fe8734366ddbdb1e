//! The Slurm executor: the trials of a phase become one `sbatch --array` job whose task i runs
//! `darkmagic train --run-dir <dir i> --resume`. Progress is polled with `squeue` and the end
//! states read with `scontrol` (`sacct` may be disabled). Trials without a final result
//! (FAILED, CANCELLED, TIMEOUT, NODE_FAIL, PREEMPTED tasks, or a `failed` run) are resubmitted
//! and resume from their checkpoints, up to `attempts` submissions. The generated batch script
//! is kept in `<root>/slurm/` for the user to inspect, beside the tasks' Slurm output.
//!
//! Nothing unchecked reaches the script: every resource value is validated against Slurm's own
//! syntax before anything is written (a newline would end the `#SBATCH` block and run as a
//! command), run dirs and the binary are single-quoted, and the output path, which may hold any
//! character but a newline, goes to `sbatch` as an argument (no shell) with `%` written `%%`
//! so that Slurm does not read it as a filename pattern.
use super::{Executor, Job, Unfinished, shell_quote, with_retries};
use darkmagic_base::error::{Error, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Resources and behaviour of the Slurm submissions.
#[derive(Clone, Debug)]
pub struct Slurm {
    pub exe: PathBuf,
    /// The checklist directory: scripts and Slurm output go to `<root>/slurm/`.
    pub root: PathBuf,
    pub cpus_per_task: usize,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    /// GPUs per task (`--gres=gpu:N`); 0 for none.
    pub gpus: usize,
    /// Extra `#SBATCH` lines, e.g. `--account=abc`.
    pub extra: Vec<String>,
    /// Submissions per trial before it is recorded as failed.
    pub attempts: usize,
    /// Submit and return without waiting.
    pub detach: bool,
    pub poll: Duration,
}

/// Runs a Slurm client command and returns its stdout, or an error with its stderr.
fn slurm(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| Error::io(cmd, e))?;
    if !out.status.success() {
        return Err(Error::service(
            "slurm",
            cmd,
            format!(
                "`{cmd} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks `value` of option `flag` character by character; `expected` says what is allowed.
fn check_chars(flag: &str, value: &str, ok: impl Fn(char) -> bool, expected: &str) -> Result<()> {
    if !value.is_empty() && value.chars().all(ok) {
        return Ok(());
    }
    Err(Error::flag(flag, format!("got {value:?}; expected {expected}")))
}

/// A number field of a Slurm value: 1 to 9 digits (no overflow in Slurm's own parsing).
fn slurm_number(p: &str) -> bool {
    (1..=9).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

/// The sbatch options darkmagic writes itself (long, short): a `--sbatch-line` may not set them
/// again (a second `--array` would run tasks without a trial folder).
const OWN_OPTIONS: [(&str, &str); 10] = [
    ("--array", "-a"),
    ("--output", "-o"),
    ("--error", "-e"),
    ("--chdir", "-D"),
    ("--job-name", "-J"),
    ("--cpus-per-task", "-c"),
    ("--partition", "-p"),
    ("--time", "-t"),
    ("--mem", "--mem"),
    ("--gres", "--gres"),
];

/// Slurm's `--time` syntax (sbatch(1)): `minutes`, `minutes:seconds`, `hours:minutes:seconds`,
/// `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`, or `UNLIMITED`/`INFINITE`;
/// after a day or an hour field, hours are below 24 and minutes and seconds below 60.
fn slurm_time(t: &str) -> bool {
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
        return true;
    }
    let (days, clock) = match t.split_once('-') {
        Some((d, c)) => (Some(d), c),
        None => (None, t),
    };
    let fields: Vec<&str> = clock.split(':').collect();
    if !(days.is_none_or(slurm_number) && fields.len() <= 3 && fields.iter().all(|f| slurm_number(f))) {
        return false;
    }
    let v: Vec<u64> = fields.iter().map(|f| f.parse().expect("digits")).collect();
    // The fields' limits, leftmost first: with days, hours:minutes:seconds; without, the first
    // field is unbounded (minutes, or hours of H:M:S) and the rest below 60.
    let limits: &[u64] = match (days.is_some(), v.len()) {
        (true, _) => &[24, 60, 60],
        (false, 3) => &[u64::MAX, 60, 60],
        (false, _) => &[u64::MAX, 60],
    };
    let minutes = match (days, v.as_slice()) {
        (Some(d), hms) => {
            d.parse::<u64>().expect("digits") * 1440
                + hms.first().map_or(0, |h| h * 60)
                + hms.get(1).copied().unwrap_or(0)
        }
        (None, [h, m, _]) => h * 60 + m,
        (None, [m, ..]) => *m,
        (None, []) => 0,
    };
    // Slurm keeps a limit as 32-bit minutes, all ones meaning INFINITE.
    v.iter().zip(limits).all(|(x, lim)| x < lim) && minutes < u64::from(u32::MAX)
}

/// Slurm's `--mem` syntax: a whole size, megabytes by default, with at most one unit suffix.
fn slurm_mem(m: &str) -> bool {
    let digits = m.strip_suffix(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']).unwrap_or(m);
    (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Slurm {
    /// Checks every value that goes into a batch script or an `sbatch` argument.
    pub fn check(&self) -> Result<()> {
        let root = self.root.to_string_lossy();
        if root.chars().any(|c| c.is_control() || c == '\\') {
            return Err(Error::flag(
                "--out",
                format!("{root:?}: a Slurm output path cannot hold control characters (newlines) or backslashes"),
            ));
        }
        if self.cpus_per_task == 0 {
            return Err(Error::flag("--threads", "Slurm needs at least 1 CPU per task"));
        }
        let name = |c: char| c.is_ascii_alphanumeric() || "_.,-".contains(c);
        if let Some(p) = &self.partition {
            check_chars(
                "--partition",
                p,
                name,
                "partition names: letters, digits, `_.-`, comma-separated",
            )?;
        }
        if let Some(t) = self.time.as_deref().filter(|t| !slurm_time(t)) {
            return Err(Error::flag(
                "--time",
                format!("got {t:?}; expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED"),
            ));
        }
        if let Some(m) = self.mem.as_deref().filter(|m| !slurm_mem(m)) {
            return Err(Error::flag(
                "--mem",
                format!(
                    "got {m:?}; expected a size in megabytes, or with one unit K, M, G or T, such as 8000, 16G or 512M"
                ),
            ));
        }
        for line in &self.extra {
            if !line.starts_with('-') || line.chars().any(char::is_control) {
                return Err(Error::flag(
                    "--sbatch-line",
                    format!("got {line:?}; expected one sbatch option on one line, e.g. --account=lab"),
                ));
            }
            // Every option on the line, long ones by any abbreviation sbatch takes (getopt's
            // unambiguous prefixes: `--arr` is `--array`), short ones with their value attached.
            let sets = |token: &str, (long, short): &(&str, &str)| match token.strip_prefix("--") {
                Some(rest) => {
                    let name = rest.split('=').next().unwrap_or_default();
                    !name.is_empty() && long.trim_start_matches('-').starts_with(name)
                }
                // Short options bundle (`-Qa0-9` is `-Q -a 0-9`): any own letter in the token.
                None => short.len() == 2 && token[1..].contains(&short[1..]),
            };
            let own = line
                .split_whitespace()
                .filter(|t| t.starts_with('-'))
                .find_map(|t| OWN_OPTIONS.iter().find(|o| sets(t, o)));
            if let Some(own) = own {
                return Err(Error::flag(
                    "--sbatch-line",
                    format!(
                        "got {line:?}: darkmagic sets {} itself (the array of trials, their logs, their folder, the \
                         job's name, the resources its own flags give); use --partition, --time, --mem, --gpus or \
                         --threads for those",
                        own.0
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `sbatch`'s `--output` for the tasks' logs, `<root>/slurm/%A_%a.out`, with the `%` of the
    /// path doubled so that only darkmagic's own patterns are expanded.
    fn output_arg(&self) -> String {
        let dir = self.root.join("slurm").to_string_lossy().replace('%', "%%");
        format!("--output={dir}/%A_%a.out")
    }

    /// The batch script of one array job over `jobs`.
    pub fn script(&self, jobs: &[Job]) -> String {
        let mut s = String::from("#!/bin/bash\n#SBATCH --job-name=darkmagic\n");
        s.push_str(&format!("#SBATCH --array=0-{}\n", jobs.len() - 1));
        s.push_str(&format!("# sbatch {} (given on the command line)\n", self.output_arg()));
        s.push_str(&format!("#SBATCH --cpus-per-task={}\n", self.cpus_per_task));
        for (flag, value) in [("partition", &self.partition), ("time", &self.time), ("mem", &self.mem)] {
            if let Some(v) = value {
                s.push_str(&format!("#SBATCH --{flag}={v}\n"));
            }
        }
        if self.gpus > 0 {
            s.push_str(&format!("#SBATCH --gres=gpu:{}\n", self.gpus));
        }
        for line in &self.extra {
            s.push_str(&format!("#SBATCH {line}\n"));
        }
        s.push_str("dirs=(\n");
        for j in jobs {
            s.push_str(&format!("  {}\n", shell_quote(&j.dir.to_string_lossy())));
        }
        s.push_str(")\n");
        s.push_str(&format!(
            "exec {} train --run-dir \"${{dirs[$SLURM_ARRAY_TASK_ID]}}\" --resume --threads \"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
            shell_quote(&self.exe.to_string_lossy())
        ));
        s
    }

    /// Writes the script under `<root>/slurm/` as `submit-<k>.sh`, the first number not yet
    /// used (one per round and attempt, all kept), and submits it; returns the array job id.
    fn submit(&self, jobs: &[Job]) -> Result<String> {
        let dir = self.root.join("slurm");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = (1..)
            .map(|k| dir.join(format!("submit-{k}.sh")))
            .find(|p| !p.exists())
            .expect("a free script name");
        darkmagic_base::files::write_atomic(&path, self.script(jobs).as_bytes())?;
        let id = slurm("sbatch", &["--parsable", &self.output_arg(), &path.to_string_lossy()])?;
        Ok(id.trim().split(';').next().unwrap_or_default().to_string())
    }

    /// Waits until `squeue` lists no task of array job `id`.
    fn wait(&self, id: &str) -> Result<()> {
        while !slurm("squeue", &["-h", "-j", id, "-o", "%i %T"])?.trim().is_empty() {
            std::thread::sleep(self.poll);
        }
        Ok(())
    }
}

/// The end state of each task of array job `id`, from `scontrol -o show job` (index -> state).
pub fn task_states(id: &str) -> Result<Vec<(usize, String)>> {
    let text = slurm("scontrol", &["-o", "show", "job", id])?;
    Ok(parse_task_states(&text))
}

fn parse_task_states(text: &str) -> Vec<(usize, String)> {
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .map(String::from)
    };
    let mut out: Vec<(usize, String)> = text
        .lines()
        .filter_map(|l| Some((field(l, "ArrayTaskId=")?.parse().ok()?, field(l, "JobState=")?)))
        .collect();
    out.sort();
    out
}

impl Executor for Slurm {
    fn run_all(&mut self, jobs: &[Job]) -> Result<()> {
        self.check()?;
        with_retries(jobs, self.attempts, |pending, attempt| {
            let id = self.submit(pending)?;
            println!(
                "submitted Slurm array job {id}: {} trial(s), attempt {attempt}",
                pending.len()
            );
            if self.detach {
                println!(
                    "detached; follow with `darkmagic checklist --status {}`",
                    self.root.display()
                );
                return Ok(None);
            }
            self.wait(&id)?;
            let states = task_states(&id)?;
            let state_of = |i: usize| {
                states
                    .iter()
                    .find(|s| s.0 == i)
                    .map_or("UNKNOWN".to_string(), |s| s.1.clone())
            };
            let outcomes = (0..pending.len())
                .map(|i| Unfinished {
                    reason: format!("Slurm task {id}_{i} ended {} without a final result", state_of(i)),
                    log: self.root.join("slurm").join(format!("{id}_{i}.out")),
                })
                .collect();
            Ok(Some(outcomes))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_and_memory_follow_slurms_syntax() {
        for ok in [
            "60",
            "30:00",
            "01:00:00",
            "2-12",
            "2-12:30",
            "2-12:30:00",
            "UNLIMITED",
            "infinite",
        ] {
            assert!(slurm_time(ok), "{ok}");
        }
        for bad in [
            "",
            "1:2:3:4",
            "1-2-3",
            "-5",
            "1:",
            "a",
            "1e3",
            "1234567890",
            "2-",
            "01:00:00\n",
            "00:61:00",
            "1-25:00:00",
            "99999999:00:00",
            "30:60",
        ] {
            assert!(!slurm_time(bad), "{bad:?}");
        }
        for ok in ["8000", "16G", "512m", "1T", "4k"] {
            assert!(slurm_mem(ok), "{ok}");
        }
        for bad in ["", "G", "16GGGGkK", "16GB", "1.5G", "-1", "1234567890123456"] {
            assert!(!slurm_mem(bad), "{bad:?}");
        }
    }

    #[test]
    fn script_has_resources_dirs_and_the_train_command() {
        let s = Slurm {
            exe: "/opt/dm/darkmagic".into(),
            root: "/runs/c".into(),
            cpus_per_task: 2,
            partition: Some("gpu".into()),
            time: Some("01:00:00".into()),
            mem: None,
            gpus: 1,
            extra: vec!["--account=lab".into()],
            attempts: 3,
            detach: false,
            poll: Duration::from_secs(1),
        };
        let jobs = [
            Job {
                dir: "/runs/c/trials/baseline/seed-0".into(),
                label: "b".into(),
                epochs: 1,
            },
            Job {
                dir: "/runs/c/trials/it's/seed-0".into(),
                label: "v".into(),
                epochs: 1,
            },
        ];
        let text = s.script(&jobs);
        for line in [
            "#SBATCH --array=0-1",
            "# sbatch --output=/runs/c/slurm/%A_%a.out (given on the command line)",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=01:00:00",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --account=lab",
            "  '/runs/c/trials/baseline/seed-0'",
            "  '/runs/c/trials/it'\\''s/seed-0'",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("--mem"));
        s.check().expect("the flags above are sound");
        for own in [
            "--array=0-99999",
            "-a 0-9",
            "--output=/tmp/x",
            "--chdir=/",
            "--job-name=a b",
            "-J x",
            "--gres=gpu:8",
            "--arr=0-99999",
            "--outp=/x",
            "--cpus-per=9",
            "-a0-5",
            "-o/etc/x",
            "-vvv --array=1",
            "-Qa0-99999",
            "-vD/",
            "-WJx",
        ] {
            let bad = Slurm {
                extra: vec![own.into()],
                ..s.clone()
            };
            let e = bad.check().unwrap_err().to_string();
            assert!(
                e.contains("--sbatch-line") && e.contains("darkmagic sets"),
                "{own}: {e}"
            );
        }
        assert!(text.ends_with("exec '/opt/dm/darkmagic' train --run-dir \"${dirs[$SLURM_ARRAY_TASK_ID]}\" --resume --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n"));
    }

    #[test]
    fn task_states_are_read_from_scontrol() {
        let text = "JobId=4 ArrayJobId=2 ArrayTaskId=1 JobName=x JobState=FAILED Reason=NonZeroExitCode\n\
                    JobId=3 ArrayJobId=2 ArrayTaskId=0 JobName=x JobState=COMPLETED Reason=None\n\
                    JobId=5 ArrayJobId=2 ArrayTaskId=2 JobName=x JobState=CANCELLED Reason=None\n";
        assert_eq!(
            parse_task_states(text),
            vec![(0, "COMPLETED".into()), (1, "FAILED".into()), (2, "CANCELLED".into())]
        );
    }
}
