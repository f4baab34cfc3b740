// autograd/variable.h: Variable, a Tensor that records how it was computed.
//
// A Variable wraps a Tensor (data) plus, when it requires a gradient, either a grad_fn (the Node
// that produced it) or, for a leaf, a gradient accumulator. Contract:
//   - data() is never undefined for a constructed Variable.
//   - grad() is undefined until a backward pass reaches the leaf (or the owner sets it, e.g. to a
//     view into a flat gradient buffer, which backward then accumulates into in place).
//   - Ops on Variables build the graph only while grad mode is on (see NoGradGuard).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace polyhead::ag {

struct Node;

struct VariableImpl {
  Tensor data;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // producer (non-leaf)
  int output_nr = 0;              // which output of grad_fn
  std::weak_ptr<Node> accumulator;  // leaf gradient sink (created on demand)
  std::string name;
};

class Variable {
public:
  Variable() = default;
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const;
  // Replace the data in place (no graph recorded), e.g. an optimizer step or load_state_dict.
  void set_data(const Tensor& t);
  const Tensor& grad() const;
  void set_grad(const Tensor& g);
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Variable& set_requires_grad(bool r);
  bool is_leaf() const { return !impl_ || impl_->grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const;
  int output_nr() const { return impl_ ? impl_->output_nr : 0; }
  Variable detach() const { return Variable(data(), false); }
  const std::string& name() const;
  Variable& set_name(const std::string& n);

  // Tensor-like metadata.
  const Shape& shape() const { return data().shape(); }
  int dim() const { return data().dim(); }
  int64_t size(int d) const { return data().size(d); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }
  double item() const { return data().item(); }
  std::string str() const { return data().str(); }

  // Backward from this (scalar, unless grad_output given) variable into the leaves' .grad.
  void backward(const Tensor& grad_output = {}, bool retain_graph = false) const;

  // Internal: the graph edge that gradients for this variable flow into.
  std::shared_ptr<Node> gradient_edge_node() const;
  VariableImpl* impl() const { return impl_.get(); }
  bool same(const Variable& o) const { return impl_ == o.impl_; }

  static Variable from_node(Tensor data, std::shared_ptr<Node> fn, int output_nr);

private:
  std::shared_ptr<VariableImpl> impl_;
};

// Grad mode: while disabled, ops record no graph.
bool grad_mode_enabled();
class NoGradGuard {
public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
  bool prev_;
};

}  // namespace polyhead::ag
