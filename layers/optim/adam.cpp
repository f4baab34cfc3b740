// layers/optim/adam.cpp: Adam and AdamW over the backend's fused adam_update (see adam.h).
#include "layers/optim/adam.h"

#include <cmath>

#include "engine/backend.h"

namespace polyhead::optim {

template <class Self>
void AdamOptionsBase<Self>::validate(const char* op) const {
  PH_CHECK(std::isfinite(lr_) && lr_ >= 0, op, "invalid learning rate " << lr_ << " (must be finite and >= 0)");
  PH_CHECK(std::isfinite(eps_) && eps_ >= 0, op, "invalid eps " << eps_ << " (must be >= 0)");
  PH_CHECK(beta1_ >= 0 && beta1_ < 1, op, "invalid beta1 " << beta1_ << " (must be in [0, 1))");
  PH_CHECK(beta2_ >= 0 && beta2_ < 1, op, "invalid beta2 " << beta2_ << " (must be in [0, 1))");
  PH_CHECK(std::isfinite(weight_decay_) && weight_decay_ >= 0, op,
           "invalid weight_decay " << weight_decay_ << " (must be >= 0)");
}
template class AdamOptionsBase<AdamOptions>;
template class AdamOptionsBase<AdamWOptions>;

namespace {
void check_lr(double lr, const char* op) {
  PH_CHECK(std::isfinite(lr) && lr >= 0, op, "invalid learning rate " << lr << " (must be finite and >= 0)");
}
}  // namespace

Adam::Adam(nn::Module& module, const AdamOptions& options)
    : Optimizer((options.validate("AdamOptions"), module)), opt_(options) {}
Adam::Adam(std::vector<Variable> params, const AdamOptions& options)
    : Optimizer((options.validate("AdamOptions"), std::move(params))), opt_(options) {}
void Adam::set_lr(double lr) {
  check_lr(lr, "Adam::set_lr");
  opt_.lr(lr);
}
void Adam::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) {
  opt_.validate("AdamOptions");
  const auto [b1, b2] = opt_.betas();
  backend_for(param.device())
      .adam_update(param, grad, state[0], state[1], opt_.lr(), b1, b2, opt_.eps(), opt_.weight_decay(), step, false);
}

AdamW::AdamW(nn::Module& module, const AdamWOptions& options)
    : Optimizer((options.validate("AdamWOptions"), module)), opt_(options) {}
AdamW::AdamW(std::vector<Variable> params, const AdamWOptions& options)
    : Optimizer((options.validate("AdamWOptions"), std::move(params))), opt_(options) {}
void AdamW::set_lr(double lr) {
  check_lr(lr, "AdamW::set_lr");
  opt_.lr(lr);
}
void AdamW::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) {
  opt_.validate("AdamWOptions");
  const auto [b1, b2] = opt_.betas();
  backend_for(param.device())
      .adam_update(param, grad, state[0], state[1], opt_.lr(), b1, b2, opt_.eps(), opt_.weight_decay(), step, true);
}

}  // namespace polyhead::optim
