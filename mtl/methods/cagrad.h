// mtl/methods/cagrad.h: CAGrad, Conflict-Averse Gradient descent (Liu, Liu, Jin, Stone & Liu,
// "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021).
//
// What it computes: the update that maximises the worst task improvement within a ball of radius
// c |g0| around the average gradient g0, through its dual on the simplex:
//   scale = libmtl (default; LibMTL / official NYUv2 code):
//     A = M, g0 = mean_k g_k (|g0| = sqrt(mean(A) + 1e-8)), c = calpha |g0| + 1e-8, b = 1/K,
//     w* = argmin_{w in simplex} w^T A b + c sqrt(w^T A w + 1e-8),
//     g_w = G^T w*, lambda = c / (|g_w| + 1e-8), d = (g0 + lambda g_w) / r with
//     r = 1 + calpha^2 (rescale = 1), 1 + calpha (rescale = 2) or 1 (rescale = 0).
//     StepOutput.w = (1/K + lambda w*) / r; reported = w* (what LibMTL returns).
//   scale = torchjd (torchjd CAGrad(c = calpha, norm_eps)): M_n = M / tr(M) (0 if tr(M) < norm_eps),
//     phi = calpha sqrt(b^T M_n b), w* = argmin w^T M_n b + phi sqrt(w^T M_n w) on the simplex,
//     weights = 1/K + (phi / sqrt(w*^T M_n w*)) w*, or 0 when that norm is < norm_eps. No rescale
//     (and, as in torchjd, no multiplication by K either).
// Our dual solver (solvers/cagrad_dual.h) reaches the optimum to ~1e-14 relative, where LibMTL's
// SLSQP (ftol 1e-6) stops early and sometimes at a much worse point (golden README).
// Invariants: w* in the simplex; for calpha = 0, d = g0 / r; d is linear in G's scale (G -> aG
// gives d -> a d, a > 0) for scale = torchjd, approximately so for libmtl (its 1e-8 terms).
// Needs the Gramian only. Heads: unweighted gradients.
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class CagradMethod final : public Method {
public:
  CagradMethod(int K, const Options& opts);
  std::string name() const override { return "cagrad"; }
  unsigned needs() const override { return kNeedGramian; }
  StepOutput step(const StepInput& in) override;
  // The dual objective at the returned weights (diagnostics; libmtl scale).
  double last_objective() const { return last_objective_; }

private:
  int K_;
  double calpha_, norm_eps_;
  int rescale_;
  std::string scale_;
  double last_objective_ = 0.0;
};

}  // namespace polyhead::mtl
