// mtl/methods/config.h: ConFIG, Conflict-Free Inverse Gradients (Liu, Chu, Thuerey, "ConFIG:
// Towards Conflict-free Training of Physics Informed Neural Networks", ICLR 2025), in torchjd's
// form (torchjd ConFIG with the default Sum preference).
//
// What it computes: with unit rows u_k = g_k / |g_k| (a zero row stays 0), the direction
//   b = pinv(U) 1   (the minimum-norm x with u_k . x = 1 for all k when U has full row rank;
//                    pinv cut at max(K, P) * eps * the largest singular value, as torch.linalg.pinv),
//   u = b / max(|b|, 1e-12),   d = (sum_k g_k . u) u.
// pinv(U) is computed without forming U U^T: a twice-orthogonalised Gram-Schmidt QR of the rows
// (U = L Q, Q with orthonormal rows) and a one-sided Jacobi SVD of the small K x K factor L, so the
// singular values keep their relative accuracy (rank decisions as torch's SVD makes them).
// Invariants: when U has full row rank, d has the same positive projection onto every unit task
// gradient (u_k . d equal for all k), so G d > 0: non-conflicting; permutation invariance;
// d(a G) = a d(G) for a > 0. Needs G (K x P); returns d (StepOutput.d), no weights.
// Heads: unweighted gradients.
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class ConfigMethod final : public Method {
public:
  ConfigMethod(int K, const Options& opts);
  std::string name() const override { return "config"; }
  unsigned needs() const override { return kNeedJacobian; }
  StepOutput step(const StepInput& in) override;

private:
  int K_;
};

}  // namespace polyhead::mtl
