// mtl/run/table.cpp: see table.h.
#include "mtl/run/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "mtl/run/metrics.h"

namespace polyhead::run {

void fill_deltas(ResultTable& t, const std::vector<double>& base) {
  for (auto& r : t.rows) {
    bool ok = r.metric.size() == base.size() && !base.empty();
    for (size_t k = 0; ok && k < base.size(); ++k) ok = std::isfinite(r.metric[k]) && std::isfinite(base[k]) && base[k] != 0;
    if (!ok) {
      r.delta_m.reset();
      r.delta_p.reset();
      continue;
    }
    r.delta_m = delta_m(r.metric, base, t.higher_is_better);
    std::vector<std::vector<double>> n, b;
    std::vector<std::vector<bool>> h;
    for (size_t k = 0; k < base.size(); ++k) {
      n.push_back({r.metric[k]});
      b.push_back({base[k]});
      h.push_back({t.higher_is_better[k]});
    }
    r.delta_p = delta_p(n, b, h);
  }
}

namespace {

std::string metric_cell(double v, const std::string& name) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  if (name == "acc") std::snprintf(b, sizeof(b), "%.2f", 100.0 * v);
  else std::snprintf(b, sizeof(b), "%.4g", v);
  return b;
}

std::string signed_cell(const std::optional<double>& v) {
  if (!v) return "-";
  char b[32];
  std::snprintf(b, sizeof(b), "%+.2f", *v);
  return b;
}

std::string ms_cell(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f", v);
  return b;
}

std::vector<std::string> headers(const ResultTable& t) {
  std::vector<std::string> h = {"method"};
  for (size_t k = 0; k < t.tasks.size(); ++k) {
    std::string m = t.metric_names[k] == "acc" ? "acc %" : t.metric_names[k];
    h.push_back(t.tasks[k] + " " + m + (t.higher_is_better[k] ? " ↑" : " ↓"));
  }
  h.push_back("Δm% ↓");
  h.push_back("ms/step");
  return h;
}

std::vector<std::vector<std::string>> cells(const ResultTable& t) {
  std::vector<std::vector<std::string>> out;
  for (auto& r : t.rows) {
    std::vector<std::string> c = {r.method};
    for (size_t k = 0; k < t.tasks.size(); ++k) c.push_back(metric_cell(k < r.metric.size() ? r.metric[k] : NAN, t.metric_names[k]));
    c.push_back(signed_cell(r.delta_m));
    c.push_back(ms_cell(r.ms_per_step));
    out.push_back(c);
  }
  return out;
}

// Display width: counts UTF-8 code points.
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad(const std::string& s, size_t w, bool left) {
  std::string sp(w > width(s) ? w - width(s) : 0, ' ');
  return left ? s + sp : sp + s;
}

}  // namespace

std::string table_text(const ResultTable& t) {
  auto h = headers(t);
  auto c = cells(t);
  std::vector<size_t> w(h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    w[i] = width(h[i]);
    for (auto& row : c) w[i] = std::max(w[i], width(row[i]));
  }
  std::ostringstream o;
  if (!t.title.empty()) o << t.title << "\n";
  for (size_t i = 0; i < h.size(); ++i) o << (i ? "  " : "") << pad(h[i], w[i], i == 0);
  o << "\n";
  size_t total = 0;
  for (size_t i = 0; i < w.size(); ++i) total += w[i] + (i ? 2 : 0);
  o << std::string(total, '-') << "\n";
  for (auto& row : c) {
    for (size_t i = 0; i < row.size(); ++i) o << (i ? "  " : "") << pad(row[i], w[i], i == 0);
    o << "\n";
  }
  for (auto& n : t.notes) o << n << "\n";
  return o.str();
}

std::string table_markdown(const ResultTable& t) {
  auto h = headers(t);
  auto c = cells(t);
  std::ostringstream o;
  if (!t.title.empty()) o << "# " << t.title << "\n\n";
  o << "|";
  for (auto& x : h) o << " " << x << " |";
  o << "\n|";
  for (size_t i = 0; i < h.size(); ++i) o << (i == 0 ? "---|" : "---:|");
  o << "\n";
  for (auto& row : c) {
    o << "|";
    for (auto& x : row) o << " " << x << " |";
    o << "\n";
  }
  if (!t.notes.empty()) {
    o << "\n";
    for (auto& n : t.notes) o << n << "\n";
  }
  return o.str();
}

std::string table_csv(const ResultTable& t) {
  std::ostringstream o;
  o << "method";
  for (size_t k = 0; k < t.tasks.size(); ++k) o << ",test_" << t.metric_names[k] << "_" << t.tasks[k];
  for (size_t k = 0; k < t.tasks.size(); ++k) o << ",test_loss_" << t.tasks[k];
  o << ",delta_m_pct,delta_p_pct,ms_per_step\n";
  auto val = [](double v) { return std::isfinite(v) ? fmt(v) : std::string(); };
  for (auto& r : t.rows) {
    o << r.method;
    for (size_t k = 0; k < t.tasks.size(); ++k) o << "," << val(k < r.metric.size() ? r.metric[k] : NAN);
    for (size_t k = 0; k < t.tasks.size(); ++k) o << "," << val(k < r.loss.size() ? r.loss[k] : NAN);
    o << "," << (r.delta_m ? fmt(*r.delta_m) : "") << "," << (r.delta_p ? fmt(*r.delta_p) : "") << ","
      << fmt(r.ms_per_step) << "\n";
  }
  return o.str();
}

}  // namespace polyhead::run
