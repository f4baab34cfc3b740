// mtl/methods/aligned_mtl.h: Aligned-MTL (Senushkin, Patakin, Kuznetsov & Konushin, "Independent
// Component Alignment for Multi-Task Learning", CVPR 2023).
//
// What it computes: the weights that make the combined gradient system well conditioned: with
// M = G G^T = V diag(lambda) V^T (Jacobi eigen solver, descending), numerical rank
// r = #{lambda > lambda_max * K * eps} (eps = float64 machine epsilon, as the references compute in
// float64), and
//   B = sqrt(sigma) V_r diag(lambda_r^(-1/2)) V_r^T,  sigma = lambda_r (scale_mode = min, default),
//       the lower median of the kept eigenvalues (median) or their mean (rmse),
// the weights are
//   scale = libmtl (default; LibMTL / official code): w = B 1   (= B.sum(0), B is symmetric)
//   scale = torchjd (torchjd AlignedMTL):              w = B 1 / K  (preference vector 1/K).
// If r = 0 (all gradients zero) B = I (torchjd; LibMTL would fail there).
// Invariants: state-free; w depends on M only through its eigen decomposition, so it is invariant
// to permuting tasks (w permutes along), and G B^T has orthogonal rows of equal norm sqrt(sigma) on
// the numerical range. d = G^T w; StepOutput.w = reported = w. Heads: unweighted gradients.
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class AlignedMtlMethod final : public Method {
public:
  AlignedMtlMethod(int K, const Options& opts);
  std::string name() const override { return "aligned_mtl"; }
  unsigned needs() const override { return kNeedGramian; }
  StepOutput step(const StepInput& in) override;
  int last_rank() const { return last_rank_; }

private:
  int K_;
  std::string scale_, scale_mode_;
  int last_rank_ = 0;
};

}  // namespace polyhead::mtl
