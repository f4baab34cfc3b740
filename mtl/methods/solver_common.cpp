// mtl/methods/solver_common.cpp: see solver_common.h.
#include "mtl/methods/solver_common.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"

namespace polyhead::mtl::solver_common {

void check_K(const std::string& method, int K, const StepInput& in) {
  if (in.K != K)
    throw Error(method, "step input has K = " + std::to_string(in.K) + " tasks, the method was made for K = " +
                            std::to_string(K),
                "make the method with the number of tasks the trainer passes (make_method(name, K))");
}

const Mat& require_gramian(const std::string& method, int K, const StepInput& in) {
  check_K(method, K, in);
  if (!in.M)
    throw Error(method, "the Gramian M = G G^T is missing from the step input",
                "this method declares kNeedGramian: compute StepInput::M before step()");
  const Mat& M = *in.M;
  if (M.rows != K || M.cols != K || M.a.size() != size_t(K) * size_t(K))
    throw Error(method, "Gramian has shape " + shape_str({M.rows, M.cols}) + ", expected " + shape_str({K, K}),
                "M must be G G^T of the K x P task-gradient matrix");
  if (!linalg::all_finite(M))
    throw Error(method, "Gramian has NaN/Inf entries",
                "a task loss or gradient is not finite; check the losses (and use gradient clipping / a lower "
                "learning rate)");
  const double scale = linalg::max_abs(M);
  for (int i = 0; i < K; ++i) {
    if (M(i, i) < -1e-12 * scale)
      throw Error(method, "Gramian has a negative diagonal entry M[" + std::to_string(i) + "][" + std::to_string(i) +
                              "] = " + std::to_string(M(i, i)),
                  "M must be G G^T, whose diagonal holds squared gradient norms");
    for (int j = 0; j < i; ++j)
      if (std::fabs(M(i, j) - M(j, i)) > 1e-6 * scale)
        throw Error(method, "Gramian is not symmetric (M[" + std::to_string(i) + "][" + std::to_string(j) + "] = " +
                                std::to_string(M(i, j)) + ", M[" + std::to_string(j) + "][" + std::to_string(i) +
                                "] = " + std::to_string(M(j, i)) + ")",
                    "M must be G G^T");
  }
  return M;
}

const Mat& require_jacobian(const std::string& method, int K, const StepInput& in) {
  check_K(method, K, in);
  if (!in.G)
    throw Error(method, "the task-gradient matrix G is missing from the step input",
                "this method declares kNeedJacobian: store the K x P per-task gradients in StepInput::G");
  const Mat& G = *in.G;
  if (G.rows != K || G.cols < 1 || G.a.size() != size_t(G.rows) * size_t(G.cols))
    throw Error(method, "G has shape " + shape_str({G.rows, G.cols}) + ", expected [" + std::to_string(K) + ", P]",
                "one row per task, one column per shared parameter");
  if (!linalg::all_finite(G))
    throw Error(method, "G has NaN/Inf entries", "a task gradient is not finite; check the losses");
  return G;
}

const std::vector<double>& require_losses(const std::string& method, int K, const StepInput& in) {
  check_K(method, K, in);
  if (in.L.size() != size_t(K))
    throw Error(method, "got " + std::to_string(in.L.size()) + " losses for K = " + std::to_string(K) + " tasks",
                "this method declares kNeedLosses: fill StepInput::L with the K loss values");
  if (!linalg::all_finite(in.L)) throw Error(method, "a task loss is NaN/Inf", "check the loss functions and inputs");
  return in.L;
}

std::string choice(const Options& o, const std::string& method, const std::string& key, const std::string& def,
                   std::initializer_list<const char*> allowed) {
  std::string v = o.get_string(key, def);
  for (const char* a : allowed)
    if (v == a) return v;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  throw Error("make_method", "method '" + method + "': option " + key + " = '" + v + "' is not valid",
              "valid values: " + list);
}

double positive(const Options& o, const std::string& method, const std::string& key, double def, bool allow_zero) {
  double v = o.get_double(key, def);
  bool ok = std::isfinite(v) && (allow_zero ? v >= 0.0 : v > 0.0);
  if (!ok)
    throw Error("make_method", "method '" + method + "': option " + key + " = " + std::to_string(v) + " is out of range",
                std::string("give a finite number ") + (allow_zero ? ">= 0" : "> 0"));
  return v;
}

int positive_int(const Options& o, const std::string& method, const std::string& key, int def) {
  int v = o.get_int(key, def);
  if (v < 1)
    throw Error("make_method", "method '" + method + "': option " + key + " = " + std::to_string(v) + " is out of range",
                "give an integer >= 1");
  return v;
}

StepOutput weights_output(std::vector<double> w, std::vector<double> reported) {
  StepOutput out;
  out.w = std::move(w);
  out.reported = std::move(reported);
  return out;
}

}  // namespace polyhead::mtl::solver_common
