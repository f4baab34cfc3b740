// layers/optim/scheduler.cpp: learning-rate schedulers (see scheduler.h).
#include "layers/optim/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace polyhead::optim {

namespace {

std::map<std::string, Tensor> with_prefix(const std::map<std::string, Tensor>& sd, const std::string& prefix,
                                          bool inside) {
  std::map<std::string, Tensor> out;
  for (const auto& [k, t] : sd) {
    const bool has = k.compare(0, prefix.size(), prefix) == 0;
    if (inside && has) out[k.substr(prefix.size())] = t;
    if (!inside && !has) out[k] = t;
  }
  return out;
}

}  // namespace

LRScheduler::LRScheduler(Optimizer& optimizer) : opt_(optimizer), base_lr_(optimizer.lr()) {}

void LRScheduler::step() {
  ++epoch_;
  sync();
  apply();
}

std::map<std::string, Tensor> LRScheduler::state_dict() const {
  return {{"last_epoch", Tensor::scalar(double(epoch_), DType::i64)}, {"base_lr", Tensor::scalar(base_lr_, DType::f64)}};
}

void LRScheduler::validate_state_dict(const std::map<std::string, Tensor>& sd) const {
  const std::string op = name() + "::load_state_dict";
  for (const auto& [k, t] : sd)
    PH_CHECK(k == "last_epoch" || k == "base_lr", op, "unexpected key \"" << k << "\" (expected last_epoch, base_lr)");
  auto it = sd.find("last_epoch");
  PH_CHECK(it != sd.end(), op, "missing key \"last_epoch\"");
  PH_CHECK(it->second.defined() && (it->second.dtype() == DType::i64 || it->second.dtype() == DType::i32) &&
               it->second.numel() == 1,
           op, "\"last_epoch\" must be an integer scalar");
  PH_CHECK(it->second.item() >= 0, op, "\"last_epoch\" must be >= 0, got " << it->second.item());
  it = sd.find("base_lr");
  PH_CHECK(it != sd.end(), op, "missing key \"base_lr\"");
  PH_CHECK(it->second.defined() && is_floating(it->second.dtype()) && it->second.numel() == 1, op,
           "\"base_lr\" must be a floating scalar");
  const double b = it->second.item();
  PH_CHECK(std::isfinite(b) && b >= 0, op, "\"base_lr\" must be finite and >= 0, got " << b);
}

void LRScheduler::restore(const std::map<std::string, Tensor>& sd) {
  epoch_ = int64_t(sd.at("last_epoch").item());
  base_lr_ = sd.at("base_lr").item();
}

void LRScheduler::load_state_dict(const std::map<std::string, Tensor>& sd) {
  validate_state_dict(sd);
  restore(sd);
  sync();
  apply();
}

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  PH_CHECK(step_size >= 1, "StepLR", "step_size must be >= 1, got " << step_size);
  PH_CHECK(std::isfinite(gamma) && gamma >= 0, "StepLR", "gamma must be finite and >= 0, got " << gamma);
}

double StepLR::lr_at(int64_t e) const { return base_lr_ * std::pow(gamma_, double(e / step_size_)); }

// ---- CosineAnnealingLR ----

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  PH_CHECK(T_max >= 1, "CosineAnnealingLR", "T_max must be >= 1, got " << T_max);
  PH_CHECK(std::isfinite(eta_min) && eta_min >= 0, "CosineAnnealingLR", "eta_min must be finite and >= 0, got " << eta_min);
}

double CosineAnnealingLR::lr_at(int64_t e) const {
  return eta_min_ + (base_lr_ - eta_min_) * (1.0 + std::cos(std::numbers::pi * double(e) / double(T_max_))) / 2.0;
}

// ---- LinearWarmup ----

LinearWarmup::LinearWarmup(Optimizer& optimizer, int64_t warmup_steps, std::shared_ptr<LRScheduler> after,
                           double start_factor)
    : LRScheduler(optimizer), warmup_(warmup_steps), after_(std::move(after)), start_factor_(start_factor) {
  PH_CHECK(warmup_steps >= 1, "LinearWarmup", "warmup_steps must be >= 1, got " << warmup_steps);
  PH_CHECK(start_factor >= 0 && start_factor <= 1, "LinearWarmup",
           "start_factor must be in [0, 1], got " << start_factor);
  PH_CHECK_HINT(!after_ || &after_->opt_ == &optimizer, "LinearWarmup",
                "the scheduler to run after the warm-up drives another optimizer",
                "build it over the same optimizer");
  // Warm up to the lr the following schedule starts from (the optimizer's lr before any scheduler
  // touched it), even when `after` already changed the optimizer's lr at its construction.
  if (after_) base_lr_ = after_->base_lr_;
  sync();
  apply();
}

double LinearWarmup::lr_at(int64_t e) const {
  if (e < warmup_) return base_lr_ * (start_factor_ + (1.0 - start_factor_) * double(e) / double(warmup_));
  return after_ ? after_->lr_at(e - warmup_) : base_lr_;
}

void LinearWarmup::sync() {
  if (!after_) return;
  after_->epoch_ = std::max<int64_t>(0, epoch_ - warmup_);
  after_->sync();
}

std::map<std::string, Tensor> LinearWarmup::state_dict() const {
  auto sd = LRScheduler::state_dict();
  if (after_)
    for (auto& [k, t] : after_->state_dict()) sd["after." + k] = t;
  return sd;
}

void LinearWarmup::validate_state_dict(const std::map<std::string, Tensor>& sd) const {
  LRScheduler::validate_state_dict(with_prefix(sd, "after.", false));
  auto inner = with_prefix(sd, "after.", true);
  if (after_) {
    after_->validate_state_dict(inner);
  } else {
    PH_CHECK(inner.empty(), name() + "::load_state_dict",
             "unexpected key \"after." << inner.begin()->first << "\" (this warm-up has no scheduler after it)");
  }
}

void LinearWarmup::restore(const std::map<std::string, Tensor>& sd) {
  LRScheduler::restore(with_prefix(sd, "after.", false));
  if (after_) after_->restore(with_prefix(sd, "after.", true));
}

}  // namespace polyhead::optim
