// layers/linear.cpp: see linear.h.
#include "layers/linear.h"

#include <cmath>

#include "layers/init.h"

namespace polyhead::nn {

Linear::Linear(const LinearOptions& o) : opt_(o) {
  PH_CHECK(o.in_features_ >= 0 && o.out_features_ >= 0, "Linear",
           "features must be non-negative, got in " << o.in_features_ << ", out " << o.out_features_);
  weight = register_parameter("weight", Tensor::empty({o.out_features_, o.in_features_}));
  if (o.bias_) bias = register_parameter("bias", Tensor::empty({o.out_features_}));
  reset_parameters();
}

void Linear::reset_parameters() {
  double bound = opt_.in_features_ > 0 ? 1.0 / std::sqrt(double(opt_.in_features_)) : 0.0;
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
}

Variable Linear::forward(const Variable& x) {
  PH_CHECK_HINT(x.dim() >= 1 && x.size(-1) == opt_.in_features_, "Linear",
                "input " << x.str() << " does not end in in_features = " << opt_.in_features_,
                "Linear(in, out) maps (..., in) to (..., out)");
  return ag::linear(x, weight, bias);
}

}  // namespace polyhead::nn
