// autograd/function_util.h: how a differentiable op records itself.
// make_op(name, out, inputs, rule) returns the output Variable; when grad mode is on and some input
// requires grad, it attaches a node whose backward is `rule` (a closure holding exactly the
// tensors backward needs; release() drops it). rule(gy, K, need) gets the batched gradient
// gy (K, *out.shape) and returns one batched gradient per input (undefined where need[i] is
// false or the input gets none).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "autograd/variable.h"

namespace polyhead::ag {

using Rule = std::function<std::vector<Tensor>(const Tensor& gy, int64_t K, const std::vector<bool>& need)>;

struct RuleNode final : Node {
  std::string op;
  Rule rule;
  std::vector<bool> need;
  std::string name() const override { return op; }
  std::vector<Tensor> apply(std::vector<Tensor>& gys, int64_t K) override {
    Tensor gy = gys[0];
    if (!gy.defined()) gy = Tensor::zeros(batched_shape(K, output_shapes[0]), dtype, device);
    return rule(gy, K, need);
  }
  void release() override { rule = nullptr; }
};

inline bool any_requires_grad(const std::vector<Variable>& xs) {
  if (!grad_mode_enabled()) return false;
  for (const auto& x : xs)
    if (x.defined() && x.requires_grad()) return true;
  return false;
}

inline Variable make_op(const char* name, Tensor out, const std::vector<Variable>& inputs, Rule rule) {
  if (!any_requires_grad(inputs)) return Variable(std::move(out), false);
  auto n = std::make_shared<RuleNode>();
  n->op = name;
  n->rule = std::move(rule);
  n->output_shapes = {out.shape()};
  n->dtype = out.dtype();
  n->device = out.device();
  for (const auto& x : inputs) {
    bool r = x.defined() && x.requires_grad();
    n->need.push_back(r);
    n->next.push_back(r ? Edge{x.gradient_edge_node(), x.output_nr()} : Edge{});
  }
  return Variable::from_node(std::move(out), n, 0);
}

}  // namespace polyhead::ag
