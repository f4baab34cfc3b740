// mtl/diagnostics/hvp.cpp: see hvp.h.
#include "mtl/diagnostics/hvp.h"

#include <cmath>

#include "autograd/engine.h"
#include "engine/error.h"

namespace polyhead::mtl::diag {

namespace {
void append(std::vector<double>& out, const Tensor& t) {
  Tensor d = t.to(Device::cpu()).to(DType::f64).contiguous();
  const double* p = d.data<double>();
  out.insert(out.end(), p, p + d.numel());
}
}  // namespace

int64_t params_numel(const std::vector<Variable>& params) {
  int64_t n = 0;
  for (auto& p : params) n += p.numel();
  return n;
}

std::vector<double> params_to_vector(const std::vector<Variable>& params) {
  std::vector<double> v;
  v.reserve(size_t(params_numel(params)));
  for (auto& p : params) append(v, p.data());
  return v;
}

std::vector<double> loss_gradient(MultiTaskModel& m, const Batch& b, const std::vector<double>& w,
                                  const std::vector<Variable>& params) {
  const int K = m.num_tasks();
  PH_CHECK_HINT(int(w.size()) == K, "diag::loss_gradient", w.size() << " loss weights for " << K << " tasks",
                "give one weight per task (e.g. 1 for the task whose Hessian is wanted, 0 elsewhere)");
  PH_CHECK_HINT(int(b.y.size()) == K, "diag::loss_gradient", "batch has " << b.y.size() << " targets for " << K << " tasks",
                "give one target tensor per task");
  PH_CHECK(!params.empty(), "diag::loss_gradient", "no parameters to differentiate");
  auto outs = m.forward(Variable(b.x));
  std::vector<Variable> losses;
  std::vector<Tensor> seeds;
  for (int k = 0; k < K; ++k) {
    if (w[size_t(k)] == 0) continue;
    Variable l = m.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]);
    losses.push_back(l);
    seeds.push_back(Tensor::full(l.shape(), w[size_t(k)], l.dtype(), l.device()));
  }
  std::vector<double> g;
  g.reserve(size_t(params_numel(params)));
  if (losses.empty()) {
    g.assign(size_t(params_numel(params)), 0.0);
    return g;
  }
  ag::GradOptions o;
  o.allow_unused = true;
  auto gr = ag::grad(losses, params, seeds, o);
  for (size_t i = 0; i < params.size(); ++i) {
    if (gr[i].defined()) append(g, gr[i]);
    else g.insert(g.end(), size_t(params[i].numel()), 0.0);
  }
  return g;
}

FiniteDiffHvp::FiniteDiffHvp(MultiTaskModel& m, Batch b, std::vector<double> w, std::vector<Variable> params, double eps_scale)
    : m_(m), b_(std::move(b)), w_(std::move(w)), params_(std::move(params)), eps_scale_(eps_scale) {
  PH_CHECK(eps_scale_ > 0 && std::isfinite(eps_scale_), "diag::FiniteDiffHvp", "eps_scale must be positive (got " << eps_scale_ << ")");
  PH_CHECK(!params_.empty(), "diag::FiniteDiffHvp", "no parameters");
  dim_ = params_numel(params_);
}

void FiniteDiffHvp::set_shifted(const std::vector<double>& v, double eps) {
  size_t off = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& base = saved_[i];
    int64_t n = base.numel();
    Tensor b64 = base.to(Device::cpu()).to(DType::f64).contiguous();
    std::vector<double> x(b64.data<double>(), b64.data<double>() + n);
    for (int64_t j = 0; j < n; ++j) x[size_t(j)] += eps * v[off + size_t(j)];
    off += size_t(n);
    Tensor t = Tensor::from_vector(x, base.shape()).to(base.dtype()).to(base.device());
    Tensor dst = params_[i].data();
    dst.copy_(t);
  }
}

void FiniteDiffHvp::restore() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor dst = params_[i].data();
    dst.copy_(saved_[i]);
  }
}

std::vector<double> FiniteDiffHvp::operator()(const std::vector<double>& v) {
  PH_CHECK(int64_t(v.size()) == dim_, "diag::FiniteDiffHvp", "vector of " << v.size() << " entries for " << dim_ << " parameters");
  double vn = 0;
  for (double x : v) vn += x * x;
  vn = std::sqrt(vn);
  if (vn == 0) return std::vector<double>(v.size(), 0.0);
  const double eps = eps_scale_ / vn;
  saved_.clear();
  for (auto& p : params_) saved_.push_back(p.data().clone());
  std::vector<double> gp, gm;
  try {
    set_shifted(v, eps);
    gp = loss_gradient(m_, b_, w_, params_);
    set_shifted(v, -eps);
    gm = loss_gradient(m_, b_, w_, params_);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  ++products_;
  std::vector<double> hv(v.size());
  for (size_t j = 0; j < hv.size(); ++j) hv[j] = (gp[j] - gm[j]) / (2 * eps);
  return hv;
}

}  // namespace polyhead::mtl::diag
