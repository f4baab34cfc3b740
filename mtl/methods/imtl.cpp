// mtl/methods/imtl.cpp: "imtl", Impartial Multi-Task Learning (Liu et al., "Towards Impartial
// Multi-task Learning", ICLR 2021), LibMTL hybrid IMTL = IMTL-L + IMTL-G:
//   IMTL-L: losses e^{s_k} L_k - s_k with learnable s (init 0); param_grads = e^s L - 1.
//   IMTL-G on the scaled gradients g'_k = e^{s_k} g_k, in closed form from the Gramian
//     M' = S M S (S = diag e^s), n_k = ||g'_k||, u_k = g'_k / n_k:
//     b_t = g'_1.(u_1 - u_t), A_ab = (g'_1 - g'_a).(u_1 - u_b)  (a, b = 2..K),
//     alpha_{2:K} = b^T A^{-1} (LU with partial pivoting), alpha_1 = 1 - sum alpha_{2:K},
//     d = sum_k alpha_k g'_k, i.e. w_k = alpha_k e^{s_k}. StepOutput.reported = alpha (LibMTL's
//     return value). alpha can be negative.
// Invariants: Gram-only (needs M, not G); a zero gradient row (0/0 in u) or a singular A throws
// polyhead::Error (LibMTL yields NaN); params() = s stepped by the trainer's optimizer;
// state() = {"loss_scale": s}; heads get unweighted gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

// Solves A^T x = b for square A by LU with partial pivoting. Returns false if A is singular.
bool solve_transposed(const Mat& A, const Vec& b, Vec& x) {
  const int n = A.rows;
  Mat T(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) T(i, j) = A(j, i);
  x = b;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(T(r, c)) > std::abs(T(p, c))) p = r;
    if (T(p, c) == 0.0 || !std::isfinite(T(p, c))) return false;
    if (p != c) {
      for (int j = 0; j < n; ++j) std::swap(T(p, j), T(c, j));
      std::swap(x[p], x[c]);
    }
    for (int r = c + 1; r < n; ++r) {
      const double f = T(r, c) / T(c, c);
      if (f == 0.0) continue;
      for (int j = c; j < n; ++j) T(r, j) -= f * T(c, j);
      x[r] -= f * x[c];
    }
  }
  for (int r = n - 1; r >= 0; --r) {
    double s = x[r];
    for (int j = r + 1; j < n; ++j) s -= T(r, j) * x[j];
    x[r] = s / T(r, r);
  }
  return all_finite(x);
}

class IMTL final : public BasicMethod {
public:
  explicit IMTL(int K) : BasicMethod("imtl", K), s_(size_t(K), 0.0), grad_(size_t(K), 0.0) {}
  unsigned needs() const override { return kNeedLosses | kNeedGramian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    if (!all_finite(s_))
      throw Error(name_, "the learnable loss scales became non-finite",
                  "lower the learning rate of the method's parameters");
    const Mat M = gramian_of(in);
    Vec e(static_cast<size_t>(K_)), n(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) {
      e[k] = std::exp(s_[k]);
      grad_[k] = e[k] * in.L[k] - 1.0;
    }
    Mat Ms(K_, K_);
    for (int i = 0; i < K_; ++i)
      for (int j = 0; j < K_; ++j) Ms(i, j) = e[i] * M(i, j) * e[j];
    for (int k = 0; k < K_; ++k) {
      n[k] = std::sqrt(std::max(Ms(k, k), 0.0));
      if (!(n[k] > 0))
        throw Error(
            name_, "the gradient of task " + std::to_string(k) + " is zero, so its unit direction is 0/0",
            "IMTL-G needs every task to have a non-zero gradient; use a method that tolerates it (e.g. imtl_g, mgda)");
    }
    Vec alpha(static_cast<size_t>(K_));
    if (K_ == 1) {
      alpha[0] = 1.0;
    } else {
      const int m = K_ - 1;
      Vec b(static_cast<size_t>(m));
      Mat A(m, m);
      for (int t = 0; t < m; ++t) b[t] = Ms(0, 0) / n[0] - Ms(0, t + 1) / n[t + 1];
      for (int a = 0; a < m; ++a)
        for (int c = 0; c < m; ++c)
          A(a, c) = (Ms(0, 0) - Ms(a + 1, 0)) / n[0] - (Ms(0, c + 1) - Ms(a + 1, c + 1)) / n[c + 1];
      Vec x;
      if (!solve_transposed(A, b, x))
        throw Error(name_, "the IMTL-G system D U^T is singular (some task gradients are linearly dependent)",
                    "use imtl_g (pseudo-inverse) or mgda when task gradients can be collinear");
      double sum = 0.0;
      for (int t = 0; t < m; ++t) {
        alpha[t + 1] = x[t];
        sum += x[t];
      }
      alpha[0] = 1.0 - sum;
    }
    StepOutput out;
    out.w.resize(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) out.w[k] = alpha[k] * e[k];
    out.reported = std::move(alpha);
    return out;
  }

  std::span<double> params() override { return s_; }
  std::span<const double> param_grads() const override { return grad_; }
  StateDict state() const override { return {{"loss_scale", row_mat(s_)}}; }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"loss_scale"});
    s_ = read_vec(name_, s, "loss_scale", K_).value_or(Vec(size_t(K_), 0.0));
    std::fill(grad_.begin(), grad_.end(), 0.0);
  }

private:
  Vec s_, grad_;
};

}  // namespace

std::unique_ptr<Method> make_imtl(int K, const Options& o) {
  o.check_known("imtl", {});
  return std::make_unique<IMTL>(K);
}

}  // namespace polyhead::mtl::basic
