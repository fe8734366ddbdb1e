//! darkmagic: train image classifiers with the "dark magic" tricks of Tal Ridnik's article
//! "Revealing the Dark Magic Behind Deep Learning", and test which of them help on your data.
//!
//! The library core, from recipe to run directory:
//! [`recipe`] -> [`data`] -> [`augment`] -> [`model`] -> [`loss`] -> [`optim`] + [`schedule`] ->
//! [`train`] -> [`eval`] (evaluation and prediction with the trained model). The `darkmagic`
//! binary is a thin CLI over it.
pub mod augment;
pub mod bench;
pub mod checklist;
pub mod data;
pub mod error;
pub mod eval;
pub mod executor;
pub mod external;
pub mod files;
pub mod image;
pub mod launcher;
pub mod loss;
pub mod mlflow;
pub mod model;
pub mod optim;
pub mod preview;
pub mod recipe;
pub mod report;
pub mod rng;
pub mod rundir;
pub mod runtime;
pub mod schedule;
pub mod session;
pub mod stats;
pub mod tensorboard;
pub mod train;
pub mod uri;

#[cfg(test)]
mod testutil;

pub use error::{Error, Result};
pub use recipe::Recipe;
