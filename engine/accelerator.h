// engine/accelerator.h: bringing up the CUDA backend at start-up, explicitly, and only when the
// build has it and a device is present. Programs call init_cuda() when the user asks for a GPU.
#pragma once
#include <string>

namespace polyhead {

// Whether this build contains the CUDA backend.
bool cuda_built();
// Registers the CUDA backend when a device is present; returns whether Device::cuda(0) is usable.
// required = true: throws polyhead::Error saying why not (no CUDA in the build, no device, or an
// unsupported compute capability) instead of returning false.
bool init_cuda(bool required);
// One line: the CUDA device and TF32 setting, or why there is none.
std::string accelerator_summary();

}  // namespace polyhead
