// layers/optim/adam.h: Adam (L2 weight decay) and AdamW (decoupled weight decay), torch.optim
// semantics (amsgrad and maximize are not supported).
//
// Per element, with g the gradient and t the slot's update count from 1:
//   Adam:  g += weight_decay * p            AdamW: p *= 1 - lr * weight_decay
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Usage: optim::Adam opt(model, optim::AdamOptions(1e-3).betas(0.9, 0.999).eps(1e-8));
//        optim::AdamW opt(params, optim::AdamWOptions(1e-3).weight_decay(0.01));
#pragma once
#include <utility>

#include "layers/optim/optimizer.h"

namespace polyhead::optim {

// Options shared by Adam and AdamW; only the default weight decay differs (0 vs 0.01).
template <class Self>
class AdamOptionsBase {
public:
  Self& lr(double v) { lr_ = v; return self(); }
  Self& betas(double b1, double b2) { beta1_ = b1; beta2_ = b2; return self(); }
  Self& eps(double v) { eps_ = v; return self(); }
  Self& weight_decay(double v) { weight_decay_ = v; return self(); }
  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return {beta1_, beta2_}; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  // Throws naming the bad option (lr, eps, weight_decay >= 0; betas in [0, 1)).
  void validate(const char* op) const;

protected:
  AdamOptionsBase(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}

private:
  Self& self() { return static_cast<Self&>(*this); }
  double lr_, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_;
};

class AdamOptions : public AdamOptionsBase<AdamOptions> {
public:
  explicit AdamOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.0) {}
};

class AdamWOptions : public AdamOptionsBase<AdamWOptions> {
public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.01) {}
};

class Adam : public Optimizer {
public:
  Adam(nn::Module& module, const AdamOptions& options);
  Adam(std::vector<Variable> params, const AdamOptions& options);

  AdamOptions& options() { return opt_; }
  const AdamOptions& options() const { return opt_; }
  double lr() const override { return opt_.lr(); }
  void set_lr(double lr) override;
  std::string name() const override { return "Adam"; }

protected:
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) override;

private:
  AdamOptions opt_;
};

class AdamW : public Optimizer {
public:
  AdamW(nn::Module& module, const AdamWOptions& options);
  AdamW(std::vector<Variable> params, const AdamWOptions& options);

  AdamWOptions& options() { return opt_; }
  const AdamWOptions& options() const { return opt_; }
  double lr() const override { return opt_.lr(); }
  void set_lr(double lr) override;
  std::string name() const override { return "AdamW"; }

protected:
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) override;

private:
  AdamWOptions opt_;
};

}  // namespace polyhead::optim
