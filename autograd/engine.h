// autograd/engine.h: the backward engine.
//
// backward(): accumulate d(roots)/d(leaves) into the leaves' .grad (or only into `inputs`).
// grad(): return d(outputs)/d(inputs) without touching .grad.
// Batched cotangents: with `batched = true` each grad_output carries a leading dim K, and each
// returned gradient has that leading K: row k is the VJP with the k-th cotangent rows, computed
// in one sweep. grad(losses, params, one-hot rows) is the K-row Jacobian.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace polyhead::ag {

struct BackwardOptions {
  bool retain_graph = false;
  std::vector<Variable> inputs;  // empty: all leaves that require grad
  bool batched = false;          // grad_roots carry a leading K (leaf .grad then gets K rows too)
};

void backward(const std::vector<Variable>& roots, const std::vector<Tensor>& grad_roots,
              const BackwardOptions& opt = {});

struct GradOptions {
  bool retain_graph = false;
  bool batched = false;
  bool allow_unused = false;  // else: an input the outputs do not depend on is an error
};

// Returns one tensor per input (undefined only if allow_unused and unused).
std::vector<Tensor> grad(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, const GradOptions& opt = {});

}  // namespace polyhead::ag
