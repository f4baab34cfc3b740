// mtl/architecture.cpp: hard parameter sharing.
#include "mtl/architecture.h"

namespace polyhead::mtl {

HPS::HPS(std::shared_ptr<nn::UnaryModule> encoder, int K) : Architecture(K), encoder_(std::move(encoder)) {
  register_module("encoder", encoder_);
}

std::vector<Variable> HPS::forward(const Variable& x) { return {encoder_->forward(x)}; }

}  // namespace polyhead::mtl
