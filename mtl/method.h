// mtl/method.h: the interface every MTL weighting / aggregation method implements.
//
// A method sees one training step's per-task information and returns how to combine the tasks:
//   - row weights w (K): the update of the shared parameters is d = G^T w = sum_k w_k g_k, which the
//     trainer realises as one weighted backward of sum_k w_k L_k (or G^T w from a stored Jacobian);
//   - or, for aggregators whose result is not a combination of the rows (GradDrop, TrimmedMean,
//     MoCo, DB-MTL, ...), the vector d (P) itself.
// Everything here is float64 and device-free: K is small, the solvers are ours, and the golden
// tests feed the same inputs LibMTL and torchjd were given.
//
// Inputs a method may need are declared by needs() (a bit set of Need), so the trainer computes
// only those: losses, the K x K Gramian M = G G^T, the K x P Jacobian G, ...
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/error.h"

namespace polyhead::mtl {

// Dense row-major float64 matrix (small: K x K, K x P, K x epochs).
struct Mat {
  int rows = 0, cols = 0;
  std::vector<double> a;
  Mat() = default;
  Mat(int r, int c, double v = 0.0) : rows(r), cols(c), a(size_t(r) * size_t(c), v) {}
  double& operator()(int i, int j) { return a[size_t(i) * cols + j]; }
  double operator()(int i, int j) const { return a[size_t(i) * cols + j]; }
  std::span<double> row(int i) { return {a.data() + size_t(i) * cols, size_t(cols)}; }
  std::span<const double> row(int i) const { return {a.data() + size_t(i) * cols, size_t(cols)}; }
};

// Randomness injected into stochastic methods (PCGrad and GradVac orders, RLW, GradDrop).
// The trainer passes a Philox-backed source; golden tests replay the references' recorded draws.
struct Random {
  virtual ~Random() = default;
  virtual void shuffle(std::vector<int>& v) = 0;   // permute v in place
  virtual void normal(std::span<double> out) = 0;  // independent N(0, 1)
  virtual void uniform(std::span<double> out) = 0; // independent U[0, 1)
};

// What a method needs computed before step(). Bit set.
enum Need : unsigned {
  kNeedLosses = 1u << 0,       // L (K)
  kNeedGramian = 1u << 1,      // M = G G^T (K x K)
  kNeedJacobian = 1u << 2,     // G (K x P)
  kNeedRepresentation = 1u << 3,  // the shared representation (GradDrop, LibMTL form)
  kNeedThreeSamples = 1u << 4, // three independent batches: G3 and L3 (MoDo, SDMGrad)
  kNeedLossHistory = 1u << 5,  // epoch-average losses of finished epochs (DWA, GradNorm)
  kNeedLossesAfter = 1u << 6,  // losses after the update on the same batch (FAMO's update)
  kNeedValidationLosses = 1u << 7,  // K losses on a held-out batch (CoBa): StepInput::L_val
};

// Whether task heads get their own loss's unweighted gradient (LibMTL 'backward' mode, torchjd
// mtl_backward) or the w_k-weighted one (a plain backward of sum_k w_k L_k).
enum class HeadGrad { Unweighted, Weighted };

struct StepInput {
  int K = 0;
  std::vector<double> L;             // K losses of this step
  const Mat* G = nullptr;            // K x P per-task gradients of the shared parameters
  const Mat* M = nullptr;            // K x K Gramian G G^T
  const Mat* rep = nullptr;          // 1 x P representation whose signs GradDrop uses
  std::vector<Mat> G3;               // MoDo / SDMGrad: three K x P samples
  std::vector<std::vector<double>> L3;  // and their losses
  int epoch = 0;                     // 0-based epoch index
  const Mat* loss_history = nullptr; // K x E: column e = mean training loss of finished epoch e
  Random* rng = nullptr;
  // K validation losses of the model as it is at this step (before its update), computed without
  // gradients by TrainerOptions::validation_losses; empty when not computed.
  std::vector<double> L_val;
};

struct StepOutput {
  std::vector<double> w;   // row weights: d = G^T w. Empty when d is set.
  std::vector<double> d;   // the combined gradient, when it is not G^T w. Empty otherwise.
  // What the reference implementation returns as "weights" (logged; may not describe d, e.g.
  // GLS, GradVac). Absent when the reference returns nothing.
  std::optional<std::vector<double>> reported;
};

// Named float64 arrays: a method's state (EMA buffers, learnable parameters, counters).
using StateDict = std::map<std::string, Mat>;

// Options given by name ("alpha" -> "1.5"). Methods read them with defaults; an option a method
// does not know is an error listing the ones it does.
class Options {
public:
  Options() = default;
  Options(std::initializer_list<std::pair<const std::string, std::string>> kv) : kv_(kv) {}
  void set(const std::string& k, const std::string& v) { kv_[k] = v; }
  bool has(const std::string& k) const { return kv_.count(k) != 0; }
  double get_double(const std::string& k, double def) const;
  int get_int(const std::string& k, int def) const;
  std::string get_string(const std::string& k, const std::string& def) const;
  // Throws if any given option is not in `known` (used by each method's constructor).
  void check_known(const std::string& method, std::initializer_list<const char*> known) const;
  const std::map<std::string, std::string>& items() const { return kv_; }

private:
  std::map<std::string, std::string> kv_;
};

class Method {
public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  virtual unsigned needs() const = 0;
  virtual HeadGrad head_grad() const { return HeadGrad::Unweighted; }
  // One step. Requires the inputs named by needs(). Throws polyhead::Error on inconsistent K,
  // shapes, or non-finite inputs.
  virtual StepOutput step(const StepInput& in) = 0;
  // FAMO: losses on the same batch after the parameter update.
  virtual void after_update(std::span<const double> /*L_after*/) {}
  // Learnable parameters of the method itself (UW, GradNorm, IMTL-L logits) and their gradient
  // from the last step(); the trainer's optimizer steps them. Empty for most methods.
  virtual std::span<double> params() { return {}; }
  virtual std::span<const double> param_grads() const { return {}; }
  // Checkpointable state; load_state(state()) restores the method exactly.
  virtual StateDict state() const { return {}; }
  virtual void load_state(const StateDict& /*s*/) {}
};

struct MethodInfo {
  std::string name;      // registry name, e.g. "pcgrad"
  std::string summary;   // one line with the paper
  std::string kind;      // "loss", "gramian", "full"
};

// Registry. make_method throws polyhead::Error naming the valid methods when `name` is unknown.
std::unique_ptr<Method> make_method(const std::string& name, int K, const Options& opts = {});
std::vector<MethodInfo> list_methods();

}  // namespace polyhead::mtl
