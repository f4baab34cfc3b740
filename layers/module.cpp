// layers/module.cpp: Module registration, traversal, modes, device/dtype moves, flat buffers and
// state dicts (see module.h).
#include "layers/module.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_set>

#include "engine/ops.h"

namespace polyhead::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) { return prefix.empty() ? name : prefix + "." + name; }

void check_name(const std::string& name, const char* op) {
  PH_CHECK_HINT(!name.empty() && name.find('.') == std::string::npos, op,
                "invalid name \"" << name << "\"", "names are non-empty and contain no '.'");
}

// Does `name` lie under `prefix` (equal, or a dotted descendant)? The empty prefix matches all.
bool under_prefix(const std::string& name, const std::string& prefix) {
  if (prefix.empty() || name == prefix) return true;
  if (prefix.back() == '.') return name.compare(0, prefix.size(), prefix) == 0;
  return name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 && name[prefix.size()] == '.';
}

}  // namespace

// ---------------------------------------------------------------- registration

void Module::check_not_flat(const char* op) const {
  PH_CHECK_HINT(!is_flat() && flat_member_of_.expired(), op,
                "the parameters of " << type_name() << " were flattened; its layout is frozen",
                "register every parameter and submodule before calling flatten()");
}

Variable& Module::register_parameter(const std::string& name, Tensor init, bool requires_grad) {
  const char* op = "Module::register_parameter";
  check_name(name, op);
  check_not_flat(op);
  init.check_defined(op);
  for (const auto& [n, v] : params_) PH_CHECK(n != name, op, "parameter \"" << name << "\" is already registered");
  for (const auto& [n, b] : buffers_) PH_CHECK(n != name, op, "\"" << name << "\" is already a buffer");
  for (const auto& [n, c] : children_) PH_CHECK(n != name, op, "\"" << name << "\" is already a submodule");
  params_.emplace_back(name, Variable(std::move(init), requires_grad));
  params_.back().second.set_name(name);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  const char* op = "Module::register_buffer";
  check_name(name, op);
  t.check_defined(op);
  for (const auto& [n, v] : params_) PH_CHECK(n != name, op, "\"" << name << "\" is already a parameter");
  for (const auto& [n, b] : buffers_) PH_CHECK(n != name, op, "buffer \"" << name << "\" is already registered");
  for (const auto& [n, c] : children_) PH_CHECK(n != name, op, "\"" << name << "\" is already a submodule");
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  const char* op = "Module::register_module";
  check_name(name, op);
  PH_CHECK(m != nullptr, op, "submodule \"" << name << "\" is null");
  PH_CHECK(m.get() != this, op, "a module cannot be its own child (\"" << name << "\")");
  check_not_flat(op);
  for (const auto& [n, v] : params_) PH_CHECK(n != name, op, "\"" << name << "\" is already a parameter");
  for (const auto& [n, b] : buffers_) PH_CHECK(n != name, op, "\"" << name << "\" is already a buffer");
  for (const auto& [n, c] : children_) PH_CHECK(n != name, op, "submodule \"" << name << "\" is already registered");
  children_.emplace_back(name, std::move(m));
}

Variable Module::parameter(const std::string& name) const {
  for (const auto& [n, v] : params_)
    if (n == name) return v;
  throw Error("Module::parameter", type_name() + " has no parameter \"" + name + "\"");
}
Tensor& Module::buffer(const std::string& name) {
  for (auto& [n, b] : buffers_)
    if (n == name) return b;
  throw Error("Module::buffer", type_name() + " has no buffer \"" + name + "\"");
}
const Tensor& Module::buffer(const std::string& name) const { return const_cast<Module*>(this)->buffer(name); }
std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  throw Error("Module::child", type_name() + " has no submodule \"" + name + "\"");
}

// ---------------------------------------------------------------- traversal

void Module::collect_params(const std::string& prefix, std::vector<std::pair<std::string, Variable>>& out,
                            bool recurse) const {
  for (const auto& [n, v] : params_) out.emplace_back(join(prefix, n), v);
  if (!recurse) return;
  for (const auto& [n, c] : children_) c->collect_params(join(prefix, n), out, true);
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Variable>> all, out;
  collect_params("", all, recurse);
  // A module or parameter reachable along two paths is listed once, under its first name.
  std::unordered_set<const ag::VariableImpl*> seen;
  for (auto& e : all)
    if (seen.insert(e.second.impl()).second) out.push_back(std::move(e));
  return out;
}

std::vector<Variable> Module::parameters(bool recurse) const {
  std::vector<Variable> out;
  for (auto& e : named_parameters(recurse)) out.push_back(e.second);
  return out;
}

void Module::collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out,
                             bool recurse) {
  for (auto& [n, b] : buffers_) out.emplace_back(join(prefix, n), &b);
  if (!recurse) return;
  for (auto& [n, c] : children_) c->collect_buffers(join(prefix, n), out, true);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers(bool recurse) {
  std::vector<std::pair<std::string, Tensor*>> all, out;
  collect_buffers("", all, recurse);
  std::unordered_set<const Tensor*> seen;
  for (auto& e : all)
    if (seen.insert(e.second).second) out.push_back(std::move(e));
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  std::unordered_set<const Module*> seen;
  // Self: owning pointer when this module is held by a shared_ptr, else a non-owning alias.
  std::shared_ptr<Module> self = weak_from_this().lock();
  if (!self) self = std::shared_ptr<Module>(std::shared_ptr<Module>(), this);
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> stack{{prefix, self}};
  while (!stack.empty()) {
    auto [name, m] = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(m.get()).second) continue;
    out.emplace_back(name, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it) stack.emplace_back(join(name, it->first), it->second);
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.numel();
  return n;
}

// ---------------------------------------------------------------- modes, device, dtype

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

namespace {
// Replace a parameter's data by a converted copy (dtype or device may change, so set_data's
// same-shape/dtype contract does not apply; the Variable keeps its identity).
void replace_param(const Variable& v, Tensor data) {
  ag::VariableImpl* impl = v.impl();
  impl->data = std::move(data);
}
}  // namespace

std::vector<Module*> Module::flat_roots() {
  std::vector<Module*> out;
  for (auto& [n, m] : named_modules())
    if (m->is_flat()) out.push_back(m.get());
  return out;
}

void Module::reflatten(const std::vector<Module*>& roots) {
  for (Module* m : roots) {
    m->reset_flat();
    m->flatten();
  }
}

void Module::to(Device d) {
  PH_CHECK_HINT(flat_member_of_.expired(), "Module::to", type_name() << " is part of a flattened parent",
                "call to() on the module that was flattened");
  bool change = false;
  for (auto& [n, v] : named_parameters()) change = change || v.device() != d;
  for (auto& [n, b] : named_buffers()) change = change || b->device() != d;
  if (!change) return;
  auto flat = flat_roots();
  for (auto& [n, v] : named_parameters()) {
    Tensor g = v.grad();
    replace_param(v, v.data().to(d).contiguous());
    v.impl()->grad = g.defined() ? g.to(d) : Tensor();
  }
  for (auto& [n, b] : named_buffers()) *b = b->to(d);
  reflatten(flat);
}

void Module::to(DType t) {
  PH_CHECK_HINT(is_floating(t), "Module::to", "parameters need a floating dtype, got " << dtype_name(t),
                "use DType::f32 or DType::f64");
  PH_CHECK_HINT(flat_member_of_.expired(), "Module::to", type_name() << " is part of a flattened parent",
                "call to() on the module that was flattened");
  bool change = false;
  for (auto& [n, v] : named_parameters()) change = change || (is_floating(v.dtype()) && v.dtype() != t);
  for (auto& [n, b] : named_buffers()) change = change || (is_floating(b->dtype()) && b->dtype() != t);
  if (!change) return;
  auto flat = flat_roots();
  // Floating parameters and buffers convert; integer ones (e.g. num_batches_tracked) stay.
  for (auto& [n, v] : named_parameters()) {
    if (!is_floating(v.dtype())) continue;
    Tensor g = v.grad();
    replace_param(v, v.data().to(t).contiguous());
    v.impl()->grad = g.defined() ? g.to(t) : Tensor();
  }
  for (auto& [n, b] : named_buffers())
    if (is_floating(b->dtype())) *b = b->to(t);
  reflatten(flat);
}

// ---------------------------------------------------------------- gradients

void Module::zero_grad() {
  if (is_flat()) {
    flat_grads_.zero_();
    // Re-attach any gradient that was replaced since flatten() (e.g. set to undefined).
    for (size_t i = 0; i < flat_vars_.size(); ++i) {
      const Variable& v = flat_vars_[i];
      const Tensor& g = v.grad();
      if (g.defined() && g.storage() == flat_grads_.storage()) continue;
      auto [b, e] = flat_index_[i].second;
      v.impl()->grad = flat_grads_.narrow(0, b, e - b).view(v.shape());
    }
    return;
  }
  for (auto& [n, v] : named_parameters()) {
    Tensor g = v.grad();
    if (g.defined()) g.zero_();
  }
}

// ---------------------------------------------------------------- flat buffers

void Module::reset_flat() {
  flat_params_ = Tensor();
  flat_grads_ = Tensor();
  flat_index_.clear();
  flat_vars_.clear();
  flat_token_.reset();
}

void Module::mark_flat_member(const std::weak_ptr<int>& token) { flat_member_of_ = token; }

void Module::flatten() {
  const char* op = "Module::flatten";
  PH_CHECK_HINT(flat_member_of_.expired(), op, type_name() << " is part of a flattened parent",
                "call flatten() on the root module only");
  auto params = named_parameters();
  if (is_flat() && params.size() == flat_vars_.size()) {
    bool same = true;
    for (size_t i = 0; i < params.size() && same; ++i)
      same = params[i].second.same(flat_vars_[i]) && params[i].second.data().storage() == flat_params_.storage();
    if (same) return;  // idempotent
  }
  DType dt = params.empty() ? DType::f32 : params[0].second.dtype();
  Device dev = params.empty() ? Device::cpu() : params[0].second.device();
  int64_t total = 0;
  for (const auto& [n, v] : params) {
    PH_CHECK_HINT(v.dtype() == dt && v.device() == dev, op,
                  "parameter \"" << n << "\" is " << v.str() << " but \"" << params[0].first << "\" is "
                                 << params[0].second.str(),
                  "move the whole module with to(DType) / to(Device) first");
    PH_CHECK(is_floating(v.dtype()), op, "parameter \"" << n << "\" is not floating: " << v.str());
    total += v.numel();
  }
  Tensor fp = Tensor::empty({total}, dt, dev);
  Tensor fg = Tensor::zeros({total}, dt, dev);
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> index;
  std::vector<Variable> vars;
  int64_t off = 0;
  for (const auto& [n, v] : params) {
    int64_t k = v.numel();
    Tensor pv = fp.narrow(0, off, k).view(v.shape());
    pv.copy_(v.data());
    v.impl()->data = pv;  // same shape and dtype: what set_data does, without the copy check twice
    v.impl()->grad = fg.narrow(0, off, k).view(v.shape());
    index.push_back({n, {off, off + k}});
    vars.push_back(v);
    off += k;
  }
  reset_flat();
  flat_params_ = fp;
  flat_grads_ = fg;
  flat_index_ = std::move(index);
  flat_vars_ = std::move(vars);
  flat_token_ = std::make_shared<int>(0);
  // Descendants: their own flat buffers (if any) no longer hold their parameters; their layout is
  // now owned by this module.
  for (auto& [n, m] : named_modules()) {
    if (m.get() == this) continue;
    m->reset_flat();
    m->mark_flat_member(flat_token_);
  }
}

std::pair<int64_t, int64_t> Module::parameter_slice(const std::string& prefix) const {
  const char* op = "Module::parameter_slice";
  PH_CHECK_HINT(is_flat(), op, type_name() << " is not flattened", "call flatten() first");
  std::vector<std::pair<int64_t, int64_t>> r;
  for (const auto& [n, be] : flat_index_)
    if (under_prefix(n, prefix)) r.push_back(be);
  PH_CHECK(!r.empty(), op, "no parameter name starts with \"" << prefix << "\"");
  std::sort(r.begin(), r.end());
  int64_t b = r.front().first, e = r.front().second;
  for (size_t i = 1; i < r.size(); ++i) {
    PH_CHECK_HINT(r[i].first == e, op, "the parameters under \"" << prefix << "\" are not contiguous in the flat buffer",
                  "use a prefix that names one submodule");
    e = r[i].second;
  }
  return {b, e};
}

// ---------------------------------------------------------------- state dict

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> sd;
  for (const auto& [n, v] : named_parameters()) sd[n] = v.data().clone();
  for (const auto& [n, b] : const_cast<Module*>(this)->named_buffers()) sd[n] = b->clone();
  return sd;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict) {
  auto params = named_parameters();
  auto bufs = named_buffers();
  // (name, destination) of every entry; validate everything before modifying anything.
  std::vector<std::pair<std::string, Tensor>> dst;
  for (auto& [n, v] : params) dst.emplace_back(n, v.data());
  for (auto& [n, b] : bufs) dst.emplace_back(n, *b);
  std::vector<std::string> missing, unexpected, mismatch;
  std::set<std::string> known;
  for (auto& [n, t] : dst) {
    known.insert(n);
    auto it = sd.find(n);
    if (it == sd.end()) {
      if (strict) missing.push_back(n);
      continue;
    }
    if (!it->second.defined()) {
      mismatch.push_back(n + ": checkpoint tensor is undefined, module has " + shape_str(t.shape()));
    } else if (it->second.shape() != t.shape()) {
      mismatch.push_back(n + ": checkpoint shape " + shape_str(it->second.shape()) + " vs module shape " +
                         shape_str(t.shape()));
    }
  }
  if (strict)
    for (auto& [n, t] : sd)
      if (!known.count(n)) unexpected.push_back(n);
  if (!missing.empty() || !unexpected.empty() || !mismatch.empty()) {
    std::ostringstream o;
    o << "cannot load the state dict into " << type_name() << ":";
    auto list = [&](const char* what, const std::vector<std::string>& xs) {
      if (xs.empty()) return;
      o << "\n  " << what << " (" << xs.size() << "):";
      for (const auto& x : xs) o << "\n    " << x;
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("shape mismatch", mismatch);
    throw Error("Module::load_state_dict", o.str(),
                strict && mismatch.empty() ? "pass strict = false to load a partial state dict" : "");
  }
  // Copy into the existing storage (flat views stay valid); dtype/device converted by copy_.
  for (auto& [n, t] : dst) {
    auto it = sd.find(n);
    if (it == sd.end()) continue;
    Tensor d = t;
    d.copy_(it->second);
  }
}

}  // namespace polyhead::nn
