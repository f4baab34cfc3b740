// mtl/per_task_grads.h: the three ways to get per-task gradient information, each explicit.
//
//   split_forward()        forward with each task representation Z cut from the trunk graph: the
//                          heads see a detached copy Z' (requires grad), so head backward passes
//                          stop at Z' and the trunk is traversed only when asked.
//   1. representation_grads()   dL_k/dZ for every task k (K head-only backward passes), plus each
//                          task's head gradients, kept apart so the caller can weight them.
//   2. shared_jacobian()   the K x P Jacobian over the shared parameters by ONE backward through
//                          the trunk over K stacked cotangent rows (batched backward).
//      shared_jacobian_reference()  the same by K separate backward passes (tests).
//   3. gramian()           M = G G^T in float64.
// trunk_backward() then sends a combined cotangent sum_k w_k dL_k/dZ through the trunk once
// (the representation-gradient path and loss weightings), and set_shared_grad() writes a combined
// vector d into the shared parameters' gradients (the Jacobian path).
#pragma once
#include <vector>

#include "mtl/method.h"
#include "mtl/model.h"

namespace polyhead::mtl {

struct Batch {
  Tensor x;
  std::vector<Tensor> y;  // target of each task
};

struct SplitForward {
  std::vector<Variable> reps;     // trunk outputs (with the trunk's graph)
  std::vector<Variable> cut;      // detached copies fed to the heads
  std::vector<Variable> outputs;  // head outputs, one per task
  std::vector<Variable> losses;   // one scalar per task
  std::vector<double> loss_values() const;
  int rep_of(int k) const { return cut.size() == 1 ? 0 : k; }
};

SplitForward split_forward(MultiTaskModel& m, const Batch& b);

struct RepGrads {
  std::vector<Tensor> dz;                      // per representation r: (K, *Z_r), row k = dL_k/dZ_r
  std::vector<std::vector<Tensor>> head_grads; // per task k: gradients of task_parameters(k)
                                               // (architecture-owned ones filled by shared_jacobian)
};
RepGrads representation_grads(MultiTaskModel& m, SplitForward& f);

// Add head gradients into .grad, task k scaled by scale[k] (1 for unweighted heads).
void accumulate_head_grads(MultiTaskModel& m, const RepGrads& g, const std::vector<double>& scale);

// (K, P) in the model's dtype; columns follow m.shared_parameters() order. The same batched
// backward also gives the gradients of the architecture's task-owned parameters (gates, task
// experts: row k of their result is dL_k/dp); they are stored into g.head_grads.
Tensor shared_jacobian(MultiTaskModel& m, SplitForward& f, RepGrads& g, bool retain_graph = false);
Tensor shared_jacobian_reference(MultiTaskModel& m, const Batch& b);

// M = G G^T (float64, K x K). G (K, P) any float dtype.
Mat gramian(const Tensor& G);
// Rows of a (K, P) tensor as a float64 matrix.
Mat to_mat(const Tensor& G);
Tensor from_vector_as(const std::vector<double>& v, const Tensor& like);

// Backward through the trunk with the cotangent sum_k w_k dz[.][k] (accumulates into .grad).
void trunk_backward(SplitForward& f, const RepGrads& g, const std::vector<double>& w, bool retain_graph = false);
// shared .grad += d (P), split over the shared parameters.
void add_shared_grad(MultiTaskModel& m, const Tensor& d);

}  // namespace polyhead::mtl
