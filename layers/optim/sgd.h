// layers/optim/sgd.h: stochastic gradient descent with momentum, torch.optim.SGD semantics.
//
// Per element, with g the gradient and step counting the slot's updates from 1:
//   d = g + weight_decay * p
//   if momentum != 0:  buf = (step == 1) ? d : momentum * buf + (1 - dampening) * d
//                      d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
// Usage: optim::SGD opt(model, optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4));
#pragma once
#include "layers/optim/optimizer.h"

namespace polyhead::optim {

class SGDOptions {
public:
  explicit SGDOptions(double lr = 0.01) : lr_(lr) {}
  SGDOptions& lr(double v) { lr_ = v; return *this; }
  SGDOptions& momentum(double v) { momentum_ = v; return *this; }
  SGDOptions& dampening(double v) { dampening_ = v; return *this; }
  SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  SGDOptions& nesterov(bool v) { nesterov_ = v; return *this; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  // Throws naming the bad option (lr, momentum, weight_decay >= 0; Nesterov needs momentum > 0
  // and zero dampening).
  void validate() const;

private:
  double lr_, momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false;
};

class SGD : public Optimizer {
public:
  SGD(nn::Module& module, const SGDOptions& options);
  SGD(std::vector<Variable> params, const SGDOptions& options);

  // Options may be changed between steps; whether momentum is used is fixed at construction.
  SGDOptions& options() { return opt_; }
  const SGDOptions& options() const { return opt_; }
  double lr() const override { return opt_.lr(); }
  void set_lr(double lr) override;
  std::string name() const override { return "SGD"; }

protected:
  std::vector<std::string> state_names() const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) override;

private:
  SGDOptions opt_;
  bool has_momentum_;
};

}  // namespace polyhead::optim
