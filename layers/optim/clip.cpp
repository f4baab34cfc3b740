// layers/optim/clip.cpp: gradient-norm clipping (see clip.h).
#include "layers/optim/clip.h"

#include <cmath>

#include "engine/ops.h"
#include "layers/module.h"

namespace polyhead::optim {

namespace {

const char* kOp = "clip_grad_norm_";

void check_norm_type(double p) {
  PH_CHECK_HINT(p > 0 && !std::isnan(p), kOp, "norm_type must be > 0 (or INFINITY), got " << p,
                "use 2.0 for the Euclidean norm, INFINITY for the max norm");
}

// Sum of |g|^p (p finite) or max |g| (p infinite) over one tensor, in f64.
double partial(const Tensor& g, double p) {
  if (g.numel() == 0) return 0.0;
  Tensor a = ops::unary(UnaryOp::Abs, g.to(DType::f64));
  if (std::isinf(p)) {
    const double s = ops::sum(a).item();  // NaN when any element is NaN, Inf when any is Inf
    return std::isfinite(s) ? ops::amax(a).item() : s;
  }
  if (p == 2.0) return ops::sum(ops::square(a)).item();
  if (p == 1.0) return ops::sum(a).item();
  return ops::sum(ops::unary(UnaryOp::PowScalar, a, p)).item();
}

double total_norm(const std::vector<Tensor>& grads, double p) {
  check_norm_type(p);
  double acc = 0.0;
  for (const auto& g : grads) {
    const double v = partial(g, p);
    if (std::isinf(p)) acc = (std::isnan(v) || std::isnan(acc)) ? NAN : std::max(acc, v);
    else acc += v;
  }
  if (std::isinf(p) || p == 1.0) return acc;
  if (p == 2.0) return std::sqrt(acc);
  return std::pow(acc, 1.0 / p);
}

double clip(const std::vector<Tensor>& grads, double max_norm, double p, bool error_if_nonfinite) {
  PH_CHECK(!std::isnan(max_norm), kOp, "max_norm is NaN");
  const double total = total_norm(grads, p);
  PH_CHECK_HINT(std::isfinite(total) || !error_if_nonfinite, kOp,
                "the total norm of order " << p << " of the gradients is " << total << ", so they cannot be clipped",
                "look for NaN / Inf in the loss or the gradients; pass error_if_nonfinite = false to scale anyway");
  const double coef = max_norm / (total + 1e-6);
  if (!(coef < 1.0) && !std::isnan(coef)) return total;
  for (const auto& g : grads) {
    if (g.numel() == 0) continue;
    Tensor dst = g;
    dst.copy_(ops::mul_scalar(g, coef));
  }
  return total;
}

std::vector<Tensor> grads_of(const std::vector<ag::Variable>& params) {
  std::vector<Tensor> out;
  for (const auto& v : params) {
    PH_CHECK(v.defined(), kOp, "a parameter is undefined");
    if (v.grad().defined()) out.push_back(v.grad());
  }
  return out;
}

}  // namespace

double clip_grad_norm_(const std::vector<ag::Variable>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip(grads_of(params), max_norm, norm_type, error_if_nonfinite);
}

double clip_grad_norm_(nn::Module& module, double max_norm, double norm_type, bool error_if_nonfinite) {
  if (module.is_flat()) return clip({module.flat_gradients()}, max_norm, norm_type, error_if_nonfinite);
  return clip(grads_of(module.parameters()), max_norm, norm_type, error_if_nonfinite);
}

double grad_norm(const std::vector<ag::Variable>& params, double norm_type) {
  return total_norm(grads_of(params), norm_type);
}

}  // namespace polyhead::optim
