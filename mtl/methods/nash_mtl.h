// mtl/methods/nash_mtl.h: Nash-MTL (Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya,
// "Multi-Task Learning as a Bargaining Game", ICML 2022).
//
// What it computes: the Nash bargaining solution of the tasks, alpha > 0 with
//   alpha_k (G G^T alpha)_k = 1 for every k,
// found as in the official code (and LibMTL / torchjd) by the convex-concave procedure of
// solvers/nash.h, warm-started from the previous step's alpha (initially ones). Then d = G^T alpha
// is clipped to norm max_norm the way LibMTL's clip_grad_norm_ does:
//   w = alpha * min(1, max_norm / (|G^T alpha| + 1e-6))   (max_norm <= 0: no clipping),
// so StepOutput.w describes the clipped d, and `reported` holds alpha (what LibMTL returns).
// Options (defaults of LibMTL, torchjd and the official code): max_norm = 1.0,
// update_weights_every = 1 (between updates alpha is reused), optim_niter = 20 (CCP iterations).
// State: "alpha" (1 x K, the warm start / reused weights) and "step" (1 x 1, steps taken);
// load_state(state()) restores the method exactly.
// Invariants: alpha > 0; |d| <= max_norm (+1e-6 slack); when the CCP converges, alpha satisfies
// the Nash condition above (checked in tests). Since alpha scales like 1/|g|, the weights become
// tiny for large gradients (a known property, LibMTL issue #39).
// Needs the Gramian only. Heads: alpha-weighted gradients (LibMTL backward of sum_k alpha_k L_k).
// Deviation: see solvers/nash.h (restart from a feasible point when the warm start is outside the
// domain of the official linearisation).
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class NashMtlMethod final : public Method {
public:
  NashMtlMethod(int K, const Options& opts);
  std::string name() const override { return "nash_mtl"; }
  unsigned needs() const override { return kNeedGramian; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override;
  StateDict state() const override;
  void load_state(const StateDict& s) override;
  int last_ccp_iterations() const { return last_ccp_iterations_; }

private:
  int K_;
  double max_norm_;
  int update_every_, optim_niter_;
  std::vector<double> alpha_;
  long long step_ = 0;
  int last_ccp_iterations_ = 0;
};

}  // namespace polyhead::mtl
