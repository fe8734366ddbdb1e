//! The process's compute set-up, shared by training, evaluation and benchmarks: the device,
//! libtorch's and the data pipeline's CPU threads, denormal flushing, the allocator's habits,
//! mixed precision (`amp`), and what `--version` says of libtorch and CUDA (`version`).
pub mod amp;
mod torch_release;
pub mod version;

use crate::error::{Error, Result};
use crate::recipe::DeviceChoice;
use tch::Device;

/// Picks the device: `auto` is CUDA when libtorch sees a GPU, else CPU.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(Error::recipe(
            "train.device",
            "cuda requested but libtorch sees no CUDA device",
        )),
    }
}

/// The CUDA devices libtorch sees (the local executor gives each trial one of them).
pub fn gpu_count() -> usize {
    tch::Cuda::device_count().max(0) as usize
}

/// Prepares the process for CPU work: libtorch's intra-op threads and the data pipeline's
/// (0 means all cores), and
/// denormal floats flushed to zero. Denormals appear when weights or activations get tiny and
/// slow x86 float units several fold; this is what `torch.set_flush_denormal(True)` does.
/// Threads started later inherit the mode.
pub fn configure_cpu(threads: usize) {
    let n = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    tch::set_num_threads(n as i32);
    // The data pipeline's pool: the first call sizes it; later calls keep it.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    flush_denormals();
    keep_freed_memory();
}

/// Stops glibc's malloc, where it is the process's allocator (a program linking this library;
/// the `darkmagic` binary replaces it with mimalloc), from handing large freed blocks back to
/// the kernel after every training step. Tensors of a few MB are freed and reallocated each
/// step; by default glibc serves them with fresh `mmap`s, and the page faults of zeroing those
/// pages cost about 15% of a ResNet-20 step on CPU (measured with `perf`: `clear_page_erms`,
/// `exc_page_fault`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only changes glibc allocator tunables; both values are in range.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 256 << 20);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

#[cfg(target_arch = "x86_64")]
#[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the documented way to reach MXCSR without asm.
fn flush_denormals() {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    const FTZ_DAZ: u32 = 0x8040;
    // SAFETY: SSE is always present on x86_64; only the FTZ and DAZ bits of MXCSR change.
    unsafe { _mm_setcsr(_mm_getcsr() | FTZ_DAZ) };
}

#[cfg(not(target_arch = "x86_64"))]
fn flush_denormals() {}
