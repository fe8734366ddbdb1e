//! External trainers: a user's own training script (timm's `train.py`, torchvision's
//! references, anything with a command line) run as one trial of the checklist.
//!
//! `darkmagic train --run-dir D` on a recipe with an `[external]` section runs the command in
//! `D` instead of darkmagic's trainer, streams its output into `train.log`, reads its metric
//! when it exits, and writes `metrics.jsonl` (one line per row of a metric CSV) and
//! `result.json` as a darkmagic run would. Executors, analysis and report then treat it as any
//! other trial. A trainer that cannot start, exits with an error, runs past `external.timeout`,
//! or leaves no finite metric ends the trial as `failed`, with its output's tail in the report.
use crate::executor::strays;
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::{ExternalConfig, MetricRow, MetricSource, Recipe};
use darkmagic_base::rundir::{EpochMetrics, RunDir, RunResult, Status};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest magnitude a trainer's metric may have (an accuracy, a loss, a score).
pub const MAX_METRIC: f64 = darkmagic_base::rundir::MAX_EXTERNAL_METRIC;

fn failed(message: impl Into<String>) -> Error {
    Error::Trainer {
        message: message.into(),
    }
}

/// `s` with the placeholders `{run_dir}`, `{seed}`, `{epochs}`, `{data}` and `{threads}` filled;
/// `{data}` and `{run_dir}` absolute. One pass, left to right: a value is never expanded again
/// (a data path holding `{seed}` stays that path), and any other text in braces stays as it is.
fn expand(s: &str, recipe: &Recipe, run_dir: &Path) -> String {
    let data = recipe.data.path.as_deref().map(absolute).unwrap_or_default();
    let values = [
        ("{run_dir}", absolute(run_dir)),
        ("{seed}", recipe.seed.to_string()),
        ("{epochs}", recipe.train.epochs.to_string()),
        ("{data}", data),
        ("{threads}", recipe.train.threads.to_string()),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match values.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `p` made absolute against this process's working directory (where the checklist runs, as
/// for darkmagic's own `data.path`): the trainer itself runs in its run dir.
fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The trainer's argument vector: the command (relative paths in it made absolute), then each
/// flag of `external.args` in name order (`true`: the bare flag; `false`: left out; an array: the flag and every value).
pub fn command_line(recipe: &Recipe, ext: &ExternalConfig, run_dir: &Path) -> Vec<String> {
    let text = |v: &toml::Value| match v {
        toml::Value::String(s) => expand(s, recipe, run_dir),
        other => other.to_string(),
    };
    // A relative path in the command (`tests/fixtures/timm/train.py`) is one from here; other
    // elements with a `/` (a `sh -c` script naming files) stay as written.
    let mut argv: Vec<String> = ext
        .command
        .iter()
        .map(|c| expand(c, recipe, run_dir))
        .map(|c| {
            if c.contains('/') && Path::new(&c).exists() {
                absolute(Path::new(&c))
            } else {
                c
            }
        })
        .collect();
    for (flag, value) in &ext.args {
        match value {
            toml::Value::Boolean(false) => {}
            toml::Value::Boolean(true) => argv.push(flag.clone()),
            toml::Value::Array(items) => {
                argv.push(flag.clone());
                argv.extend(items.iter().map(text));
            }
            v => {
                argv.push(flag.clone());
                argv.push(text(v));
            }
        }
    }
    argv
}

/// The trainer's extra environment: `external.env` with placeholders filled, plus unbuffered
/// Python output and `OMP_NUM_THREADS` from `train.threads` (when not 0) unless set there.
fn environment(recipe: &Recipe, ext: &ExternalConfig, run_dir: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ext
        .env
        .iter()
        .map(|(k, v)| (k.clone(), expand(v, recipe, run_dir)))
        .collect();
    let mut default = |k: &str, v: String| {
        if !ext.env.contains_key(k) {
            env.push((k.into(), v));
        }
    };
    default("PYTHONUNBUFFERED", "1".into());
    if recipe.train.threads > 0 {
        default("OMP_NUM_THREADS", recipe.train.threads.to_string());
    }
    env
}

/// Where the metric comes from, in words: `eval_top1 (last row of timm/summary.csv) x 0.01`.
pub fn describe(m: &MetricSource) -> String {
    let key = m.key.as_deref().unwrap_or_default();
    let source = match (&m.csv, &m.json, &m.regex) {
        (Some(csv), _, _) => format!("{key} ({:?} row of {csv})", m.row).to_lowercase(),
        (_, Some(json), _) => format!("{key} of {json}"),
        (_, _, Some(r)) => format!("match of `{r}` in its output"),
        _ => String::new(),
    };
    if m.scale == 1.0 {
        source
    } else {
        format!("{source} x {}", m.scale)
    }
}

/// Checks, before any trial starts, that the trainer's program exists on this machine (a path to
/// a file, or a name found on `PATH`) and that its metric file is none of darkmagic's own
/// records in the run dir (the trainer would write over it).
pub fn check_command(ext: &ExternalConfig) -> Result<()> {
    for (key, file, rel) in ext.metric.files() {
        let first = Path::new(rel).components().find_map(|c| match c {
            std::path::Component::Normal(n) => n.to_str(),
            _ => None,
        });
        if let Some(own) = first.filter(|n| darkmagic_base::rundir::is_own(n)) {
            return Err(Error::recipe(
                key,
                format!(
                    "`{file}`: `{own}` is darkmagic's own record in the run dir; have the trainer write its metric to another file"
                ),
            ));
        }
    }
    let program = Path::new(&ext.command[0]);
    let found = if program.components().count() > 1 {
        program.is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
    };
    if found {
        Ok(())
    } else {
        Err(Error::recipe(
            "external.command",
            format!("`{}` not found: not a file, nor a program on PATH", program.display()),
        ))
    }
}

/// The files `ext.command` names by path (with a `/`, no placeholder), as given: the trainer's
/// scripts and interpreter, whose bytes the checklist records with each trial so that a rerun
/// after an edit is refused rather than mixing two trainers in one comparison.
pub fn code_files(ext: &ExternalConfig) -> Vec<std::path::PathBuf> {
    ext.command
        .iter()
        .filter(|a| a.contains('/') && !a.contains('{'))
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}

/// Runs the external trainer of `recipe` in `dir` and records its result (see the module doc).
/// An error means the trial failed; the caller records it.
pub fn run(recipe: &Recipe, ext: &ExternalConfig, dir: &RunDir) -> Result<RunResult> {
    check_command(ext)?;
    let argv = command_line(recipe, ext, &dir.path);
    let env = environment(recipe, ext, &dir.path);
    check_outputs(&argv, &env, &dir.path)?;
    // A rerun reads only what this run writes: trainers such as timm append to their CSV.
    if let Some(stale) = stale_metric_file(&ext.metric, recipe, &dir.path) {
        let _ = std::fs::remove_file(stale);
    }
    let quoted: Vec<String> = argv.iter().map(|a| crate::executor::shell_quote(a)).collect();
    dir.log(&format!("external trainer: {}", quoted.join(" ")));
    let start = Instant::now();
    let output = execute(&argv, &env, dir, ext)?;
    let wall = start.elapsed().as_secs_f64();
    let (value, curve) = read_metric(&ext.metric, recipe, &dir.path, &output)?;
    let metrics = epochs(&curve, value, recipe.train.epochs, wall);
    dir.write_metrics(&metrics)?;
    let events = darkmagic_base::tensorboard::EventWriter::create(&dir.path)?;
    for m in &metrics {
        events.scalars(m.epoch as i64, &m.scalars())?;
    }
    let mut r = RunResult::from_metrics(Status::Completed, &metrics, wall, "external".into(), 0);
    r.final_val_acc = Some(value);
    dir.log(&format!("completed: metric {value}"));
    dir.write_result(&r)?;
    Ok(r)
}

/// Refuses, before the trainer starts, an argument or environment value (or the value of a
/// `--flag=value`) that names darkmagic's own files: a record of the run dir (`trial.json`,
/// `result.json`, ...), or, for a checklist's trial (`<checklist>/trials/<arm>/seed-<k>`),
/// anything of the checklist outside the trial's own run dir (`design.json`, another trial):
/// the trainer would write over them. Paths are taken from the run dir, where the trainer runs,
/// with `..` resolved; only text that can be a path (holding a `/` or a `.`) is looked at.
fn check_outputs(argv: &[String], env: &[(String, String)], run_dir: &Path) -> Result<()> {
    // Canonical, as `through_links` makes every path compared with it.
    let dir = lexical(&std::path::absolute(run_dir).map_err(|e| Error::io(run_dir, e))?);
    let dir = dir.canonicalize().unwrap_or(dir);
    let checklist = dir
        .parent()
        .and_then(Path::parent)
        .filter(|t| t.file_name().is_some_and(|n| n == "trials"))
        .and_then(Path::parent);
    let values = argv[1..]
        .iter()
        .map(String::as_str)
        .chain(env.iter().map(|(_, v)| v.as_str()));
    // Each value, each word of it (a `sh -c` script names files among its words), and what
    // follows a `=` (`--out=FILE`).
    let words = values.flat_map(|v| {
        let mut w: Vec<&str> = v
            .split(|c: char| c.is_whitespace() || ";|&<>'\"()`".contains(c))
            .collect();
        w.push(v);
        w.into_iter()
            .flat_map(|t| [Some(t), t.split_once('=').map(|x| x.1)])
            .flatten()
    });
    for text in words {
        if text.is_empty() || !(text.contains('/') || text.contains('.')) || text.contains(char::is_whitespace) {
            continue;
        }
        let path = through_links(&lexical(&dir.join(text)));
        let own = path.parent() == Some(dir.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(darkmagic_base::rundir::is_own)
            || darkmagic_base::rundir::is_own_path(&dir, &path);
        let elsewhere = checklist.is_some_and(|c| path.starts_with(c) && !path.starts_with(&dir));
        if own || elsewhere {
            let whose = if own {
                "the run dir's own records"
            } else {
                "the checklist's own files, outside this trial's run dir"
            };
            return Err(failed(format!(
                "the trainer's command line or environment names {} ({whose}); a trainer writes only in its run dir, \
                 under names that are not darkmagic's (external.command, external.args, external.env)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Where `path` leads through symbolic links, in the file itself (a few levels; the target need
/// not exist yet) and in the folders above it (its longest existing ancestor, canonical): a link
/// to a record of darkmagic's, or to a folder holding one, is the record.
fn through_links(path: &Path) -> std::path::PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(&path) else { break };
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        path = lexical(&base.join(target));
    }
    let mut existing = path.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(std::ffi::OsStr::to_os_string),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path,
        }
    }
    let mut real = existing.canonicalize().unwrap_or(existing);
    real.extend(rest.iter().rev());
    real
}

/// `path` with `.` dropped and each `..` removing the component before it, without reading the
/// file system (the file may not exist yet).
fn lexical(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The metric file a rerun must not read from the run before: the CSV or JSON file, when it
/// lies inside the run dir, also once links are followed (a linked folder leading out of it
/// keeps what it holds).
fn stale_metric_file(m: &MetricSource, recipe: &Recipe, run_dir: &Path) -> Option<std::path::PathBuf> {
    let file = m.csv.as_ref().or(m.json.as_ref())?;
    let path = std::path::absolute(run_dir.join(expand(file, recipe, run_dir))).ok()?;
    let inside = std::path::absolute(run_dir).ok().is_some_and(|d| path.starts_with(d));
    let climbs = Path::new(file)
        .components()
        .any(|c| c == std::path::Component::ParentDir);
    let real_parent = path.parent().and_then(|p| p.canonicalize().ok());
    let real_dir = run_dir.canonicalize().ok();
    let really_inside = match (real_parent, real_dir) {
        (Some(p), Some(d)) => p.starts_with(d),
        // The folder does not exist: nothing to remove.
        _ => false,
    };
    (inside && !climbs && really_inside).then_some(path)
}

/// The metric file `path` when it resolves inside `run_dir` (no link leading out of it) and is
/// a regular file; an error naming it otherwise. Nothing outside a trial's own run dir is read.
fn inside_run_dir(path: &Path, run_dir: &Path, kind: &str) -> Result<std::path::PathBuf> {
    let real = path.canonicalize().map_err(|e| {
        failed(format!(
            "metric file {} cannot be read ({e}); did the trainer write it? (external.metric.{kind})",
            path.display()
        ))
    })?;
    let dir = run_dir.canonicalize().map_err(|e| Error::io(run_dir, e))?;
    if !real.starts_with(&dir) {
        return Err(failed(format!(
            "metric file {} resolves outside the run dir (a symbolic link?); refusing to read it (external.metric.{kind})",
            path.display()
        )));
    }
    if !real.is_file() {
        return Err(failed(format!(
            "metric file {} is not a regular file (external.metric.{kind})",
            path.display()
        )));
    }
    Ok(real)
}

/// What the trainer printed that the metric's regular expression captured last.
type LastMatch = Option<String>;

/// Runs `argv` in the run dir with `env` added, appending its stdout and stderr to `train.log`
/// line by line; kills it after `ext.timeout` seconds. Returns the last capture of
/// `external.metric.regex` in its output. The trainer dies with this process (a killed trial
/// leaves no orphan training on).
fn execute(argv: &[String], env: &[(String, String)], dir: &RunDir, ext: &ExternalConfig) -> Result<LastMatch> {
    let tag = trial_tag();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&dir.path)
        .envs(env.iter().cloned())
        .env(TAG_VARIABLE, &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::executor::die_with_parent(&mut cmd, crate::executor::ParentDeath::Kill);
    strays::catch_termination();
    // Its own process group: a timeout or its exit ends whatever it started, and the readers
    // below see the end of its output even when a child of it kept the pipes.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        // A script whose `#!` interpreter is missing fails to start with the same error.
        std::io::ErrorKind::NotFound if argv[0].contains('/') && Path::new(&argv[0]).is_file() => failed(format!(
            "`{}` exists but cannot be started: the interpreter its #! line names (or a library it needs) is missing",
            argv[0]
        )),
        std::io::ErrorKind::NotFound => failed(format!(
            "`{}` not found (external.command[0]: give a path, or a program on PATH)",
            argv[0]
        )),
        _ => failed(format!("cannot start `{}`: {e}", argv[0])),
    })?;
    let guard = match guard_group(child.id(), &tag) {
        Ok(g) => g,
        Err(e) => {
            kill_group(child.id());
            let _ = child.wait();
            return Err(failed(format!(
                "cannot start the process that guards the trainer's group: {e}"
            )));
        }
    };
    let log = Arc::new(Mutex::new(darkmagic_base::files::open_append(
        &dir.file(darkmagic_base::rundir::LOG),
    )?));
    let regex = ext
        .metric
        .regex
        .as_deref()
        .map(|r| darkmagic_base::recipe::metric_regex(r).expect("validated"));
    let found = Arc::new(Mutex::new(None));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let (log, found, regex) = (log.clone(), found.clone(), regex.clone());
        std::thread::spawn(move || {
            for_each_line(stream, |line| {
                if let Some(c) = regex.as_ref().and_then(|r| r.captures(line)).and_then(|c| c.get(1)) {
                    *found.lock().expect("not poisoned") = Some(c.as_str().to_string());
                }
                let _ = writeln!(log.lock().expect("not poisoned"), "{line}");
            });
        })
    })
    .collect();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| failed(format!("waiting for the trainer: {e}")))?
        {
            break Some(status);
        }
        if ext.timeout > 0.0 && start.elapsed().as_secs_f64() > ext.timeout {
            kill_group(child.id());
            let _ = child.wait();
            break None;
        }
        if let Some(signal) = strays::termination() {
            // Ctrl-C, or SIGTERM (also the checklist's death): the trainer, its group and its
            // strays end before this process does, as it would have ended by the signal.
            kill_group(child.id());
            let _ = child.wait();
            guard.release();
            strays::end();
            dir.log(&format!("stopped by signal {signal}"));
            strays::die_of(signal);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever it left running (a background child holding the pipes) ends with it, and so
    // does what left its group (setsid) and came back to this process as its subreaper.
    kill_group(child.id());
    guard.release();
    strays::end();
    for r in readers {
        let _ = r.join();
    }
    if let Some(signal) = strays::termination() {
        // Ctrl-C or SIGTERM while the output drained: no result of a run that was stopped.
        dir.log(&format!("stopped by signal {signal}"));
        strays::die_of(signal);
    }
    match status {
        None => Err(failed(format!(
            "timed out after {} s (external.timeout) and was killed",
            ext.timeout
        ))),
        Some(s) if !s.success() => Err(failed(format!("`{}` {s}", argv[0]))),
        Some(_) => Ok(found.lock().expect("not poisoned").take()),
    }
}

/// The longest line of a trainer's output darkmagic keeps (the rest of the line is dropped): a
/// line without a newline would otherwise grow without bound.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Calls `f` on each line of `stream` as text (invalid UTF-8 replaced, so one odd byte does not
/// end the reading and SIGPIPE the trainer), each cut at `MAX_LINE_BYTES`, until the stream ends.
fn for_each_line(stream: impl std::io::Read, mut f: impl FnMut(&str)) {
    let mut reader = std::io::BufReader::new(stream);
    let mut line: Vec<u8> = Vec::new();
    while let Ok(buf) = reader.fill_buf() {
        if buf.is_empty() {
            break;
        }
        let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = newline.unwrap_or(buf.len());
        reader.consume(used);
        if newline.is_some() {
            f(String::from_utf8_lossy(&line).trim_end_matches('\r'));
            line.clear();
        }
    }
    if !line.is_empty() {
        f(String::from_utf8_lossy(&line).trim_end_matches('\r'));
    }
}

/// The environment variable that tags every process of one trainer run (inherited by what it
/// starts, `setsid` children included), for the [`Guard`] to find them by.
const TAG_VARIABLE: &str = "DARKMAGIC_TRIAL_TAG";

/// A tag no other run shares: this process's id and the time in nanoseconds.
fn trial_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// A process that ends the trainer when this process dies (even by SIGKILL, which runs no
/// code here): it waits on a pipe only this process holds, and the end of the pipe without
/// the word `done` ([`Guard::release`]) means this process is gone. It then kills the
/// trainer's group, and every process whose environment carries the run's tag
/// ([`TAG_VARIABLE`]), pass after pass until none is left: what left the group (`setsid`, a
/// daemonising wrapper) and was orphaned to init with no subreaper to catch it (a `darkmagic
/// train` run on its own, or under Slurm or Ray). Without it, a trainer behind a wrapper
/// script outlives a killed checklist: the parent-death signal reaches the wrapper, not what
/// the wrapper started. (A process that clears its environment escapes the tag.)
struct Guard {
    process: std::process::Child,
}

/// The guard's script: `$1` the trainer's group, `$2` the run's tag. `grep -z` reads each
/// process's environment as NUL-separated entries (a killed process's is empty); its status
/// is 2 where some other user's cannot be read, so the list it prints decides.
const GUARD_SCRIPT: &str = r#"read word; [ "$word" = done ] && exit 0
kill -KILL -"$1" 2>/dev/null
n=0
while [ $n -lt 64 ]; do
  n=$((n + 1))
  found=$(grep -lzxF "DARKMAGIC_TRIAL_TAG=$2" /proc/[0-9]*/environ 2>/dev/null)
  [ -n "$found" ] || exit 0
  for f in $found; do p=${f#/proc/}; kill -KILL "${p%/environ}" 2>/dev/null; done
done"#;

/// Starts the [`Guard`] of process group `pgid` and the processes tagged `tag`, in a group of
/// its own so that a terminal's Ctrl-C, which ends the checklist, does not end the guard
/// before it has done its work.
fn guard_group(pgid: u32, tag: &str) -> std::io::Result<Guard> {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", GUARD_SCRIPT, "darkmagic-guard"])
        .arg(pgid.to_string())
        .arg(tag)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(Guard { process: cmd.spawn()? })
}

impl Guard {
    /// Tells the guard that the group has been dealt with (`kill_group`), so that it exits
    /// without signalling a process group ID the system may have given to others since, and
    /// reaps it.
    fn release(mut self) {
        if let Some(mut pipe) = self.process.stdin.take() {
            let _ = pipe.write_all(b"done\n");
        }
        let _ = self.process.wait();
    }
}

/// Sends SIGKILL to the process group `pgid` (the trainer's: it leads its own).
fn kill_group(pgid: u32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    const SIGKILL: i32 = 9;
    if let Ok(pid) = i32::try_from(pgid) {
        // SAFETY: kill only sends a signal; a negative pid names the group, which the trainer
        // leads (process_group(0) above), so nothing outside it is signalled.
        unsafe {
            kill(-pid, SIGKILL);
        }
    }
}

/// One row of a metric CSV: the metric and the columns darkmagic's curves know, when present.
#[derive(Clone, Debug, Default, PartialEq)]
struct Row {
    metric: f64,
    train_loss: f64,
    val_loss: f64,
    lr: f64,
}

/// The metric (scaled) and, from a CSV, every row of it; the regex's capture `output` when the
/// metric comes from the output. A missing file, key or match, or a value that is not a finite
/// number, is an error naming it.
fn read_metric(m: &MetricSource, recipe: &Recipe, run_dir: &Path, output: &LastMatch) -> Result<(f64, Vec<Row>)> {
    let file = |f: &String, kind: &str| inside_run_dir(&run_dir.join(expand(f, recipe, run_dir)), run_dir, kind);
    let key = m.key.as_deref().unwrap_or_default();
    let (value, rows) = if let Some(csv) = &m.csv {
        let rows = csv_rows(&file(csv, "csv")?, key, m.scale)?;
        let value = match m.row {
            MetricRow::Last => rows.last().map(|r| r.metric),
            MetricRow::Best => rows.iter().map(|r| r.metric).max_by(f64::total_cmp),
        };
        (value.expect("csv_rows returns at least one row"), rows)
    } else if let Some(json) = &m.json {
        let value = json_number(&file(json, "json")?, key)? * m.scale;
        (value, Vec::new())
    } else {
        let regex = m.regex.as_deref().unwrap_or_default();
        let text = output.as_ref().ok_or_else(|| {
            failed(format!(
                "no line of its output matched external.metric.regex `{regex}` (see train.log)"
            ))
        })?;
        let value: f64 = text.parse().map_err(|_| {
            failed(format!(
                "external.metric.regex `{regex}` captured `{}`, not a number",
                excerpt(std::slice::from_ref(text))
            ))
        })?;
        (value * m.scale, Vec::new())
    };
    // Past 1e15 a sum of squares of differences overflows nothing yet keeps its digits; beyond,
    // the checklist's statistics would read inf and NaN (1e308 gave "inf ± inf").
    if !value.is_finite() || value.abs() > MAX_METRIC {
        return Err(failed(format!(
            "the metric is {value:e}, not a finite number of magnitude at most {MAX_METRIC:e}"
        )));
    }
    Ok((value, rows))
}

/// The rows of a CSV file with a header: column `key` (times `scale`) and, where present,
/// `train_loss`, `eval_loss`/`val_loss` and `lr`.
fn csv_rows(path: &Path, key: &str, scale: f64) -> Result<Vec<Row>> {
    let text = metric_text(path, "csv")?;
    // A real CSV reader: quoted fields may hold commas (RFC 4180).
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let bad = |e: csv::Error| failed(format!("metric file {}: {e}", path.display()));
    let header: Vec<String> = reader.headers().map_err(bad)?.iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let metric = col(key).ok_or_else(|| {
        failed(format!(
            "metric column `{key}` is not in {} (its columns: {})",
            path.display(),
            excerpt(&header)
        ))
    })?;
    let (train_loss, val_loss, lr) = (col("train_loss"), col("eval_loss").or(col("val_loss")), col("lr"));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = record.position().map_or(0, csv::Position::line);
        let number = |c: Option<usize>| c.and_then(|c| record.get(c)).and_then(|f| f.parse::<f64>().ok());
        let value = number(Some(metric)).ok_or_else(|| {
            failed(format!(
                "{} line {line}: column `{key}` is not a number",
                path.display()
            ))
        })?;
        // Every row becomes an epoch of metrics.jsonl, whose readers refuse what is not finite:
        // a row the records could not hold fails the trial here, named.
        for c in [Some(metric), train_loss, val_loss, lr].into_iter().flatten() {
            let v = number(Some(c)).map_or(0.0, |v| if c == metric { v * scale } else { v });
            if !v.is_finite() || v.abs() > MAX_METRIC {
                return Err(failed(format!(
                    "{} line {line}: column `{}` is {v:e}, not a finite number of magnitude at most {MAX_METRIC:e}",
                    path.display(),
                    header[c]
                )));
            }
        }
        rows.push(Row {
            metric: value * scale,
            train_loss: number(train_loss).unwrap_or(0.0),
            val_loss: number(val_loss).unwrap_or(0.0),
            lr: number(lr).unwrap_or(0.0),
        });
    }
    if rows.is_empty() {
        return Err(failed(format!("metric file {} has no rows", path.display())));
    }
    Ok(rows)
}

/// At most the first 12 column names, 40 characters each, as text: an error quotes a bounded
/// excerpt of a file, never the file.
fn excerpt(columns: &[String]) -> String {
    let shown: Vec<String> = columns
        .iter()
        .take(12)
        .map(|c| c.chars().take(40).collect::<String>().escape_debug().to_string())
        .collect();
    let more = columns.len().saturating_sub(12);
    match more {
        0 => shown.join(", "),
        n => format!("{}, and {n} more", shown.join(", ")),
    }
}

/// The most bytes a metric file may hold: rows per epoch are kilobytes; this leaves room for a
/// trainer that logs every step.
const MAX_METRIC_BYTES: u64 = 256 << 20;

/// The text of the metric file at `path` (`external.metric.<kind>`): a regular file of at most
/// `MAX_METRIC_BYTES` (a FIFO would block, `/dev/zero` never end).
fn metric_text(path: &Path, kind: &str) -> Result<String> {
    let unreadable = |e: &dyn std::fmt::Display| {
        failed(format!(
            "metric file {} cannot be read ({e}); did the trainer write it? (external.metric.{kind})",
            path.display()
        ))
    };
    let bytes = darkmagic_base::files::read_regular(path, MAX_METRIC_BYTES).map_err(|e| unreadable(&e))?;
    String::from_utf8(bytes).map_err(|e| unreadable(&e))
}

/// The number at the dotted `key` of a JSON file.
fn json_number(path: &Path, key: &str) -> Result<f64> {
    let text = metric_text(path, "json")?;
    // A byte-order mark, as some Windows tools write one (the CSV reader skips it too).
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| failed(format!("metric file {}: {e}", path.display())))?;
    key.split('.')
        .try_fold(&v, |node, part| node.get(part))
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| failed(format!("metric file {} has no number at `{key}`", path.display())))
}

/// The per-epoch records of a trainer's CSV rows; without a CSV, one record of the final
/// `value` at epoch `epochs`. Columns the CSV lacks are 0; each epoch gets an equal share of the
/// wall time.
fn epochs(rows: &[Row], value: f64, epochs: usize, wall: f64) -> Vec<EpochMetrics> {
    let last = [Row {
        metric: value,
        ..Row::default()
    }];
    let (rows, first) = if rows.is_empty() {
        (&last[..], epochs)
    } else {
        (rows, 1)
    };
    rows.iter()
        .enumerate()
        .map(|(i, r)| EpochMetrics {
            epoch: first + i,
            step: 0,
            lr: r.lr,
            weight_decay: None,
            train_loss: r.train_loss,
            train_acc: 0.0,
            val_loss: r.val_loss,
            val_acc: r.metric,
            val_top5: None,
            val_acc_ema: None,
            val_acc_tta: None,
            images_per_sec: 0.0,
            seconds: wall / rows.len() as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests;
