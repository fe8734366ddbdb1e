//! A trainer's descendants that left its process group (`setsid`, a daemonising wrapper),
//! which a group kill misses. `darkmagic train` makes itself their subreaper ([`adopt`]):
//! orphaned, they come back to it instead of init, and [`end`] kills them once the trainer is
//! done. The local executor is the subreaper of its trials in turn, and [`end_all_but`] ends
//! what a trial whose `darkmagic train` was killed leaves. Linux only; elsewhere, and in a
//! process that is not a subreaper (a library user's), only the group is ended.
#[cfg(target_os = "linux")]
unsafe extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const PR_GET_CHILD_SUBREAPER: i32 = 37;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

#[cfg(unix)]
unsafe extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn raise(sig: i32) -> i32;
}

/// The SIGINT or SIGTERM this process received while [`catch_termination`] was in force.
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn note(sig: i32) {
    SIGNALLED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM are noted ([`termination`]) instead of ending the process:
/// the loop that waits on the trainer then ends it and its strays, and [`die_of`] the signal.
/// Without this, Ctrl-C or a checklist's SIGTERM ended `darkmagic train` at once and left
/// the trainer's `setsid` children running under init.
#[cfg(unix)]
pub fn catch_termination() {
    const SIG_IGN: usize = 1;
    // SAFETY: installs a handler that only stores to an atomic (async-signal-safe); an
    // ignored SIGINT (a background job's) stays ignored, as shells expect.
    unsafe {
        if signal(SIGINT, note as *const () as usize) == SIG_IGN {
            signal(SIGINT, SIG_IGN);
        }
        signal(SIGTERM, note as *const () as usize);
    }
}

#[cfg(not(unix))]
pub fn catch_termination() {}

/// The termination signal received, if any, since [`catch_termination`].
pub fn termination() -> Option<i32> {
    Some(SIGNALLED.load(std::sync::atomic::Ordering::SeqCst)).filter(|&s| s != 0)
}

/// Ends this process by `sig` with its default action, as if the signal had not been caught.
#[cfg(unix)]
pub fn die_of(sig: i32) -> ! {
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default action and sends the signal to this process.
    unsafe {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    std::process::exit(128 + sig)
}

/// Makes this process the subreaper of its descendants. Call it in the command's process
/// before the trainer starts (`darkmagic train` does).
#[cfg(target_os = "linux")]
pub fn adopt() {
    // SAFETY: sets a flag of this process; no memory is passed.
    unsafe {
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn adopt() {}

/// Kills and reaps every child of this process, until none is left; nothing when this process
/// is not a subreaper. Called once the trainer has been reaped and its guard released, when
/// every child left is a stray the trainer started and that came back here: in another session
/// (`setsid`), or in this one but in a group of its own (`set -m`, `process_group=0`), which
/// the group kill misses and which would hold the output pipes open.
#[cfg(target_os = "linux")]
pub fn end() {
    end_children(|_| true);
}

/// Kills and reaps every child of this process but the processes in `keep`, until none is
/// left; nothing when this process is not a subreaper. The local executor keeps its running
/// trials: what else is its child was adopted from a trial whose `darkmagic train` died
/// (`kill -9` leaves its trainer, the guard and their `setsid` strays), and each one killed
/// hands its own children on to this process, so the passes end the whole tree.
#[cfg(target_os = "linux")]
pub fn end_all_but(keep: &[u32]) {
    end_children(|pid| !keep.iter().any(|&k| k as i32 == pid));
}

/// Kills and reaps the children of this subreaper that `chosen(pid)` picks, pass after pass: a
/// killed process's children are orphaned in turn and come back here.
#[cfg(target_os = "linux")]
fn end_children(chosen: impl Fn(i32) -> bool) {
    let mut flag = 0i32;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int to the pointer given.
    let subreaper = unsafe { prctl(PR_GET_CHILD_SUBREAPER, &mut flag as *mut i32 as u64, 0, 0, 0) } == 0 && flag != 0;
    if !subreaper {
        return;
    }
    let me = std::process::id() as i32;
    for _ in 0..64 {
        let strays: Vec<i32> = processes()
            .filter(|&pid| parent(pid) == Some(me) && chosen(pid))
            .collect();
        if strays.is_empty() {
            return;
        }
        for pid in strays {
            // SAFETY: signals and reaps a child of this process by its pid.
            unsafe {
                kill(pid, 9);
                waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn end() {}

#[cfg(not(target_os = "linux"))]
pub fn end_all_but(_keep: &[u32]) {}

/// The pids in /proc.
#[cfg(target_os = "linux")]
fn processes() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// A process's parent, from /proc/PID/stat (the field after state, which follows the command's
/// closing parenthesis).
#[cfg(target_os = "linux")]
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}
