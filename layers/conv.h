// layers/conv.h: Conv2d over NCHW inputs.
#pragma once
#include "layers/module.h"

namespace polyhead::nn {

// A (height, width) pair; one int means both.
struct Size2 {
  Size2(int v) : h(v), w(v) {}  // NOLINT: implicit on purpose (Conv2d(3, 8, 3))
  Size2(int h_, int w_) : h(h_), w(w_) {}
  int h, w;
};

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Size2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  Conv2dOptions& stride(Size2 s) { stride_ = s; return *this; }
  Conv2dOptions& padding(Size2 p) { padding_ = p; return *this; }
  Conv2dOptions& dilation(Size2 d) { dilation_ = d; return *this; }
  Conv2dOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t in_channels_, out_channels_;
  Size2 kernel_size_, stride_ = 1, padding_ = 0, dilation_ = 1;
  bool bias_ = true;
};

// Parameters "weight" (OC, C, kh, kw) and "bias" (OC), both U(-b, b) with b = 1/sqrt(C*kh*kw)
// (PyTorch's default). Input (N, C, H, W) -> (N, OC, OH, OW).
class Conv2d : public UnaryModule {
public:
  explicit Conv2d(const Conv2dOptions& o);
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
         Size2 dilation = 1, bool bias = true)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size).stride(stride).padding(padding).dilation(dilation).bias(bias)) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Conv2d"; }
  void reset_parameters();

  const Conv2dOptions& options() const { return opt_; }
  ConvParams params() const;
  Variable weight, bias;

private:
  Conv2dOptions opt_;
};

}  // namespace polyhead::nn
