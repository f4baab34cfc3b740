// engine/accelerator.cpp: see accelerator.h.
#include "engine/accelerator.h"

#include "engine/error.h"
#ifndef POLYHEAD_HAVE_CUDA
#define POLYHEAD_HAVE_CUDA 0
#endif
#if POLYHEAD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif

namespace polyhead {

bool cuda_built() { return POLYHEAD_HAVE_CUDA != 0; }

bool init_cuda(bool required) {
#if POLYHEAD_HAVE_CUDA
  if (!cuda::available()) {
    if (required) throw Error("init_cuda", "no CUDA device is present", "run on a machine with an NVIDIA GPU, or use the CPU");
    return false;
  }
  cuda::init();
  return true;
#else
  if (required)
    throw Error("init_cuda", "this build has no CUDA backend",
                "install the CUDA toolkit and rebuild (cmake -DPOLYHEAD_CUDA=ON), or use the CPU");
  return false;
#endif
}

std::string accelerator_summary() {
#if POLYHEAD_HAVE_CUDA
  if (!cuda::available()) return "CUDA built, no device present";
  return cuda::device_summary() + (cuda::tf32() ? ", TF32 on" : ", TF32 off");
#else
  return "CUDA not built (CPU only)";
#endif
}

}  // namespace polyhead
