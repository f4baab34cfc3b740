// layers/module.h: Module, the base of every layer and model (libtorch-style API).
//
// A module owns named parameters (Variables requiring grad), named buffers (Tensors, e.g. batch-norm
// running statistics) and named submodules. Names are dotted paths ("trunk.fc1.weight").
// Flat buffers: flatten() moves every parameter of the tree into one contiguous parameter buffer
// and gives each parameter a gradient view into one contiguous gradient buffer (same layout).
// After flatten(), zero_grad() is one fill, optimizers update the flat buffer in one fused call,
// and parameter_slice(prefix) tells which range of the flat buffer a subtree occupies (e.g. the
// shared trunk of a multi-task model). Contract: after flatten(), parameters keep their
// Variables (same identity), only their storage moves; adding parameters afterwards is an error.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "autograd/variable.h"

namespace polyhead::nn {

using ag::Variable;

class Module : public std::enable_shared_from_this<Module> {
public:
  virtual ~Module() = default;

  // Registration (call in constructors).
  Variable& register_parameter(const std::string& name, Tensor init, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // Named access (dotted, depth-first in registration order).
  std::vector<std::pair<std::string, Variable>> named_parameters(bool recurse = true) const;
  std::vector<Variable> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor*>> named_buffers(bool recurse = true);
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(const std::string& prefix = "");
  int64_t num_parameters() const;

  // Modes.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Device / dtype of every parameter and buffer (re-flattens when flat).
  void to(Device d);
  void to(DType t);

  // Gradients.
  void zero_grad();

  // Flat buffers (see the file comment). Idempotent.
  void flatten();
  bool is_flat() const { return flat_params_.defined(); }
  const Tensor& flat_parameters() const { return flat_params_; }
  const Tensor& flat_gradients() const { return flat_grads_; }
  // [begin, end) of the parameters whose names start with `prefix` in the flat buffer; they are
  // contiguous when the prefix names one subtree.
  std::pair<int64_t, int64_t> parameter_slice(const std::string& prefix) const;

  // State dict: parameters and buffers by dotted name (copies on load; shapes must match).
  std::map<std::string, Tensor> state_dict() const;
  // strict: every key of the module must be given and no unknown key; errors list the names.
  void load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);

  virtual std::string type_name() const { return "Module"; }

  // Names of the flat layout: (dotted name, [begin, end)) in flat order (empty unless flat).
  const std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>>& flat_index() const { return flat_index_; }
  // Copy of this module's own (non-recursive) parameter / buffer by local name; throws if absent.
  Variable parameter(const std::string& name) const;
  Tensor& buffer(const std::string& name);
  const Tensor& buffer(const std::string& name) const;
  // The child registered under `name` (throws if absent).
  std::shared_ptr<Module> child(const std::string& name) const;

protected:
  void add_child(const std::string& name, std::shared_ptr<Module> m);

private:
  void collect_params(const std::string& prefix, std::vector<std::pair<std::string, Variable>>& out, bool recurse) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out, bool recurse);
  void check_not_flat(const char* op) const;  // this module's layout is frozen by a flatten()
  void reset_flat();                           // drop the flat buffers (parameters keep their data)
  void mark_flat_member(const std::weak_ptr<int>& token);
  std::vector<Module*> flat_roots();                   // flattened modules of this tree (self included)
  void reflatten(const std::vector<Module*>& roots);  // after a device / dtype move
  std::shared_ptr<int> flat_token_;     // alive while this module is the root of a flat tree
  std::weak_ptr<int> flat_member_of_;   // set when an ancestor's flatten() owns our parameters
  std::vector<Variable> flat_vars_;     // parameters in flat order (zero_grad re-attaches views)
  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  Tensor flat_params_, flat_grads_;
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> flat_index_;
};

// A module with a single-input forward (layers, Sequential).
class UnaryModule : public Module {
public:
  virtual Variable forward(const Variable& x) = 0;
  Variable operator()(const Variable& x) { return forward(x); }
};

}  // namespace polyhead::nn
