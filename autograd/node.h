// autograd/node.h: a node of the backward graph, and the leaf gradient accumulator.
//
// Every backward rule is batched: the gradient for each output arrives with an extra leading
// dimension K (K cotangent rows; K = 1 for an ordinary backward), and the rule returns one
// gradient per input with the same leading K. Saved tensors never carry K; rules broadcast them.
// An undefined incoming gradient means zero; a rule may return undefined for an input that gets
// no gradient.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "engine/tensor.h"

namespace polyhead::ag {

struct Edge {
  std::shared_ptr<Node> fn;  // null: the input needs no gradient
  int input_nr = 0;          // which output of fn the input is
};

struct Node : std::enable_shared_from_this<Node> {
  std::vector<Edge> next;            // one per input of the forward op
  std::vector<Shape> output_shapes;  // shape of each output (to build zero gradients)
  DType dtype = DType::f32;
  Device device;
  uint64_t seq = 0;                  // creation order: later nodes run first
  bool released = false;

  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // gys[i]: gradient of output i with leading K, or undefined (zero).
  virtual std::vector<Tensor> apply(std::vector<Tensor>& gys, int64_t K) = 0;
  // Free saved tensors (after a backward without retain_graph).
  virtual void release() {}
};

// Sink of a leaf variable: accumulates incoming gradients into the variable's .grad.
struct AccumulateGrad final : Node {
  std::weak_ptr<VariableImpl> var;
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(std::vector<Tensor>&, int64_t) override { return {}; }
};

// Helpers for rules.
// g (K, *S) summed down to (K, *shape) where `shape` broadcast to S in the forward pass.
Tensor sum_to_batched(const Tensor& g, const Shape& shape);
// Shape with a leading K.
Shape batched_shape(int64_t K, const Shape& s);

}  // namespace polyhead::ag
