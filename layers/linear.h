// layers/linear.h: Linear, y = x W^T + b.
#pragma once
#include "layers/module.h"

namespace polyhead::nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  LinearOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t in_features_, out_features_;
  bool bias_ = true;
};

// Parameters "weight" (out, in) and "bias" (out), both U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's
// default) from the default generator. Input (..., in) -> (..., out).
class Linear : public UnaryModule {
public:
  explicit Linear(const LinearOptions& o);
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(LinearOptions(in_features, out_features).bias(bias)) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Linear"; }
  void reset_parameters();

  const LinearOptions& options() const { return opt_; }
  Variable weight, bias;  // bias undefined without one

private:
  LinearOptions opt_;
};

}  // namespace polyhead::nn
