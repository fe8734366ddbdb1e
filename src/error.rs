//! The library's typed errors. Each names the file, field or line at fault and what was expected.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A recipe field is missing, unknown, or holds a value outside its allowed range.
    #[error("recipe: `{key}`: {message}")]
    Recipe { key: String, message: String },
    /// A recipe file cannot be read or is not valid TOML.
    #[error("recipe file {}: {message}", path.display())]
    RecipeFile { path: PathBuf, message: String },
    /// A dataset file is missing, truncated or corrupt.
    #[error("data: {}: {message}", path.display())]
    Data { path: PathBuf, message: String },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A run directory holds a file darkmagic cannot use.
    #[error("run dir: {}: {message}", path.display())]
    RunDir { path: PathBuf, message: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn recipe(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Recipe {
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
