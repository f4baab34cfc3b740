// layers/checkpoint.h: a training checkpoint in ONE safetensors file.
//
// Tensors: "model.<name>" (module.state_dict(): parameters and buffers), "optim.<key>"
// (optimizer.state_dict(), when an optimizer is given) and "extra.<key>" (anything else the caller
// needs to resume: RNG state, an MTL method's state, a scheduler's state_dict(), ...).
// Metadata: the caller's string map (step, epoch, seed, config, ...) plus the reserved keys
// "polyhead.checkpoint" (format version, "1") and "polyhead.optimizer" (the optimizer's name()).
// Keys starting with "polyhead." are reserved.
//
// save_checkpoint writes atomically (save_safetensors): an existing file is replaced only once the
// new one is completely on disk.
// load_checkpoint reads and validates everything before modifying anything: the file itself
// (load_safetensors), the format marker, the module's keys, shapes and dtypes (strict: every
// parameter and buffer present, no unknown key), the optimizer's type and state
// (Optimizer::validate_state_dict). On any error the module and optimizer are unchanged.
// With a null optimizer the "optim." entries are ignored; with one, they must be present.
#pragma once
#include <map>
#include <string>

#include "engine/tensor.h"

namespace polyhead::optim {
class Optimizer;
}

namespace polyhead::nn {

class Module;

void save_checkpoint(const std::string& path, const Module& module, const optim::Optimizer* optimizer,
                     const std::map<std::string, Tensor>& extra = {},
                     const std::map<std::string, std::string>& metadata = {});
inline void save_checkpoint(const std::string& path, const Module& module, const optim::Optimizer& optimizer,
                            const std::map<std::string, Tensor>& extra = {},
                            const std::map<std::string, std::string>& metadata = {}) {
  save_checkpoint(path, module, &optimizer, extra, metadata);
}

// extra / metadata (may be null) receive the caller's entries (without prefixes / reserved keys).
void load_checkpoint(const std::string& path, Module& module, optim::Optimizer* optimizer,
                     std::map<std::string, Tensor>* extra = nullptr,
                     std::map<std::string, std::string>* metadata = nullptr);
inline void load_checkpoint(const std::string& path, Module& module, optim::Optimizer& optimizer,
                            std::map<std::string, Tensor>* extra = nullptr,
                            std::map<std::string, std::string>* metadata = nullptr) {
  load_checkpoint(path, module, &optimizer, extra, metadata);
}

}  // namespace polyhead::nn
