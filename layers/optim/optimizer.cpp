// layers/optim/optimizer.cpp: the shared machinery of the optimizers (see optimizer.h).
#include "layers/optim/optimizer.h"

#include <cmath>
#include <set>
#include <sstream>
#include <unordered_set>

#include "layers/module.h"

namespace polyhead::optim {

namespace {

// [begin, end) runs of the flat buffer holding parameters that require a gradient.
std::vector<std::pair<int64_t, int64_t>> trainable_runs(const nn::Module& m) {
  const auto& index = m.flat_index();
  const auto params = m.named_parameters();
  PH_CHECK(index.size() == params.size(), "Optimizer::step",
           "the module's flat layout lists " << index.size() << " parameters but it has " << params.size());
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (size_t i = 0; i < index.size(); ++i) {
    if (!params[i].second.requires_grad()) continue;
    const auto [b, e] = index[i].second;
    if (b == e) continue;
    if (!runs.empty() && runs.back().second == b) runs.back().second = e;
    else runs.emplace_back(b, e);
  }
  return runs;
}

std::string list_keys(const std::vector<std::string>& keys) {
  std::ostringstream o;
  const size_t shown = std::min<size_t>(keys.size(), 8);
  for (size_t i = 0; i < shown; ++i) o << (i ? ", " : "") << '"' << keys[i] << '"';
  if (keys.size() > shown) o << ", ... (" << keys.size() << " in all)";
  return o.str();
}

}  // namespace

Optimizer::Optimizer(nn::Module& module) : module_(&module), keep_(module.weak_from_this().lock()) {
  if (!module.is_flat()) module.flatten();
  slots_.resize(1);
}

Optimizer::Optimizer(std::vector<Variable> params) : params_(std::move(params)) {
  std::unordered_set<const ag::VariableImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Variable& v = params_[i];
    PH_CHECK(v.defined(), "Optimizer", "parameter " << i << " is undefined");
    PH_CHECK_HINT(is_floating(v.dtype()), "Optimizer", "parameter " << i << " is not floating: " << v.str(),
                  "only f32 / f64 parameters can be optimized");
    PH_CHECK(seen.insert(v.impl()).second, "Optimizer",
             "parameter " << i << (v.name().empty() ? std::string() : " (\"" + v.name() + "\")")
                          << " appears more than once in the list");
  }
  slots_.resize(params_.size());
}

Tensor Optimizer::slot_param(size_t i) const {
  if (module_) {
    PH_CHECK_HINT(module_->is_flat(), name() + "::state", module_->type_name() << " is no longer flattened",
                  "keep the module flat while an optimizer built over it is in use");
    return module_->flat_parameters();
  }
  return params_[i].data();
}

std::string Optimizer::slot_prefix(size_t i) const { return module_ ? "flat." : "param." + std::to_string(i) + "."; }

void Optimizer::ensure_buffers(Slot& s, const Tensor& like) {
  const auto names = state_names();
  if (s.buffers.size() != names.size()) {
    s.buffers.clear();
    for (size_t k = 0; k < names.size(); ++k) s.buffers.push_back(Tensor::zeros(like.shape(), like.dtype(), like.device()));
    return;
  }
  for (auto& b : s.buffers) {
    // The module (or parameter) moved to another device or dtype: the state follows it.
    if (b.device() != like.device()) b = b.to(like.device());
    if (b.dtype() != like.dtype()) b = b.to(like.dtype());
    PH_CHECK(b.numel() == like.numel(), name() + "::step",
             "optimizer state has " << b.numel() << " elements but the parameters " << like.numel());
  }
}

void Optimizer::step() {
  const std::string op = name() + "::step";
  if (module_) {
    Tensor p = slot_param(0);
    Tensor g = module_->flat_gradients();
    PH_CHECK(g.defined() && g.numel() == p.numel(), op, "the module's flat gradient buffer does not match its parameters");
    Slot& s = slots_[0];
    ensure_buffers(s, p);
    const int64_t st = s.step + 1;
    for (const auto& [b, e] : trainable_runs(*module_)) {
      Tensor pv = p.narrow(0, b, e - b);
      Tensor gv = g.narrow(0, b, e - b);
      std::vector<Tensor> sv;
      for (const auto& buf : s.buffers) sv.push_back(buf.narrow(0, b, e - b));
      update(pv, gv, sv, st);
    }
    s.step = st;
  } else {
    for (size_t i = 0; i < params_.size(); ++i) {
      const Variable& v = params_[i];
      const Tensor& g = v.grad();
      if (!g.defined()) continue;
      Tensor p = v.data();
      PH_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), op,
               "parameter " << i << ": gradient " << g.str() << " does not match " << p.str());
      Slot& s = slots_[i];
      ensure_buffers(s, p);
      if (p.numel() == 0) {
        ++s.step;
        continue;
      }
      Tensor pc = p.contiguous();
      Tensor gc = g.contiguous();
      update(pc, gc, s.buffers, s.step + 1);
      if (!p.is_contiguous()) p.copy_(pc);
      ++s.step;
    }
  }
  ++step_count_;
}

void Optimizer::zero_grad() {
  if (module_) {
    module_->zero_grad();
    return;
  }
  for (const auto& v : params_) {
    Tensor g = v.grad();
    if (g.defined()) g.zero_();
  }
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> sd;
  sd["step"] = Tensor::scalar(double(step_count_), DType::i64);
  sd["lr"] = Tensor::scalar(lr(), DType::f64);
  const auto names = state_names();
  for (size_t i = 0; i < num_slots(); ++i) {
    const std::string pre = slot_prefix(i);
    const Slot& s = slots_[i];
    sd[pre + "step"] = Tensor::scalar(double(s.step), DType::i64);
    const Tensor like = slot_param(i);
    for (size_t k = 0; k < names.size(); ++k)
      sd[pre + names[k]] = s.buffers.size() == names.size() ? s.buffers[k].clone()
                                                             : Tensor::zeros(like.shape(), like.dtype(), like.device());
  }
  return sd;
}

void Optimizer::validate_state_dict(const std::map<std::string, Tensor>& sd) const {
  const std::string op = name() + "::load_state_dict";
  const auto names = state_names();
  // Keys: exactly the expected set.
  std::set<std::string> expected{"step", "lr"};
  for (size_t i = 0; i < num_slots(); ++i) {
    expected.insert(slot_prefix(i) + "step");
    for (const auto& n : names) expected.insert(slot_prefix(i) + n);
  }
  std::vector<std::string> missing, unexpected;
  for (const auto& k : expected)
    if (!sd.count(k)) missing.push_back(k);
  for (const auto& [k, t] : sd)
    if (!expected.count(k)) unexpected.push_back(k);
  if (!missing.empty() || !unexpected.empty()) {
    std::ostringstream o;
    o << "the state dict does not fit this " << name() << " over "
      << (module_ ? "a flat module" : std::to_string(params_.size()) + " parameters") << ":";
    if (!missing.empty()) o << " missing keys " << list_keys(missing) << ";";
    if (!unexpected.empty()) o << " unexpected keys " << list_keys(unexpected) << ";";
    throw Error(op, o.str(),
                "state saved by another optimizer type, with other options (momentum), over other parameters, or "
                "over a module where this one takes a parameter list (or the reverse)");
  }
  auto check_count = [&](const std::string& key) {
    const Tensor& t = sd.at(key);
    PH_CHECK(t.defined(), op, "\"" << key << "\" is undefined");
    PH_CHECK(t.dtype() == DType::i64 || t.dtype() == DType::i32, op,
             "\"" << key << "\" must be an integer scalar, got " << t.str());
    PH_CHECK(t.numel() == 1, op, "\"" << key << "\" must hold one element, got " << t.str());
    const double v = t.item();
    PH_CHECK(v >= 0, op, "\"" << key << "\" must be >= 0, got " << int64_t(v));
  };
  check_count("step");
  {
    const Tensor& t = sd.at("lr");
    PH_CHECK(t.defined() && is_floating(t.dtype()) && t.numel() == 1, op,
             "\"lr\" must be a floating scalar, got " << (t.defined() ? t.str() : std::string("undefined")));
    const double v = t.item();
    PH_CHECK(std::isfinite(v) && v >= 0, op, "\"lr\" must be finite and >= 0, got " << v);
  }
  for (size_t i = 0; i < num_slots(); ++i) {
    const std::string pre = slot_prefix(i);
    check_count(pre + "step");
    const Tensor like = slot_param(i);
    for (const auto& n : names) {
      const std::string key = pre + n;
      const Tensor& t = sd.at(key);
      PH_CHECK(t.defined(), op, "\"" << key << "\" is undefined");
      PH_CHECK(is_floating(t.dtype()), op, "\"" << key << "\" must be floating, got " << t.str());
      PH_CHECK(t.shape() == like.shape(), op,
               "\"" << key << "\" has shape " << shape_str(t.shape()) << ", expected " << shape_str(like.shape())
                    << " (the parameters' shape)");
    }
  }
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& sd) {
  validate_state_dict(sd);
  const auto names = state_names();
  // Build the new state aside, then swap it in (an allocation failure leaves the old state).
  std::vector<Slot> fresh(num_slots());
  for (size_t i = 0; i < num_slots(); ++i) {
    const std::string pre = slot_prefix(i);
    const Tensor like = slot_param(i);
    fresh[i].step = int64_t(sd.at(pre + "step").item());
    for (const auto& n : names) {
      Tensor b = Tensor::empty(like.shape(), like.dtype(), like.device());
      b.copy_(sd.at(pre + n));
      fresh[i].buffers.push_back(std::move(b));
    }
  }
  const double new_lr = sd.at("lr").item();
  slots_ = std::move(fresh);
  step_count_ = int64_t(sd.at("step").item());
  set_lr(new_lr);
}

}  // namespace polyhead::optim
