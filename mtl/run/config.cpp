// mtl/run/config.cpp: see config.h.
#include "mtl/run/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "mtl/method.h"

namespace polyhead::run {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

void check_choice(const std::string& what, const std::string& v, const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), v) == choices.end())
    throw UsageError("unknown " + what + " '" + v + "'; valid choices: " + join(choices));
}

std::pair<std::string, std::string> parse_key_value(const std::string& s) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
    throw UsageError("option '" + s + "' must have the form key=value (e.g. --opt calpha=0.4)");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::vector<std::string> run_config_keys() {
  return {"dataset", "data_dir", "train_size", "test_size", "data_seed", "arch", "model", "hidden", "method",
          "method_options", "task", "optimizer", "lr", "momentum", "weight_decay", "epochs", "batch_size",
          "eval_batch_size", "train_eval_size", "device", "seed", "max_steps", "gramian_every", "baselines", "diagnostics_every", "diagnostics", "val_size",
          "val_batch_size", "val_every"};
}

json to_json(const RunConfig& c) {
  json j = json::object();
  j["dataset"] = c.dataset;
  j["data_dir"] = c.data_dir;
  j["train_size"] = c.train_size;
  j["test_size"] = c.test_size;
  j["data_seed"] = c.data_seed;
  j["arch"] = c.arch;
  j["model"] = c.model;
  j["hidden"] = c.hidden;
  j["method"] = c.method;
  j["method_options"] = c.method_options;
  j["task"] = c.task;
  j["optimizer"] = c.optimizer;
  j["lr"] = c.lr;
  j["momentum"] = c.momentum;
  j["weight_decay"] = c.weight_decay;
  j["epochs"] = c.epochs;
  j["batch_size"] = c.batch_size;
  j["eval_batch_size"] = c.eval_batch_size;
  j["train_eval_size"] = c.train_eval_size;
  j["device"] = c.device;
  j["seed"] = c.seed;
  j["max_steps"] = c.max_steps;
  j["gramian_every"] = c.gramian_every;
  j["baselines"] = c.baselines;
  j["diagnostics_every"] = c.diagnostics_every;
  j["diagnostics"] = c.diagnostics;
  j["val_size"] = c.val_size;
  j["val_batch_size"] = c.val_batch_size;
  j["val_every"] = c.val_every;
  return j;
}

namespace {

template <class T>
void read(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) throw UsageError("");
      out = it->template get<std::string>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) throw UsageError("");
      out = it->template get<T>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer() && !it->is_number_unsigned()) throw UsageError("");
      if (std::is_unsigned_v<T> && it->is_number_integer() && it->template get<int64_t>() < 0) throw UsageError("");
      out = it->template get<T>();
    } else {
      out = it->template get<T>();
    }
  } catch (const std::exception&) {
    throw UsageError(std::string("config key '") + key + "' has the wrong type (" + it->dump() + ")");
  }
}

// Option values may be given as strings or numbers in JSON; they are kept as strings.
std::map<std::string, std::string> read_options(const json& j, const std::string& where) {
  if (!j.is_object()) throw UsageError(where + " must be an object of key: value");
  std::map<std::string, std::string> out;
  for (auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
    else if (v.is_number() || v.is_boolean()) out[k] = v.dump();
    else throw UsageError(where + "." + k + " must be a string or a number");
  }
  return out;
}

void check_keys(const json& j, const std::vector<std::string>& valid, const std::string& what) {
  if (!j.is_object()) throw UsageError(what + " must be a JSON object");
  for (auto& [k, v] : j.items())
    if (std::find(valid.begin(), valid.end(), k) == valid.end())
      throw UsageError("unknown " + what + " key '" + k + "'; valid keys: " + join(valid));
}

}  // namespace

RunConfig run_config_from_json(const json& j, RunConfig c, const std::vector<std::string>& allow_extra) {
  auto keys = run_config_keys();
  keys.insert(keys.end(), allow_extra.begin(), allow_extra.end());
  check_keys(j, keys, "config");
  read(j, "dataset", c.dataset);
  read(j, "data_dir", c.data_dir);
  read(j, "train_size", c.train_size);
  read(j, "test_size", c.test_size);
  read(j, "data_seed", c.data_seed);
  read(j, "arch", c.arch);
  read(j, "model", c.model);
  read(j, "hidden", c.hidden);
  read(j, "method", c.method);
  if (j.contains("method_options")) c.method_options = read_options(j["method_options"], "method_options");
  read(j, "task", c.task);
  read(j, "optimizer", c.optimizer);
  read(j, "lr", c.lr);
  read(j, "momentum", c.momentum);
  read(j, "weight_decay", c.weight_decay);
  read(j, "epochs", c.epochs);
  read(j, "batch_size", c.batch_size);
  read(j, "eval_batch_size", c.eval_batch_size);
  read(j, "train_eval_size", c.train_eval_size);
  read(j, "device", c.device);
  read(j, "seed", c.seed);
  read(j, "max_steps", c.max_steps);
  read(j, "gramian_every", c.gramian_every);
  read(j, "diagnostics_every", c.diagnostics_every);
  if (j.contains("diagnostics")) {
    if (!j["diagnostics"].is_object()) throw UsageError("config key 'diagnostics' must be an object of diagnostics options");
    c.diagnostics = j["diagnostics"];
  }
  read(j, "val_size", c.val_size);
  read(j, "val_batch_size", c.val_batch_size);
  read(j, "val_every", c.val_every);
  if (j.contains("baselines")) {
    const json& b = j["baselines"];
    if (!b.is_object()) throw UsageError("config key 'baselines' must be an object {task: metric}");
    c.baselines.clear();
    for (auto& [k, v] : b.items()) {
      if (!v.is_number()) throw UsageError("baselines." + k + " must be a number");
      c.baselines[k] = v.get<double>();
    }
  }
  return c;
}

std::vector<std::string> dataset_tasks(const std::string& dataset) {
  check_choice("dataset", dataset, kDatasets);
  return {"left", "right"};  // the MultiMNIST family (synthetic = MultiMNIST of synthetic glyphs)
}

std::string trainer_method(const RunConfig& c) { return c.method == kSingleTask ? "ew" : c.method; }

std::vector<std::string> run_tasks(const RunConfig& c) {
  auto all = dataset_tasks(c.dataset);
  if (c.method != kSingleTask) return all;
  return {c.task};
}

void validate(const RunConfig& c) {
  check_choice("dataset", c.dataset, kDatasets);
  check_choice("architecture", c.arch, kArchs);
  check_choice("model", c.model, kModels);
  check_choice("optimizer", c.optimizer, kOptimizers);
  {
    bool ok = c.device == "cpu" || c.device == "cuda";
    if (!ok && c.device.rfind("cuda:", 0) == 0 && c.device.size() > 5)
      ok = std::all_of(c.device.begin() + 5, c.device.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!ok) throw UsageError("unknown device '" + c.device + "'; valid choices: cpu, cuda, cuda:N");
  }
  auto tasks = dataset_tasks(c.dataset);
  if (c.method == kSingleTask) {
    if (c.task.empty()) throw UsageError("method 'single-task' trains one task: give --task NAME (tasks: " + join(tasks) + ")");
    check_choice("task", c.task, tasks);
    if (!c.method_options.empty()) throw UsageError("method 'single-task' takes no options");
  } else {
    if (!c.task.empty()) throw UsageError("--task is only for --method single-task");
    std::vector<std::string> names;
    for (auto& m : mtl::list_methods()) names.push_back(m.name);
    names.push_back(kSingleTask);
    check_choice("method", c.method, names);
    mtl::Options o;
    for (auto& [k, v] : c.method_options) o.set(k, v);
    try {
      mtl::make_method(c.method, int(tasks.size()), o);
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  auto positive = [](const char* what, double v) {
    if (!(v > 0) || !std::isfinite(v)) {
      std::ostringstream os;
      os << what << " must be positive (got " << v << ")";
      throw UsageError(os.str());
    }
  };
  auto nonneg = [](const char* what, double v) {
    if (!(v >= 0) || !std::isfinite(v)) {
      std::ostringstream os;
      os << what << " must be >= 0 (got " << v << ")";
      throw UsageError(os.str());
    }
  };
  positive("lr", c.lr);
  positive("epochs", c.epochs);
  positive("batch_size", double(c.batch_size));
  positive("eval_batch_size", double(c.eval_batch_size));
  positive("hidden", double(c.hidden));
  nonneg("momentum", c.momentum);
  nonneg("train_size", double(c.train_size));
  nonneg("test_size", double(c.test_size));
  nonneg("train_eval_size", double(c.train_eval_size));
  nonneg("max_steps", double(c.max_steps));
  nonneg("gramian_every", c.gramian_every);
  if (c.weight_decay >= 0) nonneg("weight_decay", c.weight_decay);
  if (c.momentum > 0 && c.optimizer != "sgd") throw UsageError("momentum is an option of --optimizer sgd only");
  if (c.train_size > 0 && c.train_size < 2) throw UsageError("train_size must be 0 (all) or at least 2");
  for (auto& [k, v] : c.baselines) check_choice("task in baselines", k, tasks);
  nonneg("diagnostics_every", c.diagnostics_every);
  nonneg("val_size", double(c.val_size));
  nonneg("val_batch_size", double(c.val_batch_size));
  positive("val_every", c.val_every);
  diagnostics_options(c);
}

mtl::diag::DiagnosticsOptions diagnostics_options(const RunConfig& c) {
  if (c.diagnostics.contains("every"))
    throw UsageError("diagnostics option 'every' is set by diagnostics_every (--diagnostics-every N), not inside \"diagnostics\"");
  try {
    mtl::diag::DiagnosticsOptions o = mtl::diag::options_from_json(c.diagnostics);
    o.every = c.diagnostics_every;
    mtl::diag::validate(o);
    return o;
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open config file '" + path + "'");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw UsageError("config file '" + path + "' is not valid JSON: " + e.what());
  }
}

namespace {
const std::vector<std::string> kCompareExtra = {"name", "methods", "method_options", "full", "out"};
}

CompareConfig compare_config_from_json(const json& j) {
  CompareConfig c;
  check_keys(j, [] {
    auto k = run_config_keys();
    k.insert(k.end(), kCompareExtra.begin(), kCompareExtra.end());
    return k;
  }(), "compare config");
  json run = j;
  for (auto& k : kCompareExtra) run.erase(k);
  run.erase("method");
  run.erase("task");
  c.base = run_config_from_json(run);
  read(j, "name", c.name);
  read(j, "out", c.out);
  if (j.contains("methods")) {
    const json& m = j["methods"];
    if (!m.is_array()) throw UsageError("config key 'methods' must be an array of method names");
    for (auto& v : m) {
      if (!v.is_string()) throw UsageError("config key 'methods' must be an array of method names");
      c.methods.push_back(v.get<std::string>());
    }
  }
  if (j.contains("method_options")) {
    const json& mo = j["method_options"];
    if (!mo.is_object()) throw UsageError("config key 'method_options' must be an object {method: {key: value}}");
    for (auto& [m, o] : mo.items()) c.method_options[m] = read_options(o, "method_options." + m);
  }
  if (j.contains("full")) {
    c.full = j["full"];
    check_keys(c.full, run_config_keys(), "'full' override");
  }
  return c;
}

json to_json(const CompareConfig& c) {
  json j = to_json(c.base);
  j.erase("method");
  j.erase("task");
  j.erase("method_options");
  j["name"] = c.name;
  j["methods"] = c.methods;
  j["method_options"] = c.method_options;
  j["full"] = c.full;
  j["out"] = c.out;
  return j;
}

RunConfig apply_full(const CompareConfig& c) { return run_config_from_json(c.full, c.base); }

RunConfig method_config(const CompareConfig& c, const RunConfig& base, const std::string& method, const std::string& task) {
  RunConfig r = base;
  r.method = method;
  r.task = task;
  r.method_options.clear();
  auto it = c.method_options.find(method);
  if (it != c.method_options.end()) r.method_options = it->second;
  return r;
}

void validate(const CompareConfig& c) {
  if (c.methods.empty()) throw UsageError("no methods to compare: give \"methods\" in the config or --methods a,b,c");
  std::vector<std::string> names;
  for (auto& m : mtl::list_methods()) names.push_back(m.name);
  names.push_back(kSingleTask);
  for (size_t i = 0; i < c.methods.size(); ++i) {
    check_choice("method", c.methods[i], names);
    for (size_t j = 0; j < i; ++j)
      if (c.methods[j] == c.methods[i]) throw UsageError("method '" + c.methods[i] + "' is listed twice");
  }
  for (auto& [m, o] : c.method_options) check_choice("method in method_options", m, names);
  RunConfig base = apply_full(c);
  for (auto& m : c.methods) {
    if (m == kSingleTask) {
      for (auto& t : dataset_tasks(base.dataset)) validate(method_config(c, base, m, t));
    } else {
      validate(method_config(c, base, m));
    }
  }
  validate(method_config(c, c.base, c.methods[0] == kSingleTask ? "ew" : c.methods[0]));
}

}  // namespace polyhead::run
