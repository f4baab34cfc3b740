// mtl/mixing/doremi.cpp: see doremi.h.
#include "mtl/mixing/doremi.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace polyhead::mtl::mixing {

namespace {

std::vector<double> prior_or_uniform(int K, std::vector<double> u, const char* op) {
  PH_CHECK(K >= 1, op, "K must be >= 1, got " << K);
  if (u.empty()) return std::vector<double>(size_t(K), 1.0 / K);
  PH_CHECK(int(u.size()) == K, op, "the reference mixture has " << u.size() << " weights, expected " << K);
  double s = 0;
  for (size_t k = 0; k < u.size(); ++k) {
    PH_CHECK(std::isfinite(u[k]) && u[k] >= 0, op, "reference weight " << k << " is " << u[k] << "; must be finite and >= 0");
    s += u[k];
  }
  PH_CHECK(s > 0, op, "the reference weights sum to 0");
  for (double& v : u) v /= s;
  return u;
}

}  // namespace

void DoremiOptions::validate() const {
  const char* op = "mixing::DoremiOptions";
  PH_CHECK(std::isfinite(eta) && eta > 0, op, "eta must be finite and > 0, got " << eta);
  PH_CHECK(smoothing >= 0 && smoothing <= 1, op, "smoothing c must be in [0, 1], got " << smoothing);
  PH_CHECK(reference_steps >= 0 && proxy_steps >= 0, op,
           "reference_steps " << reference_steps << " and proxy_steps " << proxy_steps << " must be >= 0 (0: the main run's)");
}

std::vector<double> excess_losses(const std::vector<float>& token_losses, const std::vector<float>& ref_losses,
                                  const std::vector<int64_t>& tokens) {
  const char* op = "mixing::excess_losses";
  PH_CHECK(token_losses.size() == ref_losses.size(), op,
           token_losses.size() << " proxy token losses but " << ref_losses.size() << " reference ones");
  int64_t total = 0;
  for (size_t k = 0; k < tokens.size(); ++k) {
    PH_CHECK(tokens[k] >= 0, op, "domain " << k << " has " << tokens[k] << " tokens");
    total += tokens[k];
  }
  PH_CHECK(total == int64_t(token_losses.size()), op,
           "the domains cover " << total << " tokens, the losses have " << token_losses.size());
  std::vector<double> lambda(tokens.size(), 0.0);
  size_t pos = 0;
  for (size_t k = 0; k < tokens.size(); ++k) {
    double s = 0;
    for (int64_t i = 0; i < tokens[k]; ++i, ++pos) {
      const double l = token_losses[pos], r = ref_losses[pos];
      PH_CHECK(std::isfinite(l) && std::isfinite(r), op, "token " << pos << " has loss " << l << " (reference " << r << ")");
      s += std::max(l - r, 0.0);
    }
    if (tokens[k] > 0) lambda[k] = s / double(tokens[k]);
  }
  return lambda;
}

Doremi::Doremi(int K, const DoremiOptions& o, std::vector<double> prior)
    : o_(o), prior_(prior_or_uniform(K, std::move(prior), "mixing::Doremi")) {
  o_.validate();
  alpha_ = prior_;
  sum_.assign(prior_.size(), 0.0);
}

const std::vector<double>& Doremi::update(const std::vector<double>& lambda) {
  const char* op = "mixing::Doremi::update";
  const size_t K = alpha_.size();
  PH_CHECK(lambda.size() == K, op, "got " << lambda.size() << " excess losses for " << K << " domains");
  // alpha' = alpha * exp(eta lambda), normalised, in log space (no overflow for large eta * lambda)
  std::vector<double> z(K);
  double zmax = -INFINITY;
  for (size_t k = 0; k < K; ++k) {
    PH_CHECK(std::isfinite(lambda[k]) && lambda[k] >= 0, op, "excess loss " << k << " is " << lambda[k] << "; must be finite and >= 0");
    z[k] = alpha_[k] > 0 ? std::log(alpha_[k]) + o_.eta * lambda[k] : -INFINITY;
    zmax = std::max(zmax, z[k]);
  }
  double s = 0;
  for (size_t k = 0; k < K; ++k) s += (z[k] = std::exp(z[k] - zmax));
  for (size_t k = 0; k < K; ++k) {
    alpha_[k] = (1.0 - o_.smoothing) * (z[k] / s) + o_.smoothing * prior_[k];
    sum_[k] += alpha_[k];
  }
  ++steps_;
  return alpha_;
}

std::vector<double> Doremi::average() const {
  if (steps_ == 0) return prior_;
  std::vector<double> a(sum_.size());
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += (a[k] = sum_[k] / double(steps_));
  for (double& v : a) v /= s;  // removes the rounding drift of the sum; s == 1 up to it
  return a;
}

DoremiProxyStrategy::DoremiProxyStrategy(int K, const DoremiOptions& o, std::vector<double> prior, ReferenceLosses ref)
    : K_(K), dr_(K, o, std::move(prior)), ref_(std::move(ref)) {
  PH_CHECK(bool(ref_), "mixing::DoremiProxyStrategy", "no reference-loss function given");
}

void DoremiProxyStrategy::observe_batch(int64_t, const Tensor& x, const Tensor& y, const std::vector<int64_t>& counts,
                                        const std::vector<float>& token_losses) {
  const char* op = "mixing::DoremiProxyStrategy";
  PH_CHECK(int(counts.size()) == K_, op, "got window counts for " << counts.size() << " domains, expected " << K_);
  PH_CHECK(x.dim() == 2, op, "the batch must be (N, T), got " << x.dim() << " dimension(s)");
  const int64_t T = x.size(1);
  std::vector<int64_t> tokens;
  for (int64_t n : counts) tokens.push_back(n * T);
  const std::vector<float> ref = ref_(x, y);
  const std::vector<double> lambda = excess_losses(token_losses, ref, tokens);
  dr_.update(lambda);
  counts_ = counts;
  traj_.push_back(dr_.alpha());
  excess_.push_back(lambda);
}

std::vector<double> DoremiProxyStrategy::loss_scale() const {
  // scale_k = alpha_k * b / b_k turns the trainer's sum_k scale_k (b_k / b) L_k into sum_k alpha_k L_k
  std::vector<double> s(size_t(K_), 1.0);
  if (counts_.empty()) return s;  // before the first batch (not used for training)
  int64_t b = 0;
  for (int64_t n : counts_) b += n;
  for (int k = 0; k < K_; ++k)
    s[size_t(k)] = counts_[size_t(k)] > 0 ? dr_.alpha()[size_t(k)] * double(b) / double(counts_[size_t(k)]) : 0.0;
  return s;
}

DoremiResult run_doremi(const std::vector<TextDomain>& domains, const MixedLMConfig& c, const DoremiOptions& o,
                        const std::vector<double>& reference_mix, const MixedLMProgress& ref_progress,
                        const MixedLMProgress& proxy_progress) {
  const char* op = "mixing::run_doremi";
  o.validate();
  const int K = int(domains.size());
  PH_CHECK(K >= 2, op, "need at least two domains, got " << K);
  const std::vector<double> u = prior_or_uniform(K, reference_mix, op);
  DoremiResult res;

  // 1. the reference model on the reference mixture
  MixedLMConfig rc = c;
  if (o.reference_steps > 0) rc.steps = o.reference_steps;
  MixingOptions mo;
  mo.K = K;
  mo.batch = c.batch;
  mo.fixed_weights = u;
  auto ref_strategy = make_mixing_strategy("fixed", mo);
  res.reference = train_mixed_lm(domains, *ref_strategy, rc, ref_progress);
  res.reference.strategy = "doremi_reference";
  std::shared_ptr<nn::UnaryModule> ref = res.reference.model;
  ref->eval();
  ReferenceLosses ref_losses = [ref](const Tensor& x, const Tensor& y) {
    ag::NoGradGuard ng;
    return lm_token_losses(*ref, x, y).data().to_vector<float>();
  };

  // 2. the proxy model with Group DRO over domains (same architecture and initialisation seed)
  MixedLMConfig pc = c;
  if (o.proxy_steps > 0) pc.steps = o.proxy_steps;
  DoremiProxyStrategy proxy(K, o, u, ref_losses);
  res.proxy = train_mixed_lm(domains, proxy, pc, proxy_progress);

  // 3. the average of alpha over the proxy's steps
  res.weights = proxy.state().average();
  res.trajectory = proxy.trajectory();
  res.excess = proxy.excess();
  res.tokens = (rc.steps + pc.steps) * c.batch * c.gpt.block;
  return res;
}

}  // namespace polyhead::mtl::mixing
