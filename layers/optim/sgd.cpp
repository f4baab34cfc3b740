// layers/optim/sgd.cpp: SGD over the backend's fused sgd_update (see sgd.h).
#include "layers/optim/sgd.h"

#include <cmath>

#include "engine/backend.h"

namespace polyhead::optim {

void SGDOptions::validate() const {
  const char* op = "SGDOptions";
  PH_CHECK(std::isfinite(lr_) && lr_ >= 0, op, "invalid learning rate " << lr_ << " (must be finite and >= 0)");
  PH_CHECK(std::isfinite(momentum_) && momentum_ >= 0, op, "invalid momentum " << momentum_ << " (must be >= 0)");
  PH_CHECK(std::isfinite(dampening_), op, "invalid dampening " << dampening_);
  PH_CHECK(std::isfinite(weight_decay_) && weight_decay_ >= 0, op,
           "invalid weight_decay " << weight_decay_ << " (must be >= 0)");
  PH_CHECK_HINT(!nesterov_ || (momentum_ > 0 && dampening_ == 0), op,
                "Nesterov momentum requires a momentum and zero dampening (momentum " << momentum_ << ", dampening "
                                                                                      << dampening_ << ")",
                "set momentum(m > 0) and dampening(0), or nesterov(false)");
}

SGD::SGD(nn::Module& module, const SGDOptions& options)
    : Optimizer((options.validate(), module)), opt_(options), has_momentum_(options.momentum() != 0) {}

SGD::SGD(std::vector<Variable> params, const SGDOptions& options)
    : Optimizer((options.validate(), std::move(params))), opt_(options), has_momentum_(options.momentum() != 0) {}

void SGD::set_lr(double lr) {
  PH_CHECK(std::isfinite(lr) && lr >= 0, "SGD::set_lr", "invalid learning rate " << lr << " (must be finite and >= 0)");
  opt_.lr(lr);
}

std::vector<std::string> SGD::state_names() const {
  if (has_momentum_) return {"momentum_buffer"};
  return {};
}

void SGD::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) {
  opt_.validate();
  PH_CHECK_HINT((opt_.momentum() != 0) == has_momentum_, "SGD::step",
                "momentum changed between zero and non-zero after construction",
                "build a new optimizer to switch momentum on or off");
  Tensor none;
  Tensor& buf = has_momentum_ ? state[0] : none;
  backend_for(param.device())
      .sgd_update(param, grad, buf, opt_.lr(), opt_.momentum(), opt_.dampening(), opt_.weight_decay(), opt_.nesterov(),
                  step == 1);
}

}  // namespace polyhead::optim
