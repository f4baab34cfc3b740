// mtl/methods/dwa.cpp: "dwa", Dynamic Weight Average (Liu, Johns & Davison, "End-to-End
// Multi-Task Learning with Attention", CVPR 2019; LibMTL DWA).
//   epoch e <= 1: w = 1;  e >= 2: r_k = H[k][e-1] / H[k][e-2],  w = K softmax(r / T),
// where H = StepInput::loss_history (K x E, column j = mean training loss of finished epoch j).
// Option T (temperature, default 2). Invariants: stateless (the history is an input); weights are
// constant within an epoch and sum to K; heads get w-weighted gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class DWA final : public BasicMethod {
public:
  DWA(int K, double T) : BasicMethod("dwa", K), T_(T) {}
  unsigned needs() const override { return kNeedLosses | kNeedLossHistory; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override {
    check(in);
    StepOutput out;
    const int e = in.epoch;
    if (e < 0) throw Error(name_, "epoch = " + std::to_string(e) + " is negative", "epochs are 0-based");
    if (e <= 1) {
      out.w.assign(size_t(K_), 1.0);
      return out;
    }
    const Mat& H = *in.loss_history;
    if (H.cols < e)
      throw Error(name_,
                  "at epoch " + std::to_string(e) + " DWA needs the mean losses of epochs " + std::to_string(e - 2) +
                      " and " + std::to_string(e - 1) + ", but loss_history has " + std::to_string(H.cols) + " columns",
                  "record the mean training loss of every finished epoch in loss_history");
    Vec r(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) {
      if (!(H(k, e - 2) > 0))
        throw Error(name_, "loss_history[" + std::to_string(k) + "][" + std::to_string(e - 2) + "] is not > 0",
                    "DWA divides by the previous epoch's mean loss; use positive losses");
      r[k] = H(k, e - 1) / H(k, e - 2) / T_;
    }
    out.w = softmax(r);
    for (double& x : out.w) x *= K_;
    return out;
  }

private:
  double T_;
};

}  // namespace

std::unique_ptr<Method> make_dwa(int K, const Options& o) {
  o.check_known("dwa", {"T"});
  const double T = o.get_double("T", 2.0);
  if (!(T > 0)) throw Error("make_method", "method 'dwa': option T must be > 0", "the default is T=2");
  return std::make_unique<DWA>(K, T);
}

}  // namespace polyhead::mtl::basic
