// layers/sequential.h: Sequential, a chain of unary modules named "0", "1", ...
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "layers/module.h"

namespace polyhead::nn {

class Sequential : public UnaryModule {
public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> ms);
  // Appends m as child "<size()>"; returns it.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    append(m);
    return m;
  }
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;
  const std::vector<std::shared_ptr<UnaryModule>>& layers() const { return layers_; }

private:
  void append(std::shared_ptr<UnaryModule> m);
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace polyhead::nn
