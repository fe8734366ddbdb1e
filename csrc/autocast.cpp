// PyTorch's autocast for one device type and dtype, which tch 0.26 does not bind (its
// `tch::autocast` enables CUDA float16 only). Called from src/train/amp.rs.
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
}  // namespace

extern "C" {

// Enables autocast on the CPU (cuda = 0) or CUDA (cuda = 1) with bfloat16 (half = 0) or float16
// (half = 1). Returns 0, or -1 if libtorch threw.
int dm_autocast_enter(int cuda, int half) {
  try {
    at::DeviceType d = device_type(cuda);
    at::autocast::set_autocast_dtype(d, half ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Disables autocast on that device and, at the outermost level, frees the cast weights' cache.
int dm_autocast_exit(int cuda) {
  try {
    at::autocast::set_autocast_enabled(device_type(cuda), false);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
