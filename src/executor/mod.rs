//! Executors run trials: each trial is one `darkmagic train --run-dir D --resume` process, so a
//! crash or divergence ends one trial, never the checklist, and every executor (this machine,
//! Slurm, Ray) runs the very same command.
pub mod local;

use crate::error::Result;
use std::path::PathBuf;

/// One trial to run: its run directory (holding `recipe.toml`) and how to show it.
#[derive(Clone, Debug)]
pub struct Job {
    pub dir: PathBuf,
    pub label: String,
    pub epochs: usize,
}

/// Something that runs jobs to the end (completed, diverged or failed: each records its own
/// status in its run directory).
pub trait Executor {
    fn run_all(&mut self, jobs: &[Job]) -> Result<()>;
}
