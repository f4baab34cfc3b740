// layers/optim/optimizer.h: Optimizer, the base of SGD / Adam / AdamW (libtorch-style API).
//
// An optimizer is built over either
//   - a Module, updated through its flat buffers (the module is flattened if it is not yet): one
//     fused backend update over flat_parameters() / flat_gradients() per step. Parameters that do
//     not require a gradient are left out (the update runs once per contiguous run of trainable
//     parameters; one call when all are trainable). Every trainable parameter is updated each step
//     (its gradient is a view into the zero-filled flat gradient buffer, never "missing").
//   - a list of Variables: one backend update per parameter; a parameter whose grad() is undefined
//     is skipped that step (PyTorch's `p.grad is None`) and its own step count does not advance.
// Both paths run the same elementwise math, so a module stepped through its flat buffer and the
// same parameters stepped one by one end bit-identical.
//
// State ("slots": one for the flat buffer, else one per parameter, indexed in the given order):
// a step count per slot and the method's buffers (SGD: momentum_buffer; Adam: exp_avg, exp_avg_sq),
// allocated on the first update with the parameters' dtype and device (and moved along if the
// module is later moved). state_dict() keys:
//   "step"  (i64 scalar)  number of step() calls        "lr" (f64 scalar)  current learning rate
//   "flat.step", "flat.<buffer>"          flat path (buffers shaped [numel of the flat buffer])
//   "param.<i>.step", "param.<i>.<buffer>" per-parameter path (buffers shaped like parameter i)
// load_state_dict() checks every key, dtype and shape first and changes nothing when one is wrong;
// the error names the key. Buffers convert to the parameters' dtype / device on load.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "engine/tensor.h"

namespace polyhead::nn {
class Module;
}

namespace polyhead::optim {

using ag::Variable;

class Optimizer {
public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter from its current gradient.
  void step();
  // Zero the gradients (the module's flat gradient buffer in one fill; else each defined grad in
  // place, so views into a flat gradient buffer stay attached).
  void zero_grad();

  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;
  int64_t step_count() const { return step_count_; }
  bool is_flat() const { return module_ != nullptr; }
  // "SGD", "Adam", "AdamW".
  virtual std::string name() const = 0;

  std::map<std::string, Tensor> state_dict() const;  // copies
  // Throws (naming the key) when sd does not fit this optimizer; never modifies anything.
  void validate_state_dict(const std::map<std::string, Tensor>& sd) const;
  void load_state_dict(const std::map<std::string, Tensor>& sd);

protected:
  // Over a module's flat buffers (flattened here when needed). The module must outlive the
  // optimizer unless it is owned by a shared_ptr, which the optimizer then shares.
  explicit Optimizer(nn::Module& module);
  explicit Optimizer(std::vector<Variable> params);

  // The buffers of one slot, in order (e.g. {"momentum_buffer"}); fixed for the optimizer's life.
  virtual std::vector<std::string> state_names() const = 0;
  // Update one contiguous range: param, grad and state views have the same numel, dtype and device.
  // `step` counts from 1 for the slot's first update.
  virtual void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, int64_t step) = 0;

private:
  struct Slot {
    int64_t step = 0;
    std::vector<Tensor> buffers;  // empty until the first update (or a load)
  };
  // Expected shape / dtype / device of slot i's buffers (from the current parameters).
  Tensor slot_param(size_t i) const;
  std::string slot_prefix(size_t i) const;
  size_t num_slots() const { return module_ ? 1 : params_.size(); }
  void ensure_buffers(Slot& s, const Tensor& like);

  nn::Module* module_ = nullptr;
  std::shared_ptr<nn::Module> keep_;
  std::vector<Variable> params_;
  std::vector<Slot> slots_;
  int64_t step_count_ = 0;
};

}  // namespace polyhead::optim
