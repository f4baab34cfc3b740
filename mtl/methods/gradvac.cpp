// mtl/methods/gradvac.cpp: "gradvac", Gradient Vaccine (Wang et al., "Gradient Vaccine:
// Investigating and Improving Multi-task Optimization in Massively Multilingual Models", ICLR 2021),
// LibMTL version. For each task i and each other task j in a random order (rng->shuffle of the
// other tasks), per parameter group:
//   rho = p_i.g_j / (||p_i|| ||g_j|| + 1e-8);
//   if rho < rhoT_ij: p_i += g_j ||p_i|| (rhoT sqrt(1-rho^2) - rho sqrt(1-rhoT^2)) / (||g_j|| sqrt(1-rhoT^2) + 1e-8);
//   always:           rhoT_ij <- (1-beta) rhoT_ij + beta rho  (rho measured before the correction);
//   d = sum_i p_i.  With rhoT = 0 the first step equals PCGrad.
// Options: beta (EMA rate, default 0.5); groups (comma-separated group sizes summing to P; absent =
// the whole model, LibMTL group_type 0). Whole model: computed on the Gramian (p_i tracked by its
// coefficients on the rows, returned as w with d = G^T w); with groups: on G (returned as d).
// StepOutput.reported = ones (LibMTL's return value, which does not describe d).
// State: rho_T (K x K*groups, [i][j*groups + k]), step. load_state(state()) restores exactly.
// Invariants: rho_T starts at 0; heads get unweighted gradients.
#include <algorithm>
#include <numeric>

#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class GradVac final : public BasicMethod {
public:
  GradVac(int K, double beta, std::vector<int> groups)
      : BasicMethod("gradvac", K),
        beta_(beta),
        groups_(std::move(groups)),
        ng_(groups_.empty() ? 1 : int(groups_.size())),
        rho_(K, K * ng_, 0.0) {}
  unsigned needs() const override { return groups_.empty() ? kNeedGramian : kNeedJacobian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    Random& rng = need_rng(name_, in);
    StepOutput out = groups_.empty() ? step_gram(in, rng) : step_groups(in, rng);
    step_ += 1;
    out.reported = Vec(size_t(K_), 1.0);
    return out;
  }

  StateDict state() const override { return {{"rho_T", rho_}, {"step", scalar_mat(step_)}}; }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"rho_T", "step"});
    auto r = read_mat(name_, s, "rho_T", K_, K_ * ng_);
    rho_ = r ? *r : Mat(K_, K_ * ng_, 0.0);
    step_ = read_scalar(name_, s, "step").value_or(0.0);
  }

private:
  std::vector<int> others_shuffled(int i, Random& rng) const {
    std::vector<int> idx;
    for (int j = 0; j < K_; ++j)
      if (j != i) idx.push_back(j);
    std::vector<int> sorted = idx;
    rng.shuffle(idx);
    std::vector<int> check = idx;
    std::sort(check.begin(), check.end());
    if (check != sorted) throw Error(name_, "the random source's shuffle did not return a permutation of the tasks");
    return idx;
  }

  // One GradVac correction; returns the coefficient added to p_i along g_j (0 if none) and
  // updates the cosine EMA rhoT.
  double vaccinate(double pg, double pn, double gn, double& rhoT) const {
    const double rho = pg / (pn * gn + 1e-8);
    const double rt = rhoT;
    double w = 0.0;
    if (rho < rt)
      w = pn * (rt * std::sqrt(1.0 - rho * rho) - rho * std::sqrt(1.0 - rt * rt)) /
          (gn * std::sqrt(1.0 - rt * rt) + 1e-8);
    rhoT = (1.0 - beta_) * rt + beta_ * rho;  // always, with the rho measured before the correction
    return w;
  }

  StepOutput step_gram(const StepInput& in, Random& rng) {
    const Mat M = gramian_of(in);
    Vec w(size_t(K_), 0.0), c(static_cast<size_t>(K_)), Mc(static_cast<size_t>(K_));
    for (int i = 0; i < K_; ++i) {
      std::fill(c.begin(), c.end(), 0.0);
      c[i] = 1.0;
      for (int j : others_shuffled(i, rng)) {
        for (int l = 0; l < K_; ++l) {
          double s = 0.0;
          for (int m = 0; m < K_; ++m) s += M(l, m) * c[m];
          Mc[l] = s;
        }
        const double pn = std::sqrt(std::max(dot(c, Mc), 0.0));
        const double gn = std::sqrt(std::max(M(j, j), 0.0));
        c[j] += vaccinate(Mc[j], pn, gn, rho_(i, j));
      }
      for (int l = 0; l < K_; ++l) w[l] += c[l];
    }
    StepOutput out;
    out.w = std::move(w);
    return out;
  }

  StepOutput step_groups(const StepInput& in, Random& rng) {
    const Mat& G = *in.G;
    const int total = std::accumulate(groups_.begin(), groups_.end(), 0);
    if (total != G.cols)
      throw Error(
          name_,
          "option groups sums to " + std::to_string(total) + " but G has P = " + std::to_string(G.cols) + " columns",
          "give group sizes that add up to the number of shared parameters");
    Mat Pc = G;
    for (int i = 0; i < K_; ++i) {
      for (int j : others_shuffled(i, rng)) {
        int beg = 0;
        for (int k = 0; k < ng_; ++k) {
          const int end = beg + groups_[k];
          std::span<double> p = Pc.row(i).subspan(size_t(beg), size_t(end - beg));
          std::span<const double> g = G.row(j).subspan(size_t(beg), size_t(end - beg));
          const double w = vaccinate(dot(p, g), norm2(p), norm2(g), rho_(i, j * ng_ + k));
          if (w != 0.0)
            for (size_t q = 0; q < p.size(); ++q) p[q] += g[q] * w;
          beg = end;
        }
      }
    }
    StepOutput out;
    out.d.assign(size_t(G.cols), 0.0);
    for (int i = 0; i < K_; ++i)
      for (int p = 0; p < G.cols; ++p) out.d[p] += Pc(i, p);
    return out;
  }

  double beta_;
  std::vector<int> groups_;
  int ng_;
  Mat rho_;
  double step_ = 0;
};

}  // namespace

std::unique_ptr<Method> make_gradvac(int K, const Options& o) {
  o.check_known("gradvac", {"beta", "groups"});
  const double beta = o.get_double("beta", 0.5);
  if (!(beta >= 0 && beta <= 1))
    throw Error("make_method", "method 'gradvac': option beta must be in [0, 1]", "the default is beta=0.5");
  std::vector<int> groups;
  if (o.has("groups")) {
    for (double x : parse_list("gradvac", "groups", o.get_string("groups", ""))) {
      if (!(x >= 1) || x != std::floor(x))
        throw Error("make_method", "method 'gradvac': every entry of option groups must be a positive integer",
                    "e.g. groups=100,20 for two parameter groups of 100 and 20 entries");
      groups.push_back(int(x));
    }
  }
  return std::make_unique<GradVac>(K, beta, std::move(groups));
}

}  // namespace polyhead::mtl::basic
