// mtl/methods/coba.h: CoBa, the convergence balancer (Gong et al., EMNLP 2024), as a Method, and
// the pieces of its weight formula, exposed so the tests can check each on hand-computed values.
// The formulas, the options and the differences between the released code and the paper are in
// the comment at the top of coba.cpp.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::coba {

// Least-squares slope of y on x = x0, x0+1, ... as the released code fits it: entries of y equal
// to 0 are dropped first (a task missing from a validation batch), and the remaining n points get
// x = x0 .. x0+n-1 (so a dropped zero shifts the later points' x). 0 when fewer than 2 remain.
double window_slope(double x0, std::span<const double> y);

// softmax(K alpha / sum_j |alpha_j|); uniform when every alpha is 0.
std::vector<double> rcs(std::span<const double> alpha);
// softmax_k(-n alpha_k / sum_u |past_k(u)|): past[k] holds task k's n slopes (the current one
// included); a task whose slopes are all 0 gets logit 0.
std::vector<double> acs(std::span<const double> alpha, const std::vector<std::vector<double>>& past);
// M softmax_u(tau (-M a_u / sum |a|)) at the last u, M = a.size(); 1 when every a_u is 0.
double divergence_factor(std::span<const double> amax, double tau);

// What one weight update computed (for logs and tests).
struct Components {
  int step = -1;                 // the step t of the update (-1: none yet)
  std::vector<double> alpha;     // per-task slopes
  double alpha_max = 0;          // slope of the maximum curve (or the largest slope)
  std::vector<double> rcs, acs;  // the two scores
  double df = 1;                 // divergence factor
  std::vector<double> omega;     // the weights (sum 1)
};

// The CoBa method (registered as "coba"). Needs kNeedValidationLosses.
std::unique_ptr<Method> make_coba(int K, const Options& o);
// The components of the last weight update of a method made by make_coba (throws otherwise).
const Components& last_components(const Method& m);

}  // namespace polyhead::mtl::coba
