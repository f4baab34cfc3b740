// tests/mtl/golden_util.h: helpers of the golden-vector driver (golden_test.cpp): reading the
// JSON of tests/data/golden/mtl (numbers, the strings "NaN"/"Infinity"/"-Infinity", booleans),
// a Random that replays the references' recorded draws, and the README's comparison rule
//   max_i |x_i - r_i| <= rtol * max_i |r_i|   (or <= rtol * max|G| when r is all zero).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::golden {

using json = nlohmann::json;

inline double num(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  throw std::runtime_error("golden: not a number: " + v.dump());
}

// Flattens a number or (nested) array into a row-major vector.
inline void flatten_into(const json& v, std::vector<double>& out) {
  if (v.is_array()) {
    for (const auto& e : v) flatten_into(e, out);
  } else {
    out.push_back(num(v));
  }
}
inline std::vector<double> flat(const json& v) {
  std::vector<double> out;
  flatten_into(v, out);
  return out;
}

// A 2-D array as a Mat; a 1-D array as 1 x n; a scalar as 1 x 1. [[], []] gives 2 x 0.
inline Mat mat(const json& v) {
  if (!v.is_array()) return Mat(1, 1, num(v));
  if (v.empty()) return Mat(0, 0);
  if (!v[0].is_array()) {
    Mat m(1, int(v.size()));
    for (size_t j = 0; j < v.size(); ++j) m.a[j] = num(v[j]);
    return m;
  }
  Mat m(int(v.size()), int(v[0].size()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].size() != size_t(m.cols)) throw std::runtime_error("golden: ragged matrix");
    for (size_t j = 0; j < v[i].size(); ++j) m(int(i), int(j)) = num(v[i][j]);
  }
  return m;
}

inline Mat gram(const Mat& G) {
  Mat M(G.rows, G.rows);
  for (int i = 0; i < G.rows; ++i)
    for (int j = 0; j < G.rows; ++j) {
      double s = 0.0;
      for (int p = 0; p < G.cols; ++p) s += G(i, p) * G(j, p);
      M(i, j) = s;
    }
  return M;
}

inline std::string fmt(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

inline bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// Replays the draws a reference recorded: permutations for shuffle(), vectors for normal() and
// uniform(), each consumed in order. A draw that does not fit (wrong size, not a permutation of
// the given values, none left) throws, so a method that draws differently from the reference fails.
class ReplayRandom final : public Random {
public:
  std::deque<std::vector<int>> perms;
  std::deque<std::vector<double>> normals, uniforms;

  void shuffle(std::vector<int>& v) override {
    if (perms.empty()) throw std::runtime_error("replay: the method shuffled more often than the reference");
    std::vector<int> p = perms.front();
    perms.pop_front();
    std::vector<int> a = v, b = p;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) throw std::runtime_error("replay: shuffle of " + str(v) + " but the reference shuffled " + str(p));
    v = p;
  }
  void normal(std::span<double> out) override { take(normals, out, "normal"); }
  void uniform(std::span<double> out) override { take(uniforms, out, "uniform"); }
  bool exhausted() const { return perms.empty() && normals.empty() && uniforms.empty(); }
  std::string left() const {
    return std::to_string(perms.size()) + " shuffles, " + std::to_string(normals.size()) + " normal and " +
           std::to_string(uniforms.size()) + " uniform draws";
  }

private:
  static std::string str(const std::vector<int>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
  }
  static void take(std::deque<std::vector<double>>& q, std::span<double> out, const char* what) {
    if (q.empty())
      throw std::runtime_error(std::string("replay: the method drew more ") + what + " vectors than the reference");
    if (q.front().size() != out.size())
      throw std::runtime_error(std::string("replay: the method drew ") + std::to_string(out.size()) + " " + what +
                               " values, the reference " + std::to_string(q.front().size()));
    std::copy(q.front().begin(), q.front().end(), out.begin());
    q.pop_front();
  }
};

// README rule. `zero_scale` is max|G| of the step (used when the reference is all zero).
// A reference of one entry is broadcast against a longer engine array (a Python scalar state).
inline bool close(const std::vector<double>& x, const std::vector<double>& r, double rtol, double zero_scale,
                  std::string& why) {
  const bool broadcast = r.size() == 1 && x.size() > 1;
  if (x.size() != r.size() && !broadcast) {
    why = "size " + std::to_string(x.size()) + " vs reference " + std::to_string(r.size());
    return false;
  }
  double rmax = 0.0, err = 0.0;
  size_t worst = 0;
  for (double v : r) rmax = std::max(rmax, std::abs(v));
  for (size_t i = 0; i < x.size(); ++i) {
    const double ri = broadcast ? r[0] : r[i];
    const double e = std::abs(x[i] - ri);
    if (!(e <= err)) {  // also catches NaN
      if (std::isnan(e)) {
        why = "entry " + std::to_string(i) + " is " + fmt(x[i]) + " vs reference " + fmt(ri);
        return false;
      }
      err = e;
      worst = i;
    }
  }
  const double bound = rmax > 0 ? rtol * rmax : rtol * zero_scale;
  if (err <= bound) return true;
  std::ostringstream o;
  o << "max|x-r| = " << fmt(err) << " > " << fmt(bound) << " (rtol " << rtol << "); worst entry " << worst << ": "
    << fmt(x[worst]) << " vs reference " << fmt(broadcast ? r[0] : r[worst]);
  why = o.str();
  return false;
}

}  // namespace polyhead::mtl::golden
