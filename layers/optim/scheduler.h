// layers/optim/scheduler.h: learning-rate schedulers (closed forms of torch.optim.lr_scheduler).
//
// A scheduler reads the optimizer's learning rate at construction as its base lr, keeps an epoch
// counter (last_epoch, 0 at construction) and on step() advances it and sets the optimizer's lr to
// lr_at(last_epoch). Call it after optimizer.step(), as in PyTorch. The lr is a pure function of
// the epoch (closed forms, no accumulated rounding):
//   StepLR(step_size, gamma)           base * gamma^floor(e / step_size)
//   CosineAnnealingLR(T_max, eta_min)  eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2
//   LinearWarmup(W, after, start)      e < W: base * (start + (1 - start) * e / W)
//                                      e >= W: after's lr at epoch e - W (base when there is none)
// LinearWarmup owns `after` and drives it (its last_epoch follows max(0, e - W)): build `after`
// over the same optimizer first, then hand it over, and step only the warm-up. With `after`, the
// warm-up's base lr is after's base lr.
// state_dict() holds "last_epoch" (i64) and "base_lr" (f64) (LinearWarmup adds "after.<key>");
// load_state_dict() validates every key first, then restores them and sets the optimizer's lr to
// lr_at(last_epoch).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "engine/tensor.h"
#include "layers/optim/optimizer.h"

namespace polyhead::optim {

class LRScheduler {
public:
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  void step();
  int64_t last_epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }
  double get_lr() const { return lr_at(epoch_); }
  virtual double lr_at(int64_t epoch) const = 0;
  virtual std::string name() const = 0;

  virtual std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& sd);
  // Throws naming the key when sd does not fit; modifies nothing.
  virtual void validate_state_dict(const std::map<std::string, Tensor>& sd) const;

protected:
  virtual void restore(const std::map<std::string, Tensor>& sd);  // after validation
  virtual void sync() {}  // after the epoch changed (LinearWarmup: move `after` along)
  void apply() { opt_.set_lr(lr_at(epoch_)); }

  Optimizer& opt_;
  double base_lr_;
  int64_t epoch_ = 0;

  friend class LinearWarmup;
};

class StepLR : public LRScheduler {
public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;
  std::string name() const override { return "StepLR"; }

private:
  int64_t step_size_;
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);
  double lr_at(int64_t epoch) const override;
  std::string name() const override { return "CosineAnnealingLR"; }

private:
  int64_t T_max_;
  double eta_min_;
};

class LinearWarmup : public LRScheduler {
public:
  // start_factor in [0, 1]: the fraction of the base lr at epoch 0 (0: start from zero).
  LinearWarmup(Optimizer& optimizer, int64_t warmup_steps, std::shared_ptr<LRScheduler> after = nullptr,
               double start_factor = 0.0);
  double lr_at(int64_t epoch) const override;
  std::string name() const override { return "LinearWarmup"; }
  const std::shared_ptr<LRScheduler>& after() const { return after_; }

  std::map<std::string, Tensor> state_dict() const override;
  void validate_state_dict(const std::map<std::string, Tensor>& sd) const override;

protected:
  void restore(const std::map<std::string, Tensor>& sd) override;
  void sync() override;

private:
  int64_t warmup_;
  std::shared_ptr<LRScheduler> after_;
  double start_factor_;
};

}  // namespace polyhead::optim
