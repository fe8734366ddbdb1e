//! The `darkmagic` command as the pip wheel ships it (`scripts/wheel.sh`): the same program as
//! `src/main.rs`, under the name the wheel's Python launcher (`python/darkmagic/_launcher.py`)
//! starts once it has found the environment's torch. It is built only with the `wheel` feature,
//! so the normal build makes one binary.
#[path = "../main.rs"]
mod app;

fn main() {
    app::start(true)
}
