//! The ground floor of darkmagic, with no libtorch: the error type, bounded file reads and
//! atomic writes, counter-based random numbers, statistics, the [`recipe`] (every knob and its
//! default), the learning-rate and weight-decay [`schedule`]s in closed form, the run
//! directory's records ([`rundir`]), TensorBoard event files, and how to start another darkmagic
//! ([`launcher`]).
pub mod error;
pub mod files;
pub mod launcher;
pub mod recipe;
pub mod rng;
pub mod rundir;
pub mod schedule;
pub mod stats;
pub mod tensorboard;
pub mod uri;

/// Helpers for the unit tests of this crate and the crates above it (feature `testutil`).
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

pub use error::{Error, Result};
pub use recipe::Recipe;
