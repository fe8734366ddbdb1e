//! The library's typed errors. Each names the file, field or line at fault and what was expected.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A recipe field is missing, unknown, or holds a value outside its allowed range.
    #[error("recipe: `{key}`: {message}")]
    Recipe { key: String, message: String },
    /// A recipe file cannot be read or is not valid TOML.
    #[error("recipe file {}: {message}", exact(path))]
    RecipeFile { path: PathBuf, message: String },
    /// A dataset file is missing, truncated or corrupt.
    #[error("data: {}: {message}", exact(path))]
    Data { path: PathBuf, message: String },
    /// Reading or writing a file failed. The OS error is part of the message, not a separate
    /// source, so that a printed chain of causes says it once.
    #[error("{}: {cause}", exact(path))]
    Io { path: PathBuf, cause: std::io::Error },
    /// A weights file (`model.init`, `--init`, `checklist.pretrained`) cannot be used.
    #[error("weights: {}: {message}", exact(path))]
    Weights { path: PathBuf, message: String },
    /// A command-line option holds a value darkmagic cannot use.
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
    /// A run directory holds a file darkmagic cannot use.
    #[error("run dir: {}: {message}", exact(path))]
    RunDir { path: PathBuf, message: String },
    /// An external trainer (`[external]`) could not start, failed, timed out or left no metric.
    #[error("external trainer: {message}")]
    Trainer { message: String },
    /// An MLflow tracking server could not be reached or refused a call.
    #[error("mlflow: {}: {message}", crate::uri::redacted(uri))]
    Tracking { uri: String, message: String },
    /// A cluster or HTTP service (Slurm's commands, Ray's job API, an HTTP exchange) could not
    /// be reached, failed or answered something darkmagic cannot use.
    #[error("{service}: {}: {message}", crate::uri::redacted(address))]
    Service {
        service: &'static str,
        address: String,
        message: String,
    },
    /// libtorch refused an operation (its message; this crate does not link libtorch).
    #[error("libtorch: {0}")]
    Torch(String),
    /// A thread panicked: a bug in darkmagic or libtorch, caught so that the run records it.
    #[error("internal error in {what}: {message} (a bug; please report it)")]
    Panic { what: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `path` as text, exactly: a UTF-8 path as itself; in one that is not, every byte outside UTF-8
/// as `\xNN` and a backslash as `\\`, so that two names differing only in such bytes print
/// differently (`Path::display` prints both with the same U+FFFD).
pub fn exact(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // Without a backslash a UTF-8 name is printed as it is; with one, backslashes are doubled so
    // that a name holding the text `\xff` never prints like one holding the byte 0xff.
    if let Ok(s) = std::str::from_utf8(bytes)
        && !s.contains('\\')
    {
        return s.to_string();
    }
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&chunk.valid().replace('\\', "\\\\"));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

impl Error {
    pub fn recipe(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Recipe {
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn flag(flag: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.into(),
            message: message.into(),
        }
    }

    /// `value` of `flag` when it lies in `lo..=hi`; else an error that names the flag and the
    /// range (a count that becomes processes, memory or work is bounded before anything starts).
    pub fn flag_within<T: PartialOrd + std::fmt::Display>(flag: &str, value: T, lo: T, hi: T) -> Result<T> {
        if lo <= value && value <= hi {
            Ok(value)
        } else {
            Err(Error::flag(flag, format!("got {value}; expected {lo} to {hi}")))
        }
    }

    pub fn service(service: &'static str, address: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Service {
            service,
            address: address.into(),
            message: message.into(),
        }
    }

    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The error for a caught panic's `payload` in `what` (e.g. "the data loader thread"): its
    /// message without libtorch's C++ stack frames, and for memory libtorch could not allocate,
    /// what to lower.
    pub fn panic(what: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = without_frames(&panic_message(payload));
        if out_of_memory(&message) {
            // Not a bug: the run asked for more memory than there was.
            return Error::Torch(format!(
                "{what}: {message}; out of memory: lower train.batch_size (or model.width, the image size), or train \
                 where more memory is free"
            ));
        }
        Error::Panic {
            what: what.into(),
            message,
        }
    }

    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }
}

thread_local! {
    /// Whether this thread is inside [`contain`].
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, a call into a third-party parser that panics on some corrupt inputs (the parquet
/// reader), and gives its panic as a message instead of unwinding further. The CLI's panic hook
/// prints nothing for such a panic ([`in_contained`]): the caller's error names the file.
pub fn contain<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let outer = CONTAINED.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(outer));
    r.map_err(|p| panic_message(&*p))
}

/// Whether the current thread runs inside [`contain`] (for a panic hook).
pub fn in_contained() -> bool {
    CONTAINED.with(|c| c.get())
}

/// A panic payload's text (`&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".into())
}

/// A libtorch message without the C++ stack frames it carries (`frame #0: ...` on, as lines or,
/// in a `Debug`-printed error, as escaped `\n`).
pub fn without_frames(message: &str) -> String {
    let cut = ["\nframe #0", "\\nframe #0"]
        .iter()
        .filter_map(|m| message.find(m))
        .min()
        .unwrap_or(message.len());
    message[..cut].trim_end().to_string()
}

/// Whether a message is libtorch's (or CUDA's) failure to allocate memory.
pub fn out_of_memory(message: &str) -> bool {
    ["can't allocate memory", "CUDA out of memory", "out of memory"]
        .iter()
        .any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Names that are not UTF-8 print byte for byte: two that differ only there print apart,
    /// and a UTF-8 path without a backslash prints as itself.
    #[test]
    fn paths_print_exactly() {
        let p = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
        assert_eq!(exact(&p(b"data/a\xff.png")), "data/a\\xff.png");
        assert_ne!(exact(&p(b"a\xfe")), exact(&p(b"a\xff")));
        assert_eq!(exact(&p(b"x\\y\x80")), "x\\\\y\\x80");
        assert_eq!(exact(Path::new("dir/caf\u{e9}.png")), "dir/caf\u{e9}.png");
        // A backslash is doubled, so that the text `\xff` never prints like the byte 0xff.
        assert_eq!(exact(Path::new("dir/caf\u{e9}\\b.png")), "dir/caf\u{e9}\\\\b.png");
        assert_ne!(exact(&p(b"\xffa.png")), exact(Path::new("\\xffa.png")));
        let e = Error::data(p(b"/d/\xc3(.png"), "truncated");
        assert_eq!(e.to_string(), "data: /d/\\xc3(.png: truncated");
    }

    /// libtorch's errors arrive with its C++ stack frames: the error keeps the message, and an
    /// allocation failure says what to lower.
    #[test]
    fn a_caught_libtorch_panic_keeps_its_message_without_frames() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from(
            "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:127] err == 0. \
             DefaultCPUAllocator: can't allocate memory: you tried to allocate 9437184 bytes.\nframe #0: \
             c10::ThrowEnforceNotMet(char const*) + 0x6a\nframe #1: c10::alloc_cpu(unsigned long)\")",
        ));
        let e = Error::panic("training", payload.as_ref()).to_string();
        assert!(e.starts_with("libtorch: training: called"), "{e}");
        assert!(
            e.contains("you tried to allocate 9437184 bytes.") && !e.contains("frame #"),
            "{e}"
        );
        assert!(e.ends_with("out of memory: lower train.batch_size (or model.width, the image size), or train where more memory is free"), "{e}");
        // As tch's errors print with Debug, the frames follow an escaped newline.
        let escaped = "Torch(\"can't allocate memory: 4 bytes.\\nframe #0: c10::alloc_cpu\")";
        assert_eq!(without_frames(escaped), "Torch(\"can't allocate memory: 4 bytes.");
        let other: Box<dyn std::any::Any + Send> = Box::new("index out of range");
        assert_eq!(
            Error::panic("training", other.as_ref()).to_string(),
            Error::Panic {
                what: "training".into(),
                message: "index out of range".into()
            }
            .to_string()
        );
    }

    #[test]
    fn a_contained_panic_is_its_message_and_the_hook_is_told() {
        let hook = std::panic::take_hook();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::panic::set_hook(Box::new(move |_| record.lock().unwrap().push(in_contained())));
        let r: std::result::Result<(), String> = contain(|| panic!("page {} is corrupt", 3));
        let nested = contain(|| contain(|| 5).unwrap() + usize::from(in_contained()));
        std::panic::set_hook(hook);
        assert_eq!(r, Err("page 3 is corrupt".to_string()));
        assert_eq!(nested, Ok(6), "still contained after the inner call returned");
        assert_eq!(*seen.lock().unwrap(), [true]);
        assert!(!in_contained());
    }
}
