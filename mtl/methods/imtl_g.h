// mtl/methods/imtl_g.h: IMTL-G, the gradient half of Impartial Multi-Task Learning (Liu, Li, Kuang,
// Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning", ICLR 2021), in torchjd's
// pseudo-inverse generalisation (torchjd IMTLG; Quinton & Rey, arXiv 2406.16232).
//
// What it computes: v = pinv(M) sqrt(diag M) (pinv cut at K * eps * max singular value, the
// default of torch.linalg.pinv), w = v / sum(v), or w = 0 when |sum(v)| < 1e-12. For G of full row
// rank this is the classic IMTL-G: d = G^T w has equal projections onto every unit task gradient
// (d . g_k / |g_k| is the same for all k) and sum(w) = 1.
// Invariants: permutation invariance; invariant to scaling G (w unchanged, d scales). Weights may
// be negative. StepOutput.w = reported = w. Needs the Gramian only. Heads: unweighted gradients.
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class ImtlgMethod final : public Method {
public:
  ImtlgMethod(int K, const Options& opts);
  std::string name() const override { return "imtl_g"; }
  unsigned needs() const override { return kNeedGramian; }
  StepOutput step(const StepInput& in) override;

private:
  int K_;
};

}  // namespace polyhead::mtl
