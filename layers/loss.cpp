// layers/loss.cpp: see loss.h. Written with ag:: ops only, so every loss is differentiable
// (and batched-cotangent capable) through the existing backward rules.
#include "layers/loss.h"

#include <limits>
#include <vector>

#include "engine/ops.h"

namespace polyhead::nn {

namespace {

Variable reduce(const Variable& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Sum: return ag::sum(l);
    case Reduction::Mean: return ag::mean(l);
  }
  return l;
}

void check_same_shape(const char* loss, const Variable& input, const Variable& target) {
  PH_CHECK_HINT(input.shape() == target.shape(), loss,
                "input shape " << shape_str(input.shape()) << " and target shape " << shape_str(target.shape())
                               << " differ",
                "reshape the target to the input's shape (no broadcasting in losses)");
  PH_CHECK_HINT(input.dtype() == target.dtype() && input.device() == target.device(), loss,
                "input " << input.str() << " and target " << target.str() << " differ in dtype or device",
                "convert the target with .to(DType) / .to(Device)");
}

// Class-index target: logits (N, C, d...) need target (N, d...).
void check_class_target(const char* loss, const Variable& x, const Tensor& target) {
  target.check_defined(loss);
  PH_CHECK_HINT(x.dim() >= 2, loss, "input shape " << shape_str(x.shape()) << " must be (N, C) or (N, C, d1, ...)",
                "add a batch dim");
  Shape want = x.shape();
  want.erase(want.begin() + 1);
  PH_CHECK_HINT(target.shape() == want, loss,
                "input shape " << shape_str(x.shape()) << " needs target shape " << shape_str(want) << ", got target shape "
                               << shape_str(target.shape()),
                "targets hold one class index per sample (dim 1 of the input is the class dim)");
  PH_CHECK_HINT(target.dtype() == DType::i64, loss, "targets must be class indices (i64), got " << target.str(),
                "convert with .to(DType::i64)");
}

Variable wrap(const Tensor& t, const char* loss) {
  t.check_defined(loss);
  return Variable(t, false);
}

}  // namespace

Variable cross_entropy(const Variable& logits, const Tensor& target, Reduction r, int64_t ignore_index,
                       double label_smoothing) {
  check_class_target("cross_entropy", logits, target);
  return ag::cross_entropy(logits, target, r, ignore_index, label_smoothing);
}

Variable nll_loss(const Variable& log_probs, const Tensor& target, Reduction r, int64_t ignore_index) {
  const char* op = "nll_loss";
  check_class_target(op, log_probs, target);
  // (N, C, d...) -> (M, C) rows.
  Variable lp = log_probs;
  if (lp.dim() > 2) {
    std::vector<int> perm{0};
    for (int i = 2; i < lp.dim(); ++i) perm.push_back(i);
    perm.push_back(1);
    lp = ag::reshape(ag::permute(lp, perm), {-1, log_probs.size(1)});
  }
  const int64_t M = lp.size(0), C = lp.size(1);
  // Constant weights w[m, c] = -1 at the target class (0 on ignored rows): loss_m = sum_c w lp.
  std::vector<int64_t> tv = target.to_vector<int64_t>();
  std::vector<double> w(size_t(M * C), 0.0);
  int64_t count = 0;
  for (int64_t m = 0; m < M; ++m) {
    int64_t t = tv[size_t(m)];
    if (t == ignore_index) continue;
    PH_CHECK_HINT(t >= 0 && t < C, op, "target " << t << " at position " << m << " outside [0, " << C << ")",
                  "targets are class indices in [0, C) or ignore_index");
    w[size_t(m * C + t)] = -1.0;
    ++count;
  }
  Tensor wt = Tensor::from_vector(w, {M, C}).to(lp.dtype()).to(lp.device());
  Variable per = ag::sum(ag::mul_constant(lp, wt), {1});  // (M)
  switch (r) {
    case Reduction::None: return ag::reshape(per, target.shape());
    case Reduction::Sum: return ag::sum(per);
    case Reduction::Mean:
      return ag::mul_scalar(ag::sum(per), count ? 1.0 / double(count) : std::numeric_limits<double>::quiet_NaN());
  }
  return per;
}

Variable mse_loss(const Variable& input, const Variable& target, Reduction r) {
  check_same_shape("mse_loss", input, target);
  Variable d = ag::sub(input, target);
  return reduce(ag::mul(d, d), r);
}
Variable mse_loss(const Variable& input, const Tensor& target, Reduction r) {
  return mse_loss(input, wrap(target, "mse_loss"), r);
}

Variable l1_loss(const Variable& input, const Variable& target, Reduction r) {
  check_same_shape("l1_loss", input, target);
  return reduce(ag::abs(ag::sub(input, target)), r);
}
Variable l1_loss(const Variable& input, const Tensor& target, Reduction r) {
  return l1_loss(input, wrap(target, "l1_loss"), r);
}

Variable huber_loss(const Variable& input, const Variable& target, Reduction r, double delta) {
  check_same_shape("huber_loss", input, target);
  PH_CHECK(delta > 0, "huber_loss", "delta " << delta << " must be positive");
  Variable d = ag::sub(input, target);
  Variable a = ag::abs(d);
  // |d| > delta picks the linear branch; at |d| == delta both branches (and slopes) agree.
  Tensor big = ops::unary(UnaryOp::GtScalar, a.data(), delta).to(DType::u8);
  Variable quad = ag::mul_scalar(ag::mul(d, d), 0.5);
  Variable lin = ag::mul_scalar(ag::add_scalar(a, -0.5 * delta), delta);
  return reduce(ag::where(big, lin, quad), r);
}
Variable huber_loss(const Variable& input, const Tensor& target, Reduction r, double delta) {
  return huber_loss(input, wrap(target, "huber_loss"), r, delta);
}

Variable bce_with_logits(const Variable& logits, const Variable& target, Reduction r) {
  check_same_shape("bce_with_logits", logits, target);
  // softplus(x) = max(x, 0) + log(1 + exp(-|x|)) = log(exp(0) + exp(x)), taken as
  // -log_softmax([x, 0])[1]: stable for any x, and its gradient sigmoid(x) is exact at x = 0
  // too (the max/abs form gets relu'(0) = abs'(0) = 0 there, i.e. a zero instead of 1/2).
  Variable zero(Tensor::zeros(logits.shape(), logits.dtype(), logits.device()), false);
  Variable softplus = ag::neg(ag::select(ag::log_softmax(ag::stack({logits, zero}, -1), -1), -1, 1));
  return reduce(ag::sub(softplus, ag::mul(logits, target)), r);
}
Variable bce_with_logits(const Variable& logits, const Tensor& target, Reduction r) {
  return bce_with_logits(logits, wrap(target, "bce_with_logits"), r);
}

}  // namespace polyhead::nn
