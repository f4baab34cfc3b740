// autograd/gradcheck.h: gradient checker (float64 central differences) and the batched-cotangent
// check (one backward over K stacked cotangents equals K separate backward passes).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace polyhead::ag {

using GradFn = std::function<Variable(const std::vector<Variable>&)>;

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  int projections = 2;   // random output cotangents checked by finite differences
  int64_t K = 3;         // rows in the batched check
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // what failed: input, element, analytic vs numeric
  double max_error = 0;
};

// Inputs must be f64 tensors; each becomes a leaf requiring grad. f must be deterministic (ops
// that draw random numbers reseed the default generator identically per call).
GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o = {});
GradcheckResult batched_check(const GradFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o = {});

}  // namespace polyhead::ag
