// mtl/diagnostics/conflict.h: gradient-conflict measurements (trajectory diagnostics D2, after
// Mueller, Dredze & Andrews, "Can Optimization Trajectories Explain Multi-Task Transfer?", TMLR
// 2025, and the authors' earlier conflict code), as pure functions of the K x K Gramian
// M = G G^T of the per-task gradients g_k of the shared parameters.
//
//   norms            ||g_k|| = sqrt(M_kk)
//   cosine_matrix    cos_jk = M_jk / (||g_j|| ||g_k||); 0 where a norm is 0 (diagonal 1 for nonzero g_k)
//   conflict_stats   over the K(K-1)/2 pairs j < k: mean and min cosine, the fraction of pairs with
//                    cos < 0, whether any pair conflicts; the directional conflict
//                    ||(1/K) sum_k g_k/||g_k|| || = (1/K) sqrt(sum_jk cos_jk) (larger = more aligned)
//                    and the magnitude conflict Var_k(||g_k||^2) (population variance, divide by K:
//                    the spec gives no ddof, numpy's default is taken [E]); ||sum_k g_k||.
//   update_conflicts 1[<d, g_k> < 0] for the update d = sum_j w_j g_j: <d, g_k> = (M w)_k
//                    (the PCGrad / PiKE definition of a task in conflict with the step).
//   ConflictCounter  fraction of recorded steps with at least one conflicting pair, plain and
//                    weighted by ||sum_k g_k|| (the spec's "time fractions over steps, and weighted
//                    by ||g||"; the weight is the norm of the summed gradient [E]).
// With K = 1 there are no pairs: mean/min cosine are NaN, fractions 0, directional conflict 1.
#pragma once
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::diag {

std::vector<double> norms(const Mat& M);
Mat cosine_matrix(const Mat& M);

struct ConflictStats {
  double mean_cosine = 0, min_cosine = 0;  // over pairs j < k (NaN when K = 1)
  double pair_fraction = 0;                // fraction of pairs with cos < 0
  bool any = false;                        // at least one pair with cos < 0
  double directional = 0;                  // ||mean_k g_k / ||g_k|| ||
  double magnitude = 0;                    // Var_k ||g_k||^2
  double sum_norm = 0;                     // ||sum_k g_k||
};

ConflictStats conflict_stats(const Mat& M);

// (M w)_k < 0 for each k. w: K row weights of the update.
std::vector<bool> update_conflicts(const Mat& M, const std::vector<double>& w);

class ConflictCounter {
public:
  void add(const ConflictStats& s);
  double fraction() const { return n_ ? double(conflicting_) / double(n_) : 0.0; }
  double weighted_fraction() const { return wsum_ > 0 ? wconf_ / wsum_ : 0.0; }
  long count() const { return n_; }

private:
  long n_ = 0, conflicting_ = 0;
  double wsum_ = 0, wconf_ = 0;
};

// Throws polyhead::Error when M is not square, not symmetric (to 1e-9 relative) or not finite.
void check_gramian(const Mat& M, const char* op);

}  // namespace polyhead::mtl::diag
