// mtl/diagnostics/hvp.h: Hessian-vector products of a multi-task model's loss by central finite
// differences of gradients (D4 sharpness), on a fixed batch, over a chosen parameter set.
//
//   L(theta) = sum_k w_k L_k(theta; batch)   (w = e_k: task k alone; w = 1: the summed multi-task
//                                             loss the equal-weight update descends [E])
//   H v ~ (grad L(theta + eps v) - grad L(theta - eps v)) / (2 eps),  eps = eps_scale / ||v||
// (the spec's default eps_scale 1e-3). Exact for a loss quadratic in the parameters, up to rounding.
// The parameters (by default the shared ones, the spec's choice) are written in place for the two
// gradients and restored bit for bit from a saved copy afterwards; the model's .grad buffers are
// not touched (ag::grad). The caller chooses train / eval mode (the diagnostics use eval mode).
// Vectors are float64 and ordered like `params` (for shared_parameters(): the Jacobian's columns).
#pragma once
#include <vector>

#include "mtl/per_task_grads.h"

namespace polyhead::mtl::diag {

// Concatenated values of the parameters, float64 on the CPU.
std::vector<double> params_to_vector(const std::vector<Variable>& params);
int64_t params_numel(const std::vector<Variable>& params);

// grad_theta sum_k w_k L_k on batch b (w: one weight per task; zero weights skip the task).
std::vector<double> loss_gradient(MultiTaskModel& m, const Batch& b, const std::vector<double>& w,
                                  const std::vector<Variable>& params);

class FiniteDiffHvp {
public:
  FiniteDiffHvp(MultiTaskModel& m, Batch b, std::vector<double> w, std::vector<Variable> params, double eps_scale = 1e-3);
  int64_t dim() const { return dim_; }
  std::vector<double> operator()(const std::vector<double>& v);
  int products() const { return products_; }

private:
  void set_shifted(const std::vector<double>& v, double eps);
  void restore();
  MultiTaskModel& m_;
  Batch b_;
  std::vector<double> w_;
  std::vector<Variable> params_;
  std::vector<Tensor> saved_;
  double eps_scale_;
  int64_t dim_ = 0;
  int products_ = 0;
};

}  // namespace polyhead::mtl::diag
