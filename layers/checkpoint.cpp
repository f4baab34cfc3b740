// layers/checkpoint.cpp: training checkpoints over safetensors (see checkpoint.h).
#include "layers/checkpoint.h"

#include <set>
#include <sstream>

#include "engine/safetensors.h"
#include "layers/module.h"
#include "layers/optim/optimizer.h"

namespace polyhead::nn {

namespace {

const char* kVersionKey = "polyhead.checkpoint";
const char* kOptimKey = "polyhead.optimizer";
const char* kVersion = "1";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string list(const std::vector<std::string>& xs) {
  std::ostringstream o;
  const size_t shown = std::min<size_t>(xs.size(), 8);
  for (size_t i = 0; i < shown; ++i) o << (i ? ", " : "") << '"' << xs[i] << '"';
  if (xs.size() > shown) o << ", ... (" << xs.size() << " in all)";
  return o.str();
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& module, const optim::Optimizer* optimizer,
                     const std::map<std::string, Tensor>& extra, const std::map<std::string, std::string>& metadata) {
  const char* op = "save_checkpoint";
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : metadata) {
    PH_CHECK(!starts_with(k, "polyhead."), op, "metadata key \"" << k << "\" uses the reserved prefix \"polyhead.\"");
    meta[k] = v;
  }
  meta[kVersionKey] = kVersion;
  if (optimizer) meta[kOptimKey] = optimizer->name();
  std::map<std::string, Tensor> all;
  for (auto& [k, t] : module.state_dict()) all["model." + k] = t;
  if (optimizer)
    for (auto& [k, t] : optimizer->state_dict()) all["optim." + k] = t;
  for (const auto& [k, t] : extra) {
    PH_CHECK(t.defined(), op, "extra tensor \"" << k << "\" is undefined");
    all["extra." + k] = t;
  }
  save_safetensors(path, all, meta);
}

void load_checkpoint(const std::string& path, Module& module, optim::Optimizer* optimizer,
                     std::map<std::string, Tensor>* extra, std::map<std::string, std::string>* metadata) {
  const char* op = "load_checkpoint";
  SafetensorsFile f = load_safetensors(path);  // validates the file; nothing is modified yet
  const std::string where = "'" + path + "'";

  auto ver = f.metadata.find(kVersionKey);
  PH_CHECK_HINT(ver != f.metadata.end(), op, where << " is not a polyhead checkpoint (no \"" << kVersionKey << "\" metadata)",
                "read plain safetensors files with load_safetensors");
  PH_CHECK(ver->second == kVersion, op,
           where << ": checkpoint format version \"" << ver->second << "\" is not supported (expected \"" << kVersion
                 << "\")");

  std::map<std::string, Tensor> model_sd, optim_sd, extra_sd;
  std::vector<std::string> stray;
  for (auto& [k, t] : f.tensors) {
    if (starts_with(k, "model.")) model_sd[k.substr(6)] = t;
    else if (starts_with(k, "optim.")) optim_sd[k.substr(6)] = t;
    else if (starts_with(k, "extra.")) extra_sd[k.substr(6)] = t;
    else stray.push_back(k);
  }
  PH_CHECK(stray.empty(), op, where << ": tensors outside model. / optim. / extra.: " << list(stray));

  // The module: exactly its parameters and buffers, same shapes and dtypes.
  {
    std::vector<std::string> missing, unexpected, mismatch;
    std::vector<std::pair<std::string, Tensor>> mine;
    for (const auto& [n, v] : module.named_parameters()) mine.emplace_back(n, v.data());
    for (const auto& [n, b] : module.named_buffers()) mine.emplace_back(n, *b);
    std::set<std::string> known;
    for (const auto& [n, t] : mine) {
      known.insert(n);
      auto it = model_sd.find(n);
      if (it == model_sd.end()) {
        missing.push_back("model." + n);
        continue;
      }
      if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype())
        mismatch.push_back("model." + n + " is " + dtype_name(it->second.dtype()) + " " + shape_str(it->second.shape()) +
                           ", the module has " + dtype_name(t.dtype()) + " " + shape_str(t.shape()));
    }
    for (const auto& [k, t] : model_sd)
      if (!known.count(k)) unexpected.push_back("model." + k);
    if (!missing.empty() || !unexpected.empty() || !mismatch.empty()) {
      std::ostringstream o;
      o << where << " does not fit " << module.type_name() << ":";
      if (!missing.empty()) o << " missing " << list(missing) << ";";
      if (!unexpected.empty()) o << " unexpected " << list(unexpected) << ";";
      for (const auto& m : mismatch) o << " " << m << ";";
      throw Error(op, o.str(), "the checkpoint was saved from a differently configured model");
    }
  }

  // The optimizer: same type, and a state that fits it.
  if (optimizer) {
    auto name = f.metadata.find(kOptimKey);
    PH_CHECK(name != f.metadata.end() && !optim_sd.empty(), op,
             where << " holds no optimizer state, but an optimizer (" << optimizer->name() << ") was given");
    PH_CHECK(name->second == optimizer->name(), op,
             where << " holds " << name->second << " state, the optimizer is " << optimizer->name());
    try {
      optimizer->validate_state_dict(optim_sd);
    } catch (const Error& e) {
      throw Error(op, where + ": optimizer state (keys prefixed \"optim.\"): " + e.what());
    }
  }

  // Everything fits: apply.
  module.load_state_dict(model_sd, true);
  if (optimizer) optimizer->load_state_dict(optim_sd);
  if (extra) *extra = std::move(extra_sd);
  if (metadata) {
    metadata->clear();
    for (auto& [k, v] : f.metadata)
      if (!starts_with(k, "polyhead.")) (*metadata)[k] = v;
  }
}

}  // namespace polyhead::nn
