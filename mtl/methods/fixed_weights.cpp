// mtl/methods/fixed_weights.cpp: constant task weights.
//   ew       LibMTL EW, linear scalarization (Caruana 1997; every MTL library): w_k = 1, i.e. the sum
//            of the losses (LibMTL's docstring says 1/K but its code uses ones).
//   sum      torchjd Sum: w_k = 1 (the same aggregation as ew).
//   mean     torchjd Mean: w_k = 1/K.
//   constant torchjd Constant: w = the option `weights` (K comma-separated numbers).
// Invariants: stateless, deterministic, needs no input at all (the trainer realises d = G^T w as one
// weighted backward of sum_k w_k L_k, so heads get w_k-weighted gradients). L, when given, is still
// validated (size K, finite).
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class FixedWeights final : public BasicMethod {
public:
  FixedWeights(std::string name, int K, Vec w) : BasicMethod(std::move(name), K), w_(std::move(w)) {}
  unsigned needs() const override { return 0; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override {
    check(in);
    StepOutput out;
    out.w = w_;
    return out;
  }

private:
  Vec w_;
};

}  // namespace

std::unique_ptr<Method> make_ew(int K, const Options& o) {
  o.check_known("ew", {});
  return std::make_unique<FixedWeights>("ew", K, Vec(size_t(K), 1.0));
}

std::unique_ptr<Method> make_sum(int K, const Options& o) {
  o.check_known("sum", {});
  return std::make_unique<FixedWeights>("sum", K, Vec(size_t(K), 1.0));
}

std::unique_ptr<Method> make_mean(int K, const Options& o) {
  o.check_known("mean", {});
  return std::make_unique<FixedWeights>("mean", K, Vec(size_t(K), 1.0 / K));
}

std::unique_ptr<Method> make_constant(int K, const Options& o) {
  o.check_known("constant", {"weights"});
  if (!o.has("weights"))
    throw Error("make_method", "method 'constant' needs the option 'weights'",
                "give K comma-separated weights, e.g. weights=1,0.5");
  Vec w = parse_list("constant", "weights", o.get_string("weights", ""));
  if (int(w.size()) != K)
    throw Error("make_method",
                "method 'constant': option 'weights' has " + std::to_string(w.size()) +
                    " entries for K = " + std::to_string(K) + " tasks",
                "give exactly one weight per task");
  if (!all_finite(w)) throw Error("make_method", "method 'constant': option 'weights' has a non-finite entry");
  return std::make_unique<FixedWeights>("constant", K, std::move(w));
}

}  // namespace polyhead::mtl::basic
