// layers/sequential.cpp: see sequential.h.
#include "layers/sequential.h"

namespace polyhead::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> ms) {
  for (const auto& m : ms) append(m);
}

void Sequential::append(std::shared_ptr<UnaryModule> m) {
  PH_CHECK(m != nullptr, "Sequential::push_back", "module " << layers_.size() << " is null");
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  PH_CHECK(i < layers_.size(), "Sequential", "index " << i << " out of range for " << layers_.size() << " modules");
  return layers_[i];
}

Variable Sequential::forward(const Variable& x) {
  Variable y = x;
  for (auto& m : layers_) y = m->forward(y);
  return y;
}

}  // namespace polyhead::nn
