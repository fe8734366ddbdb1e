//! `checklist.lock`: one checklist at a time in a checklist directory, also when the directory
//! is on a filesystem shared by several hosts (Slurm and Ray clusters).
//!
//! The lock file names its holder: host, process id and the process's start time (clock ticks
//! since boot, `/proc/<pid>/stat` field 22). A lock is taken over only when its holder is
//! provably gone: same host, and no process with that id and start time (a reused pid has
//! another start time). A lock from another host, or one darkmagic cannot read, is never taken
//! over silently: the error says who holds it and how to break it (`--break-lock`).
use darkmagic_base::error::{Error, Result};
use std::path::{Path, PathBuf};

pub const LOCK: &str = "checklist.lock";

/// Holds `checklist.lock` in a checklist directory; released on drop.
pub struct Lock(PathBuf);

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    host: String,
    pid: u32,
    start: u64,
}

impl Holder {
    /// This process.
    fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            host: hostname(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    fn to_text(&self) -> String {
        format!("host={}\npid={}\nstart={}\n", self.host, self.pid, self.start)
    }

    fn parse(text: &str) -> Option<Holder> {
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='));
        Some(Holder {
            host: field("host")?.to_string(),
            pid: field("pid")?.parse().ok()?,
            start: field("start")?.parse().ok()?,
        })
    }

    /// Whether this holder provably no longer runs: it ran on this host, and no process with
    /// its pid and start time exists.
    fn is_gone(&self) -> bool {
        self.host == hostname() && start_time(self.pid) != Some(self.start)
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The start time of process `pid` in clock ticks since boot, None if no such process runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, starttime field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Lock {
    /// Takes the lock of checklist directory `root`, or says who holds it. A lock whose holder
    /// is provably gone (killed) is taken over.
    pub fn acquire(root: &Path) -> Result<Lock> {
        darkmagic_base::rundir::RunDir::create(root)?;
        let path = root.join(LOCK);
        let me = Holder::me();
        // Written whole under a temporary name, then linked into place: the link fails if a
        // lock exists, and nobody ever reads a half-written lock.
        let tmp = root.join(format!(".{LOCK}.{}", me.pid));
        std::fs::write(&tmp, me.to_text()).map_err(|e| Error::io(&tmp, e))?;
        let taken = loop {
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => break Ok(Lock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_holder(&path) {
                    Some(h) if h.is_gone() => {
                        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    }
                    holder => break Err(held(root, &path, holder)),
                },
                Err(e) => break Err(Error::io(&path, e)),
            }
        };
        let _ = std::fs::remove_file(&tmp);
        taken
    }

    /// Removes the lock of `root` (`--break-lock`): for a lock left on a shared filesystem by a
    /// host that no longer runs the checklist. A holder that provably runs on this host (its pid
    /// with its start time) keeps its lock: two checklists would train the same run dirs.
    pub fn break_lock(root: &Path) -> Result<()> {
        let path = root.join(LOCK);
        let holder = read_holder(&path);
        if let Some(h) = holder.filter(|h| h.host == hostname() && start_time(h.pid) == Some(h.start)) {
            return Err(Error::RunDir {
                path: root.to_path_buf(),
                message: format!(
                    "--break-lock: the checklist holding this directory (pid {}) is running on this host; wait for it or stop it",
                    h.pid
                ),
            });
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            // Not darkmagic's: whatever it holds is not removed for the user.
            return Err(Error::RunDir {
                path,
                message: "--break-lock: is a folder, not a lock file darkmagic writes; remove it by hand if no \
                          checklist runs here"
                    .into(),
            });
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        }
    }
}

/// The holder a lock file names; None when it is not a regular file of a lock's size (a FIFO
/// would block the read) or does not parse.
fn read_holder(path: &Path) -> Option<Holder> {
    let bytes = darkmagic_base::files::read_regular(path, 4096).ok()?;
    Holder::parse(&String::from_utf8_lossy(&bytes))
}

/// The error for a lock held by `holder` (None: a lock file darkmagic cannot read).
fn held(root: &Path, path: &Path, holder: Option<Holder>) -> Error {
    let who = match &holder {
        Some(h) if h.host == hostname() => format!(
            "another checklist (pid {}) is running in this directory; wait for it or stop it",
            h.pid
        ),
        Some(h) => format!(
            "another checklist (pid {} on host {}) holds this directory; if it no longer runs there, rerun with --break-lock",
            h.pid, h.host
        ),
        None if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) => format!(
            "{} is a folder, not a lock file darkmagic writes: remove it by hand if no checklist runs here",
            path.display()
        ),
        None => format!(
            "{} exists but does not name its holder (host, pid, start); if no checklist runs here, rerun with --break-lock",
            path.display()
        ),
    };
    Error::RunDir {
        path: root.to_path_buf(),
        message: who,
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_holder_blocks_and_gone_or_reused_pid_is_taken_over() {
        let root = darkmagic_base::testutil::tempdir("lock");
        let lock = Lock::acquire(&root).unwrap();
        let e = Lock::acquire(&root).err().unwrap().to_string();
        assert!(
            e.contains("another checklist") && e.contains(&std::process::id().to_string()),
            "{e}"
        );
        // --break-lock does not remove the lock of a holder that provably runs here.
        let e = Lock::break_lock(&root).unwrap_err().to_string();
        assert!(
            e.contains("--break-lock") && e.contains("is running on this host"),
            "{e}"
        );
        assert!(root.join(LOCK).exists());
        drop(lock);
        assert!(!root.join(LOCK).exists());
        // This process's pid with another start time: the pid was reused, the holder is gone.
        let mut reused = Holder::me();
        reused.start += 1;
        std::fs::write(root.join(LOCK), reused.to_text()).unwrap();
        let lock = Lock::acquire(&root).unwrap();
        assert_eq!(
            Holder::parse(&std::fs::read_to_string(root.join(LOCK)).unwrap()),
            Some(Holder::me())
        );
        drop(lock);
    }

    #[test]
    fn other_host_and_unreadable_locks_are_never_taken_over() {
        let root = darkmagic_base::testutil::tempdir("lock-host");
        let other = Holder {
            host: "node-17".into(),
            pid: 4242,
            start: 1,
        };
        std::fs::write(root.join(LOCK), other.to_text()).unwrap();
        let e = Lock::acquire(&root).err().unwrap().to_string();
        assert!(
            e.contains("pid 4242 on host node-17") && e.contains("--break-lock"),
            "{e}"
        );
        std::fs::write(root.join(LOCK), "12345\n").unwrap();
        let e = Lock::acquire(&root).err().unwrap().to_string();
        assert!(
            e.contains("does not name its holder") && e.contains("--break-lock"),
            "{e}"
        );
        Lock::break_lock(&root).unwrap();
        drop(Lock::acquire(&root).unwrap());
    }
}
