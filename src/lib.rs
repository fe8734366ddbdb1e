//! darkmagic: train image classifiers with the "dark magic" tricks of Tal Ridnik's article
//! "Revealing the Dark Magic Behind Deep Learning", and test which of them help on your data.
//!
//! A Cargo workspace of four crates, each building only on those below it (the compiler refuses
//! an import that runs up; docs/architecture.md draws the house):
//! - `darkmagic-base` (crates/base): errors, files, random numbers, statistics, the [`recipe`]
//!   with every knob, [`schedule`] formulas, the run directory's records, TensorBoard files.
//! - `darkmagic-data` (crates/data): images, augmentation and the dataset readers on u8 pixels.
//! - `darkmagic-checklist` (crates/checklist): the checklist (plan, sequential statistics,
//!   analysis), executors, external trainers, the report, MLflow; no libtorch, so
//!   `cargo test -p darkmagic-checklist` runs where no PyTorch is installed.
//! - `darkmagic` (this crate): everything on tensors, from batch [`loader`] through [`model`],
//!   [`loss`], [`optim`] and [`train`] to [`eval`], and the `darkmagic` binary, a thin CLI over
//!   it. It re-exports the crates below so that `darkmagic::recipe::Recipe` and the like name
//!   the whole library.
pub use darkmagic_base::{Error, Recipe, Result};
pub use darkmagic_base::{error, files, launcher, recipe, rng, rundir, schedule, stats, tensorboard, uri};
pub use darkmagic_checklist as checklist;
pub use darkmagic_checklist::{executor, external, mlflow, report, session};
pub use darkmagic_data as data;
pub use darkmagic_data::{augment, image};

pub mod bench;
pub mod eval;
pub mod loader;
pub mod loss;
pub mod model;
pub mod optim;
pub mod preview;
pub mod runtime;
pub mod train;

#[cfg(test)]
use darkmagic_base::testutil;
