// mtl/methods/mgda.h: MGDA, the Multiple Gradient Descent Algorithm as used for multi-task
// learning by Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
//
// What it computes: the minimum-norm point of the convex hull of the (normalised) task gradients,
//   w* = argmin_{w in simplex} |sum_k w_k g_k / gn_k|^2,   d = sum_k w*_k g_k / gn_k.
// Options (LibMTL defaults):
//   gn     = none | l2 | loss | loss+  gradient normalisers gn_k = 1, |g_k|, L_k, L_k |g_k| (LibMTL
//            mgda_gn). As in LibMTL (rep_grad = False) the weights combine the NORMALISED rows, so
//            StepOutput.w_k = w*_k / gn_k (d = G^T w) and `reported` holds the raw simplex weights w*.
//   solver = libmtl (default; LibMTL's own iteration, golden libmtl_mgda*.json) | torchjd
//            (torchjd's Frank-Wolfe, golden torchjd_mgda.json) | exact (Wolfe's algorithm: the true
//            min-norm point to rounding).
// Invariants: w* lies in the simplex; with solver=exact, g_k . d >= |d|^2 for every k (d is a
// common non-ascent direction, "non-conflicting"), and d = 0 iff 0 is in the convex hull.
// Needs the Gramian only (plus the losses for gn = loss / loss+). Heads: unweighted gradients.
// Errors: gn = l2 / loss+ with a zero gradient (or gn = loss with a zero loss) divides by 0:
// LibMTL raises (K = 2) or returns NaN (K >= 3); we always throw polyhead::Error.
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class MgdaMethod final : public Method {
public:
  MgdaMethod(int K, const Options& opts);
  std::string name() const override { return "mgda"; }
  unsigned needs() const override;
  StepOutput step(const StepInput& in) override;
  int last_iterations() const { return last_iterations_; }

private:
  int K_;
  std::string gn_, solver_;
  int last_iterations_ = 0;
};

}  // namespace polyhead::mtl
