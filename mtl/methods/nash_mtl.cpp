// mtl/methods/nash_mtl.cpp: Nash-MTL (see nash_mtl.h).
#include "mtl/methods/nash_mtl.h"

#include <cmath>

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"
#include "mtl/solvers/nash.h"

namespace polyhead::mtl {

NashMtlMethod::NashMtlMethod(int K, const Options& opts) : K_(K), alpha_(K, 1.0) {
  opts.check_known("nash_mtl", {"max_norm", "update_weights_every", "optim_niter"});
  max_norm_ = opts.get_double("max_norm", 1.0);
  if (!std::isfinite(max_norm_))
    throw Error("make_method", "method 'nash_mtl': option max_norm is not finite", "give max_norm > 0, or <= 0 to disable clipping");
  update_every_ = solver_common::positive_int(opts, "nash_mtl", "update_weights_every", 1);
  optim_niter_ = solver_common::positive_int(opts, "nash_mtl", "optim_niter", 20);
}

StepOutput NashMtlMethod::step(const StepInput& in) {
  const Mat& M = solver_common::require_gramian("nash_mtl", K_, in);
  last_ccp_iterations_ = 0;
  if (step_ % update_every_ == 0) {
    solvers::NashResult r = solvers::nash_ccp(M, alpha_, optim_niter_);
    last_ccp_iterations_ = r.ccp_iterations;
    alpha_ = r.alpha;
  }
  ++step_;
  double norm = std::sqrt(std::max(linalg::quad(M, alpha_), 0.0));
  double coef = 1.0;
  if (max_norm_ > 0) coef = std::min(1.0, max_norm_ / (norm + 1e-6));
  std::vector<double> w(K_);
  for (int k = 0; k < K_; ++k) w[k] = alpha_[k] * coef;
  return solver_common::weights_output(std::move(w), alpha_);
}

StateDict NashMtlMethod::state() const {
  StateDict s;
  Mat a(1, K_);
  for (int k = 0; k < K_; ++k) a(0, k) = alpha_[k];
  s["alpha"] = a;
  Mat st(1, 1);
  st(0, 0) = double(step_);
  s["step"] = st;
  return s;
}

void NashMtlMethod::load_state(const StateDict& s) {
  auto ia = s.find("alpha");
  auto is = s.find("step");
  if (ia == s.end() || is == s.end())
    throw Error("nash_mtl load_state", "state must hold 'alpha' (1 x K) and 'step' (1 x 1)",
                "pass a StateDict produced by state() of a nash_mtl method with the same K");
  const Mat& a = ia->second;
  if (a.rows * a.cols != K_ || a.a.size() != size_t(K_))
    throw Error("nash_mtl load_state", "'alpha' has " + std::to_string(a.a.size()) + " entries, expected K = " + std::to_string(K_));
  if (is->second.a.size() != 1) throw Error("nash_mtl load_state", "'step' must be 1 x 1");
  for (double v : a.a)
    if (!std::isfinite(v)) throw Error("nash_mtl load_state", "'alpha' has NaN/Inf entries");
  double st = is->second.a[0];
  if (!(st >= 0) || st != std::floor(st)) throw Error("nash_mtl load_state", "'step' must be a non-negative integer");
  alpha_.assign(a.a.begin(), a.a.end());
  step_ = (long long)st;
}

}  // namespace polyhead::mtl
