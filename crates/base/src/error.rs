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
    #[error("mlflow: {uri}: {message}")]
    Tracking { uri: String, message: String },
    /// A cluster or HTTP service (Slurm's commands, Ray's job API, an HTTP exchange) could not
    /// be reached, failed or answered something darkmagic cannot use.
    #[error("{service}: {address}: {message}")]
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
    if let Ok(s) = std::str::from_utf8(bytes) {
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

    /// The error for a caught panic's `payload` in `what` (e.g. "the data loader thread").
    pub fn panic(what: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic without a message".into());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Names that are not UTF-8 print byte for byte: two that differ only there print apart,
    /// and a UTF-8 path prints as itself.
    #[test]
    fn paths_print_exactly() {
        let p = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
        assert_eq!(exact(&p(b"data/a\xff.png")), "data/a\\xff.png");
        assert_ne!(exact(&p(b"a\xfe")), exact(&p(b"a\xff")));
        assert_eq!(exact(&p(b"x\\y\x80")), "x\\\\y\\x80");
        assert_eq!(exact(Path::new("dir/caf\u{e9}\\b.png")), "dir/caf\u{e9}\\b.png");
        let e = Error::data(p(b"/d/\xc3(.png"), "truncated");
        assert_eq!(e.to_string(), "data: /d/\\xc3(.png: truncated");
    }
}
