// mtl/registry.cpp: method lookup by name, and Options parsing.
// Each family of methods adds its entries through one function (methods/*_registry.cpp), so the
// table stays in one place per family.
#include <algorithm>
#include <cmath>
#include <functional>

#include "mtl/method.h"
#include "mtl/registry_table.h"

namespace polyhead::mtl {

double Options::get_double(const std::string& k, double def) const {
  auto it = kv_.find(k);
  if (it == kv_.end()) return def;
  try {
    size_t pos = 0;
    double v = std::stod(it->second, &pos);
    if (pos != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw Error("mtl option", "option '" + k + "' = '" + it->second + "' is not a number",
                "give a decimal number, e.g. " + k + "=0.5");
  }
}

int Options::get_int(const std::string& k, int def) const {
  double v = get_double(k, def);
  if (v != std::floor(v)) throw Error("mtl option", "option '" + k + "' must be an integer");
  return int(v);
}

std::string Options::get_string(const std::string& k, const std::string& def) const {
  auto it = kv_.find(k);
  return it == kv_.end() ? def : it->second;
}

void Options::check_known(const std::string& method, std::initializer_list<const char*> known) const {
  for (const auto& [k, v] : kv_) {
    bool ok = std::any_of(known.begin(), known.end(), [&](const char* n) { return k == n; });
    if (!ok) {
      std::string valid;
      for (const char* n : known) valid += std::string(valid.empty() ? "" : ", ") + n;
      throw Error("make_method", "method '" + method + "' has no option '" + k + "'",
                  valid.empty() ? "this method takes no options" : "valid options: " + valid);
    }
  }
}

static const std::vector<RegistryEntry>& table() {
  static const std::vector<RegistryEntry> t = [] {
    std::vector<RegistryEntry> v;
    register_basic_methods(v);
    register_solver_methods(v);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.info.name < b.info.name; });
    return v;
  }();
  return t;
}

std::unique_ptr<Method> make_method(const std::string& name, int K, const Options& opts) {
  if (K < 1) throw Error("make_method", "K = " + std::to_string(K) + " tasks", "a method needs K >= 1");
  for (const auto& e : table())
    if (e.info.name == name) return e.make(K, opts);
  std::string valid;
  for (const auto& e : table()) valid += (valid.empty() ? "" : ", ") + e.info.name;
  throw Error("make_method", "unknown method '" + name + "'", "valid methods: " + valid);
}

std::vector<MethodInfo> list_methods() {
  std::vector<MethodInfo> out;
  for (const auto& e : table()) out.push_back(e.info);
  return out;
}

}  // namespace polyhead::mtl
