// mtl/methods/dual_cone.h: the dual-cone projection methods of torchjd.
//
// UPGrad (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv 2406.16232):
//   project each row g_i, scaled by the preference p_i = 1/K, onto the dual cone {x : G x >= 0} of
//   the rows, and sum the projections.
// DualProj (the projection of GEM, Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual
//   Learning", NeurIPS 2017, eq. 11; torchjd DualProj): project the mean gradient onto that cone.
//
// Both work on M only: M_n = M / tr(M) (0 if tr(M) < norm_eps), M_r = M_n + reg_eps I, and the
// projection of G^T u has weights v = argmin v^T M_r v s.t. v >= u (solvers/box_qp.h, exact
// active set). UPGrad: w = sum_i v(u = e_i / K); DualProj: w = v(u = 1/K).
// Options: norm_eps = 1e-4, reg_eps = 1e-4 (torchjd and LibMTL defaults).
// Invariants: G d >= 0 up to the reg_eps regularisation (non-conflicting), w >= u >= 0,
// permutation invariance, and d(a G) = a d(G) for a != 0 (the weights only see M / tr(M)).
// For K = 2 UPGrad equals PCGrad's combination divided by K (up to reg_eps).
// StepOutput.w = reported = w. Needs the Gramian only. Heads: unweighted gradients.
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class DualConeMethod final : public Method {
public:
  enum class Kind { UPGrad, DualProj };
  DualConeMethod(Kind kind, int K, const Options& opts);
  std::string name() const override { return kind_ == Kind::UPGrad ? "upgrad" : "dualproj"; }
  unsigned needs() const override { return kNeedGramian; }
  StepOutput step(const StepInput& in) override;

private:
  Kind kind_;
  int K_;
  double norm_eps_, reg_eps_;
};

}  // namespace polyhead::mtl
