// mtl/diagnostics/record.cpp: see record.h.
#include "mtl/diagnostics/record.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include "engine/error.h"
#include "mtl/diagnostics/fisher.h"

namespace polyhead::mtl::diag {

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double num_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}
json mat_json(const Mat& M) {
  json a = json::array();
  for (int i = 0; i < M.rows; ++i) {
    json row = json::array();
    for (int j = 0; j < M.cols; ++j) row.push_back(num(M(i, j)));
    a.push_back(row);
  }
  return a;
}
Mat mat_of(const json& j) {
  if (!j.is_array()) return {};
  int r = int(j.size()), c = r ? int(j[0].size()) : 0;
  Mat M(r, c);
  for (int i = 0; i < r; ++i)
    for (int k = 0; k < c && k < int(j[size_t(i)].size()); ++k) {
      const json& v = j[size_t(i)][size_t(k)];
      M(i, k) = v.is_number() ? v.get<double>() : kNaN;
    }
  return M;
}
}  // namespace

std::vector<std::string> option_keys() {
  return {"every", "log_early", "probe_size", "micro_batch", "test_probe_size", "heavy_every", "sharpness_probe",
          "power_iters", "power_tol", "fd_eps", "hutchinson", "fisher_n", "fisher", "curvature_params", "seed"};
}

void validate(const DiagnosticsOptions& o) {
  const char* op = "diagnostics";
  PH_CHECK(o.every >= 0, op, "every must be >= 0 (got " << o.every << ")");
  PH_CHECK(o.micro_batch >= 1, op, "micro_batch must be >= 1 (got " << o.micro_batch << ")");
  PH_CHECK_HINT(o.probe_size >= 2 * o.micro_batch, op,
                "probe_size (" << o.probe_size << ") must hold at least two micro-batches of micro_batch (" << o.micro_batch << ")",
                "raise probe_size or lower micro_batch");
  PH_CHECK(o.test_probe_size >= 1, op, "test_probe_size must be >= 1 (got " << o.test_probe_size << ")");
  PH_CHECK(o.heavy_every >= 0, op, "heavy_every must be >= 0 (got " << o.heavy_every << ")");
  PH_CHECK(o.sharpness_probe >= 1, op, "sharpness_probe must be >= 1 (got " << o.sharpness_probe << ")");
  PH_CHECK(o.power_iters >= 1, op, "power_iters must be >= 1 (got " << o.power_iters << ")");
  PH_CHECK(o.power_tol >= 0 && std::isfinite(o.power_tol), op, "power_tol must be >= 0 (got " << o.power_tol << ")");
  PH_CHECK(o.fd_eps > 0 && std::isfinite(o.fd_eps), op, "fd_eps must be positive (got " << o.fd_eps << ")");
  PH_CHECK(o.hutchinson >= 0, op, "hutchinson must be >= 0 (got " << o.hutchinson << ")");
  PH_CHECK(o.fisher_n >= 0, op, "fisher_n must be >= 0 (got " << o.fisher_n << ")");
  parse_fisher_kind(o.fisher);
  PH_CHECK(o.curvature_params == "shared" || o.curvature_params == "all", op,
           "unknown curvature_params '" << o.curvature_params << "'; valid choices: shared, all");
}

json to_json(const DiagnosticsOptions& o) {
  return json{{"every", o.every},
              {"log_early", o.log_early},
              {"probe_size", o.probe_size},
              {"micro_batch", o.micro_batch},
              {"test_probe_size", o.test_probe_size},
              {"heavy_every", o.heavy_every},
              {"sharpness_probe", o.sharpness_probe},
              {"power_iters", o.power_iters},
              {"power_tol", o.power_tol},
              {"fd_eps", o.fd_eps},
              {"hutchinson", o.hutchinson},
              {"fisher_n", o.fisher_n},
              {"fisher", o.fisher},
              {"curvature_params", o.curvature_params},
              {"seed", o.seed}};
}

DiagnosticsOptions options_from_json(const json& j, DiagnosticsOptions o) {
  const char* op = "diagnostics";
  PH_CHECK(j.is_object(), op, "the diagnostics options must be a JSON object");
  auto keys = option_keys();
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (auto& n : keys) known = known || n == k;
    if (!known) {
      std::string list;
      for (auto& n : keys) list += (list.empty() ? "" : ", ") + n;
      throw Error(op, "unknown diagnostics option '" + k + "'; valid keys: " + list);
    }
  }
  auto bad = [&](const char* k) { throw Error(op, std::string("diagnostics option '") + k + "' has the wrong type (" + j[k].dump() + ")"); };
  auto integer = [&](const char* k, auto& out) {
    if (!j.contains(k)) return;
    if (!j[k].is_number_integer() && !j[k].is_number_unsigned()) bad(k);
    out = j[k].get<std::decay_t<decltype(out)>>();
  };
  auto real = [&](const char* k, double& out) {
    if (!j.contains(k)) return;
    if (!j[k].is_number()) bad(k);
    out = j[k].get<double>();
  };
  integer("every", o.every);
  if (j.contains("log_early")) {
    if (!j["log_early"].is_boolean()) bad("log_early");
    o.log_early = j["log_early"].get<bool>();
  }
  integer("probe_size", o.probe_size);
  integer("micro_batch", o.micro_batch);
  integer("test_probe_size", o.test_probe_size);
  integer("heavy_every", o.heavy_every);
  integer("sharpness_probe", o.sharpness_probe);
  integer("power_iters", o.power_iters);
  real("power_tol", o.power_tol);
  real("fd_eps", o.fd_eps);
  integer("hutchinson", o.hutchinson);
  integer("fisher_n", o.fisher_n);
  if (j.contains("fisher")) {
    if (!j["fisher"].is_string()) bad("fisher");
    o.fisher = j["fisher"].get<std::string>();
  }
  if (j.contains("curvature_params")) {
    if (!j["curvature_params"].is_string()) bad("curvature_params");
    o.curvature_params = j["curvature_params"].get<std::string>();
  }
  if (j.contains("seed")) {
    if (!j["seed"].is_number_unsigned() && !(j["seed"].is_number_integer() && j["seed"].get<int64_t>() >= 0)) bad("seed");
    o.seed = j["seed"].get<uint64_t>();
  }
  return o;
}

json to_json(const DiagRecord& r, const std::vector<std::string>& tasks) {
  json j = json::object();
  j["step"] = r.step;
  j["ms"] = num(r.ms);
  j["heavy"] = r.heavy;
  json t = json::object();
  for (size_t k = 0; k < r.tasks.size() && k < tasks.size(); ++k) {
    const TaskRecord& x = r.tasks[k];
    t[tasks[k]] = json{{"train_loss", num(x.train_loss)},
                       {"test_loss", num(x.test_loss)},
                       {"test_metric", num(x.test_metric)},
                       {"grad_norm", num(x.grad_norm)},
                       {"grad_sq", num(x.noise.grad_sq)},
                       {"trace_cov", num(x.noise.trace_cov)},
                       {"noise_scale", num(x.noise.noise_scale)},
                       {"coherence", num(x.noise.coherence)},
                       {"diversity", num(x.noise.diversity)},
                       {"update_conflict", x.update_conflict},
                       {"sharpness", num(x.sharpness)},
                       {"hessian_trace", num(x.hessian_trace)},
                       {"fisher", num(x.fisher)}};
  }
  j["tasks"] = t;
  j["gramian"] = mat_json(r.gramian);
  j["cosine"] = mat_json(r.cosine);
  j["mean_cosine"] = num(r.conflict.mean_cosine);
  j["min_cosine"] = num(r.conflict.min_cosine);
  j["conflict_pairs"] = num(r.conflict.pair_fraction);
  j["conflict"] = r.conflict.any;
  j["directional"] = num(r.conflict.directional);
  j["magnitude"] = num(r.conflict.magnitude);
  j["sum_norm"] = num(r.conflict.sum_norm);
  j["conflict_steps"] = num(r.conflict_steps);
  j["conflict_steps_weighted"] = num(r.conflict_steps_weighted);
  j["coherence_all"] = num(r.coherence_all);
  j["sharpness_mt"] = num(r.sharpness_mt);
  return j;
}

DiagRecord record_from_json(const json& j, const std::vector<std::string>& tasks) {
  DiagRecord r;
  r.step = j.at("step").get<int64_t>();
  r.ms = num_of(j, "ms");
  r.heavy = j.value("heavy", false);
  const json& t = j.at("tasks");
  for (auto& name : tasks) {
    const json& x = t.at(name);
    TaskRecord tr;
    tr.train_loss = num_of(x, "train_loss");
    tr.test_loss = num_of(x, "test_loss");
    tr.test_metric = num_of(x, "test_metric");
    tr.grad_norm = num_of(x, "grad_norm");
    tr.noise.grad_sq = num_of(x, "grad_sq");
    tr.noise.trace_cov = num_of(x, "trace_cov");
    tr.noise.noise_scale = num_of(x, "noise_scale");
    tr.noise.coherence = num_of(x, "coherence");
    tr.noise.diversity = num_of(x, "diversity");
    tr.update_conflict = x.value("update_conflict", false);
    tr.sharpness = num_of(x, "sharpness");
    tr.hessian_trace = num_of(x, "hessian_trace");
    tr.fisher = num_of(x, "fisher");
    r.tasks.push_back(tr);
  }
  r.gramian = mat_of(j.value("gramian", json::array()));
  r.cosine = mat_of(j.value("cosine", json::array()));
  r.conflict.mean_cosine = num_of(j, "mean_cosine");
  r.conflict.min_cosine = num_of(j, "min_cosine");
  r.conflict.pair_fraction = num_of(j, "conflict_pairs");
  r.conflict.any = j.value("conflict", false);
  r.conflict.directional = num_of(j, "directional");
  r.conflict.magnitude = num_of(j, "magnitude");
  r.conflict.sum_norm = num_of(j, "sum_norm");
  r.conflict_steps = num_of(j, "conflict_steps");
  r.conflict_steps_weighted = num_of(j, "conflict_steps_weighted");
  r.coherence_all = num_of(j, "coherence_all");
  r.sharpness_mt = num_of(j, "sharpness_mt");
  return r;
}

DiagLog::DiagLog(const std::string& path, bool append) {
  f_.open(path, append ? std::ios::app : std::ios::trunc);
  PH_CHECK(f_.is_open(), "diagnostics", "cannot open '" << path << "' for writing");
}

void DiagLog::write(const DiagRecord& r, const std::vector<std::string>& tasks) {
  f_ << to_json(r, tasks).dump() << "\n";
  f_.flush();
}

std::vector<DiagRecord> read_diag_file(const std::string& path, const std::vector<std::string>& tasks) {
  std::vector<DiagRecord> out;
  std::ifstream f(path);
  if (!f) return out;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      out.push_back(record_from_json(json::parse(line), tasks));
    } catch (const std::exception& e) {
      throw Error("diagnostics", "'" + path + "' line " + std::to_string(n) + " is not a diagnostics record: " + e.what());
    }
  }
  return out;
}

void truncate_diag_file(const std::string& path, int64_t first_dropped) {
  std::ifstream f(path);
  if (!f) return;
  std::ostringstream keep;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() >= first_dropped) continue;
    keep << line << "\n";
  }
  f.close();
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream o(tmp, std::ios::trunc);
    PH_CHECK(o.is_open(), "diagnostics", "cannot write '" << tmp << "'");
    o << keep.str();
    o.flush();
    PH_CHECK(o.good(), "diagnostics", "writing '" << tmp << "' failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  PH_CHECK(!ec, "diagnostics", "cannot replace '" << path << "': " << ec.message());
}

}  // namespace polyhead::mtl::diag
