// mtl/methods/basic_util.cpp: validation, arithmetic and state helpers of the basic MTL family
// (see basic_util.h). Everything is float64 and deterministic.
#include "mtl/methods/basic_util.h"

#include <algorithm>
#include <numeric>

namespace polyhead::mtl::basic {

namespace {

const char* kNonFiniteHint =
    "the training step produced NaN/Inf: lower the learning rate, clip gradients, or check the "
    "loss for log(0) or a division by zero";

std::string num_str(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

void check_matrix(const std::string& method, const std::string& what, const Mat& A, int rows, int cols) {
  if (A.rows != rows || (cols >= 0 && A.cols != cols) || A.cols < 1 || A.a.size() != size_t(A.rows) * size_t(A.cols))
    throw Error(method,
                what + " has shape " + shape_str({A.rows, A.cols}) + ", expected " +
                    (cols >= 0 ? shape_str({rows, cols}) : "[" + std::to_string(rows) + ", P]"),
                "pass one row per task (K = " + std::to_string(rows) + ")");
  for (int i = 0; i < A.rows; ++i)
    for (int j = 0; j < A.cols; ++j)
      if (!std::isfinite(A(i, j)))
        throw Error(
            method,
            what + "[" + std::to_string(i) + "][" + std::to_string(j) + "] = " + num_str(A(i, j)) + " is not finite",
            kNonFiniteHint);
}

void check_losses(const std::string& method, const std::string& what, std::span<const double> L, int K) {
  if (int(L.size()) != K)
    throw Error(method,
                "got " + std::to_string(L.size()) + " values in " + what + " for K = " + std::to_string(K) + " tasks",
                "pass one loss per task");
  for (int k = 0; k < K; ++k)
    if (!std::isfinite(L[k]))
      throw Error(method, what + "[" + std::to_string(k) + "] = " + num_str(L[k]) + " is not finite", kNonFiniteHint);
}

}  // namespace

void check_vector(const std::string& method, const std::string& what, std::span<const double> v, int K) {
  check_losses(method, what, v, K);
}

void check_input(const std::string& method, int K, const StepInput& in, unsigned need) {
  if (in.K != K)
    throw Error(
        method,
        "StepInput.K = " + std::to_string(in.K) + " but the method was made for K = " + std::to_string(K) + " tasks",
        "make the method with the number of tasks the trainer steps");
  if ((need & kNeedLosses) || !in.L.empty()) check_losses(method, "L", in.L, K);
  if (need & kNeedJacobian) {
    if (!in.G)
      throw Error(method, "needs the per-task gradients G (K x P) but StepInput.G is null",
                  "the trainer must compute the Jacobian for this method (needs() has kNeedJacobian)");
    check_matrix(method, "G", *in.G, K, -1);
  }
  if (need & kNeedGramian) {
    if (in.M) {
      check_matrix(method, "M", *in.M, K, K);
    } else if (in.G) {
      check_matrix(method, "G", *in.G, K, -1);
    } else {
      throw Error(method, "needs the Gramian M = G G^T (K x K) but StepInput.M and StepInput.G are null",
                  "the trainer must compute the Gramian for this method (needs() has kNeedGramian)");
    }
  }
  if (need & kNeedRepresentation) {
    if (!in.rep)
      throw Error(method, "needs the shared representation (StepInput.rep, 1 x P) but it is null",
                  "enable representation gradients in the trainer for this method");
    const int P = in.G ? in.G->cols : in.rep->cols;
    if (in.rep->rows != 1 || in.rep->cols != P)
      throw Error(
          method,
          "StepInput.rep has shape " + shape_str({in.rep->rows, in.rep->cols}) + ", expected " + shape_str({1, P}),
          "rep must have one entry per column of G");
    check_matrix(method, "rep", *in.rep, 1, P);
  }
  if (need & kNeedThreeSamples) {
    if (in.G3.size() != 3)
      throw Error(method,
                  "needs three independent gradient samples (StepInput.G3) but got " + std::to_string(in.G3.size()),
                  "the trainer must draw three batches per step for this method");
    const int P = in.G3[0].cols;
    for (int s = 0; s < 3; ++s) check_matrix(method, "G3[" + std::to_string(s) + "]", in.G3[s], K, P);
    if ((need & kNeedLosses) || !in.L3.empty()) {
      if (in.L3.size() != 3)
        throw Error(method, "needs three loss samples (StepInput.L3) but got " + std::to_string(in.L3.size()),
                    "pass the losses of the three batches");
      for (int s = 0; s < 3; ++s) check_losses(method, "L3[" + std::to_string(s) + "]", in.L3[s], K);
    }
  }
  if (need & kNeedLossHistory) {
    if (!in.loss_history)
      throw Error(method, "needs the epoch-average loss history (StepInput.loss_history) but it is null",
                  "the trainer must record the mean training loss of every finished epoch");
    const Mat& H = *in.loss_history;
    if (H.rows != K || H.a.size() != size_t(H.rows) * size_t(H.cols))
      throw Error(
          method,
          "loss_history has shape " + shape_str({H.rows, H.cols}) + ", expected [" + std::to_string(K) + ", epochs]",
          "one row per task, one column per finished epoch");
    for (double x : H.a)
      if (!std::isfinite(x)) throw Error(method, "loss_history has a non-finite entry", kNonFiniteHint);
  }
}

void check_positive_losses(const std::string& method, std::span<const double> L) {
  for (size_t k = 0; k < L.size(); ++k)
    if (!(L[k] > 0))
      throw Error(method, "loss of task " + std::to_string(k) + " is " + num_str(L[k]) + " but must be > 0",
                  "this method takes log(L) or divides by L: use positive losses (e.g. add a constant offset)");
}

Random& need_rng(const std::string& method, const StepInput& in) {
  if (!in.rng)
    throw Error(method, "is stochastic but StepInput.rng is null",
                "pass a Random source (the trainer's Philox stream) in StepInput.rng");
  return *in.rng;
}

Mat gram(const Mat& G) {
  Mat M(G.rows, G.rows);
  for (int i = 0; i < G.rows; ++i)
    for (int j = 0; j <= i; ++j) M(i, j) = M(j, i) = dot(G.row(i), G.row(j));
  return M;
}

Mat gramian_of(const StepInput& in) {
  if (in.M) return *in.M;
  return gram(*in.G);
}

double dot(std::span<const double> a, std::span<const double> b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double norm2(std::span<const double> a) { return std::sqrt(dot(a, a)); }

Vec softmax(std::span<const double> z) {
  double m = -INFINITY;
  for (double x : z) m = std::max(m, x);
  Vec e(z.size());
  double s = 0.0;
  for (size_t i = 0; i < z.size(); ++i) s += (e[i] = std::exp(z[i] - m));
  for (double& x : e) x /= s;
  return e;
}

Vec combine(const Mat& G, std::span<const double> w) {
  Vec d(size_t(G.cols), 0.0);
  for (int k = 0; k < G.rows; ++k) {
    auto g = G.row(k);
    for (int p = 0; p < G.cols; ++p) d[p] += w[k] * g[p];
  }
  return d;
}

bool all_finite(std::span<const double> v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

Vec project_simplex_libmtl(std::span<const double> y) {
  const size_t m = y.size();
  Vec sorted(y.begin(), y.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  double total = 0.0;
  for (double x : y) total += x;
  double tmpsum = 0.0, tmax_f = (total - 1.0) / double(m);
  for (size_t i = 0; i + 1 < m; ++i) {
    tmpsum += sorted[i];
    const double tmax = (tmpsum - 1.0) / double(i + 1);
    if (tmax > sorted[i + 1]) {
      tmax_f = tmax;
      break;
    }
  }
  Vec out(m);
  for (size_t i = 0; i < m; ++i) out[i] = std::max(y[i] - tmax_f, 0.0);
  return out;
}

Vec project_simplex_sdmgrad(std::span<const double> v) {
  const size_t n = v.size();
  double total = 0.0;
  bool nonneg = true;
  for (double x : v) {
    total += x;
    nonneg = nonneg && x >= 0;
  }
  if (total == 1.0 && nonneg) return Vec(v.begin(), v.end());
  Vec u(v.begin(), v.end());
  std::sort(u.begin(), u.end(), std::greater<double>());
  Vec cssv(n);
  double c = 0.0;
  for (size_t i = 0; i < n; ++i) cssv[i] = (c += u[i]);
  size_t rho = 0;
  for (size_t i = 0; i < n; ++i)
    if (u[i] * double(i + 1) > cssv[i] - 1.0) rho = i;
  const double theta = (cssv[rho] - 1.0) / double(rho + 1);
  Vec w(n);
  for (size_t i = 0; i < n; ++i) w[i] = std::max(v[i] - theta, 0.0);
  return w;
}

Vec parse_list(const std::string& method, const std::string& option, const std::string& text) {
  Vec out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    try {
      size_t pos = 0;
      if (item.empty()) throw std::invalid_argument("empty");
      out.push_back(std::stod(item, &pos));
      if (pos != item.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error(method, "option '" + option + "' = '" + text + "': '" + item + "' is not a number",
                  "give a comma-separated list of numbers, e.g. " + option + "=1,2,0.5");
    }
    start = end + 1;
  }
  return out;
}

Mat row_mat(std::span<const double> v) {
  Mat m(1, int(v.size()));
  std::copy(v.begin(), v.end(), m.a.begin());
  return m;
}

Mat scalar_mat(double x) { return Mat(1, 1, x); }

void check_state_keys(const std::string& method, const StateDict& s, std::initializer_list<const char*> known) {
  for (const auto& [k, v] : s) {
    bool ok = std::any_of(known.begin(), known.end(), [&](const char* n) { return k == n; });
    if (!ok) {
      std::string valid;
      for (const char* n : known) valid += std::string(valid.empty() ? "" : ", ") + n;
      throw Error(method, "load_state: unknown state entry '" + k + "'", "this method's state has: " + valid);
    }
    if (v.a.size() != size_t(v.rows) * size_t(v.cols))
      throw Error(method, "load_state: state entry '" + k + "' is malformed (data size does not match its shape)");
  }
}

std::optional<Vec> read_vec(const std::string& method, const StateDict& s, const std::string& key, int n) {
  auto it = s.find(key);
  if (it == s.end()) return std::nullopt;
  const Mat& m = it->second;
  if (!((m.rows == 1 && m.cols == n) || (m.cols == 1 && m.rows == n)))
    throw Error(
        method,
        "load_state: '" + key + "' has shape " + shape_str({m.rows, m.cols}) + ", expected " + shape_str({1, n}),
        "the state was saved by a method made for a different number of tasks");
  return Vec(m.a.begin(), m.a.end());
}

std::optional<Mat> read_mat(const std::string& method, const StateDict& s, const std::string& key, int rows, int cols) {
  auto it = s.find(key);
  if (it == s.end()) return std::nullopt;
  const Mat& m = it->second;
  if (m.rows != rows || (cols >= 0 && m.cols != cols) || m.cols < 1)
    throw Error(method,
                "load_state: '" + key + "' has shape " + shape_str({m.rows, m.cols}) + ", expected " +
                    (cols >= 0 ? shape_str({rows, cols}) : "[" + std::to_string(rows) + ", P]"),
                "the state was saved by a method made for a different number of tasks");
  return m;
}

std::optional<double> read_scalar(const std::string& method, const StateDict& s, const std::string& key) {
  auto it = s.find(key);
  if (it == s.end()) return std::nullopt;
  if (it->second.a.size() != 1)
    throw Error(method, "load_state: '" + key + "' must be a 1 x 1 scalar, got shape " +
                            shape_str({it->second.rows, it->second.cols}));
  return it->second.a[0];
}

}  // namespace polyhead::mtl::basic
