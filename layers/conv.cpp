// layers/conv.cpp: see conv.h.
#include "layers/conv.h"

#include <cmath>

#include "layers/init.h"

namespace polyhead::nn {

Conv2d::Conv2d(const Conv2dOptions& o) : opt_(o) {
  const char* op = "Conv2d";
  PH_CHECK(o.in_channels_ > 0 && o.out_channels_ > 0, op,
           "channels must be positive, got in " << o.in_channels_ << ", out " << o.out_channels_);
  PH_CHECK(o.kernel_size_.h > 0 && o.kernel_size_.w > 0, op,
           "kernel size " << o.kernel_size_.h << "x" << o.kernel_size_.w << " must be positive");
  PH_CHECK(o.stride_.h > 0 && o.stride_.w > 0, op, "stride " << o.stride_.h << "x" << o.stride_.w << " must be positive");
  PH_CHECK(o.dilation_.h > 0 && o.dilation_.w > 0, op,
           "dilation " << o.dilation_.h << "x" << o.dilation_.w << " must be positive");
  PH_CHECK(o.padding_.h >= 0 && o.padding_.w >= 0, op,
           "padding " << o.padding_.h << "x" << o.padding_.w << " must be non-negative");
  weight = register_parameter("weight", Tensor::empty({o.out_channels_, o.in_channels_, o.kernel_size_.h, o.kernel_size_.w}));
  if (o.bias_) bias = register_parameter("bias", Tensor::empty({o.out_channels_}));
  reset_parameters();
}

void Conv2d::reset_parameters() {
  double fan_in = double(opt_.in_channels_) * opt_.kernel_size_.h * opt_.kernel_size_.w;
  double bound = 1.0 / std::sqrt(fan_in);
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
}

ConvParams Conv2d::params() const {
  ConvParams p;
  p.kh = opt_.kernel_size_.h;
  p.kw = opt_.kernel_size_.w;
  p.sh = opt_.stride_.h;
  p.sw = opt_.stride_.w;
  p.ph = opt_.padding_.h;
  p.pw = opt_.padding_.w;
  p.dh = opt_.dilation_.h;
  p.dw = opt_.dilation_.w;
  return p;
}

Variable Conv2d::forward(const Variable& x) {
  PH_CHECK_HINT(x.dim() == 4 && x.size(1) == opt_.in_channels_, "Conv2d",
                "input " << x.str() << " is not (N, " << opt_.in_channels_ << ", H, W)",
                "Conv2d takes NCHW input with in_channels channels");
  return ag::conv2d(x, weight, bias, params());
}

}  // namespace polyhead::nn
