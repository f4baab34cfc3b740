// mtl/run/metrics.cpp: see metrics.h.
#include "mtl/run/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "mtl/run/files.h"

namespace polyhead::run {

std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

namespace {
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double num_of(const json& j) { return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN(); }
std::vector<double> nums_of(const json& j) {
  std::vector<double> v;
  if (j.is_array())
    for (auto& x : j) v.push_back(num_of(x));
  return v;
}
json nums(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(num(x));
  return a;
}
}  // namespace

json to_json(const StepRecord& r, const std::vector<std::string>& tasks) {
  json j = json::object();
  j["step"] = r.step;
  j["epoch"] = r.epoch;
  json L = json::object();
  for (size_t k = 0; k < r.losses.size() && k < tasks.size(); ++k) L[tasks[k]] = num(r.losses[k]);
  j["losses"] = L;
  j["weights"] = nums(r.weights);
  j["skipped"] = r.skipped;
  j["ms"] = {{"forward", r.ms_forward}, {"grads", r.ms_grads}, {"method", r.ms_method},
             {"backward", r.ms_backward}, {"optimizer", r.ms_optimizer}, {"total", r.ms_total}};
  if (!r.val_losses.empty()) {
    json V = json::object();
    for (size_t k = 0; k < r.val_losses.size() && k < tasks.size(); ++k) V[tasks[k]] = num(r.val_losses[k]);
    j["val_losses"] = V;
  }
  if (r.gramian) {
    json g = json::array();
    for (int i = 0; i < r.gramian->rows; ++i) {
      json row = json::array();
      for (int c = 0; c < r.gramian->cols; ++c) row.push_back(num((*r.gramian)(i, c)));
      g.push_back(row);
    }
    j["gramian"] = g;
  }
  return j;
}

StepRecord step_from_json(const json& j, const std::vector<std::string>& tasks) {
  StepRecord r;
  r.step = j.at("step").get<int64_t>();
  r.epoch = j.at("epoch").get<int>();
  for (auto& t : tasks) r.losses.push_back(num_of(j.at("losses").at(t)));
  r.weights = nums_of(j.value("weights", json::array()));
  r.skipped = j.value("skipped", false);
  const json& ms = j.at("ms");
  r.ms_forward = num_of(ms.at("forward"));
  r.ms_grads = num_of(ms.at("grads"));
  r.ms_method = num_of(ms.at("method"));
  r.ms_backward = num_of(ms.at("backward"));
  r.ms_optimizer = num_of(ms.at("optimizer"));
  r.ms_total = num_of(ms.at("total"));
  if (j.contains("val_losses"))
    for (auto& t : tasks) r.val_losses.push_back(num_of(j["val_losses"].value(t, json(nullptr))));
  if (j.contains("gramian")) {
    const json& g = j["gramian"];
    int K = int(g.size());
    mtl::Mat M(K, K);
    for (int a = 0; a < K; ++a)
      for (int b = 0; b < K; ++b) M(a, b) = num_of(g.at(size_t(a)).at(size_t(b)));
    r.gramian = M;
  }
  return r;
}

json to_json(const EpochRow& r) {
  return {{"epoch", r.epoch},
          {"step", r.step},
          {"partial", r.partial},
          {"seconds", r.seconds},
          {"ms_per_step", r.ms_per_step},
          {"train_loss", nums(r.train_loss)},
          {"train_metric", nums(r.train_metric)},
          {"test_loss", nums(r.test_loss)},
          {"test_metric", nums(r.test_metric)}};
}

EpochRow epoch_from_json(const json& j) {
  EpochRow r;
  r.epoch = j.at("epoch").get<int>();
  r.step = j.at("step").get<int64_t>();
  r.partial = j.at("partial").get<bool>();
  r.seconds = num_of(j.at("seconds"));
  r.ms_per_step = num_of(j.at("ms_per_step"));
  r.train_loss = nums_of(j.at("train_loss"));
  r.train_metric = nums_of(j.at("train_metric"));
  r.test_loss = nums_of(j.at("test_loss"));
  r.test_metric = nums_of(j.at("test_metric"));
  return r;
}

std::vector<std::string> epochs_csv_header(const std::vector<std::string>& tasks, const std::vector<std::string>& metric_names) {
  std::vector<std::string> h = {"epoch", "step", "partial", "seconds", "ms_per_step"};
  for (size_t k = 0; k < tasks.size(); ++k) {
    const std::string& t = tasks[k];
    const std::string& m = metric_names.at(k);
    h.push_back("train_loss_" + t);
    h.push_back("train_" + m + "_" + t);
    h.push_back("test_loss_" + t);
    h.push_back("test_" + m + "_" + t);
  }
  return h;
}

std::string epochs_csv(const std::vector<EpochRow>& rows, const std::vector<std::string>& tasks,
                       const std::vector<std::string>& metric_names) {
  std::ostringstream o;
  auto h = epochs_csv_header(tasks, metric_names);
  for (size_t i = 0; i < h.size(); ++i) o << (i ? "," : "") << h[i];
  o << "\n";
  auto at = [](const std::vector<double>& v, size_t k) {
    return k < v.size() ? v[k] : std::numeric_limits<double>::quiet_NaN();
  };
  for (auto& r : rows) {
    o << r.epoch << "," << r.step << "," << (r.partial ? 1 : 0) << "," << fmt(r.seconds) << "," << fmt(r.ms_per_step);
    for (size_t k = 0; k < tasks.size(); ++k)
      o << "," << fmt(at(r.train_loss, k)) << "," << fmt(at(r.train_metric, k)) << "," << fmt(at(r.test_loss, k)) << ","
        << fmt(at(r.test_metric, k));
    o << "\n";
  }
  return o.str();
}

StepLog::StepLog(const std::string& path, bool append)
    : f_(path, append ? std::ios::app : std::ios::trunc) {
  if (!f_) throw std::runtime_error("cannot write '" + path + "'");
}

void StepLog::write(const StepRecord& r, const std::vector<std::string>& tasks) {
  if (f_.is_open()) f_ << to_json(r, tasks).dump() << '\n';
}

void StepLog::flush() {
  if (f_.is_open()) f_.flush();
}

std::vector<StepRecord> read_steps_file(const std::string& path, const std::vector<std::string>& tasks, int64_t last_step) {
  std::istringstream in(read_text(path));
  std::vector<StepRecord> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      StepRecord r = step_from_json(json::parse(line), tasks);
      if (r.step <= last_step) out.push_back(std::move(r));
    } catch (const std::exception& e) {
      throw std::runtime_error("'" + path + "' line " + std::to_string(n) + " is not a step record: " + e.what());
    }
  }
  return out;
}

void truncate_steps_file(const std::string& path, int64_t last_step) {
  std::istringstream in(read_text(path));
  std::string line, keep;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    int64_t s = json::parse(line).at("step").get<int64_t>();
    if (s <= last_step) keep += line + "\n";
  }
  write_text_atomic(path, keep);
}

double delta_m(const std::vector<double>& m, const std::vector<double>& b, const std::vector<bool>& higher) {
  if (m.size() != b.size() || m.size() != higher.size() || m.empty())
    throw std::invalid_argument("delta_m: metrics, baselines and directions must have the same non-zero length");
  double s = 0;
  for (size_t k = 0; k < m.size(); ++k) s += (higher[k] ? -1.0 : 1.0) * (m[k] - b[k]) / b[k];
  return 100.0 * s / double(m.size());
}

double delta_p(const std::vector<std::vector<double>>& n, const std::vector<std::vector<double>>& b,
               const std::vector<std::vector<bool>>& higher) {
  if (n.size() != b.size() || n.size() != higher.size() || n.empty())
    throw std::invalid_argument("delta_p: metrics, baselines and directions must have the same tasks");
  double s = 0;
  for (size_t t = 0; t < n.size(); ++t) {
    if (n[t].size() != b[t].size() || n[t].size() != higher[t].size() || n[t].empty())
      throw std::invalid_argument("delta_p: task " + std::to_string(t) + " has mismatched metric lists");
    double st = 0;
    for (size_t m = 0; m < n[t].size(); ++m) st += (higher[t][m] ? -1.0 : 1.0) * (b[t][m] - n[t][m]) / b[t][m];
    s += st / double(n[t].size());
  }
  return 100.0 * s / double(n.size());
}

mtl::Mat cosines(const mtl::Mat& M) {
  mtl::Mat C(M.rows, M.cols);
  for (int i = 0; i < M.rows; ++i)
    for (int j = 0; j < M.cols; ++j) {
      double d = std::sqrt(std::max(M(i, i), 0.0) * std::max(M(j, j), 0.0));
      C(i, j) = d > 0 ? M(i, j) / d : 0.0;
    }
  return C;
}

mtl::Mat mean_cosines(const std::vector<StepRecord>& steps) {
  mtl::Mat sum;
  int n = 0;
  for (auto& s : steps) {
    if (!s.gramian || s.gramian->rows == 0) continue;
    mtl::Mat C = cosines(*s.gramian);
    bool finite = std::all_of(C.a.begin(), C.a.end(), [](double v) { return std::isfinite(v); });
    if (!finite) continue;
    if (n == 0) sum = mtl::Mat(C.rows, C.cols);
    if (C.rows != sum.rows) continue;
    for (size_t i = 0; i < C.a.size(); ++i) sum.a[i] += C.a[i];
    ++n;
  }
  for (auto& v : sum.a) v /= double(std::max(n, 1));
  return sum;
}

double median_ms(const std::vector<StepRecord>& steps) {
  std::vector<double> v;
  for (auto& s : steps)
    if (!s.skipped) v.push_back(s.ms_total);
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace polyhead::run
