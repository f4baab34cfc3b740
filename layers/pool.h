// layers/pool.h: MaxPool2d and AvgPool2d over NCHW inputs (no parameters).
#pragma once
#include "layers/conv.h"
#include "layers/module.h"

namespace polyhead::nn {

struct Pool2dOptions {
  Pool2dOptions(Size2 kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  Pool2dOptions& stride(Size2 s) { stride_ = s; return *this; }
  Pool2dOptions& padding(Size2 p) { padding_ = p; return *this; }
  // Average pooling: whether zero padding counts in the divisor (PyTorch default true).
  Pool2dOptions& count_include_pad(bool c) { count_include_pad_ = c; return *this; }
  Size2 kernel_size_, stride_, padding_ = 0;
  bool count_include_pad_ = true;

  PoolParams params(const char* op) const {
    PH_CHECK(kernel_size_.h > 0 && kernel_size_.w > 0 && stride_.h > 0 && stride_.w > 0, op,
             "kernel " << kernel_size_.h << "x" << kernel_size_.w << " and stride " << stride_.h << "x" << stride_.w
                       << " must be positive");
    PH_CHECK_HINT(padding_.h >= 0 && padding_.w >= 0 && 2 * padding_.h <= kernel_size_.h && 2 * padding_.w <= kernel_size_.w, op,
                  "padding " << padding_.h << "x" << padding_.w << " must be in [0, kernel / 2]",
                  "PyTorch's pooling rule: pad at most half the window");
    PoolParams p;
    p.kh = kernel_size_.h;
    p.kw = kernel_size_.w;
    p.sh = stride_.h;
    p.sw = stride_.w;
    p.ph = padding_.h;
    p.pw = padding_.w;
    p.count_include_pad = count_include_pad_;
    return p;
  }
};

// Stride defaults to the kernel size; 0 as stride also means "the kernel size".
class MaxPool2d : public UnaryModule {
public:
  explicit MaxPool2d(const Pool2dOptions& o) : p_(o.params("MaxPool2d")) {}
  MaxPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0)
      : MaxPool2d(Pool2dOptions(kernel_size).stride(Size2(stride.h ? stride.h : kernel_size.h, stride.w ? stride.w : kernel_size.w)).padding(padding)) {}
  Variable forward(const Variable& x) override { return ag::max_pool2d(x, p_); }
  std::string type_name() const override { return "MaxPool2d"; }
  const PoolParams& params() const { return p_; }

private:
  PoolParams p_;
};

class AvgPool2d : public UnaryModule {
public:
  explicit AvgPool2d(const Pool2dOptions& o) : p_(o.params("AvgPool2d")) {}
  AvgPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0)
      : AvgPool2d(Pool2dOptions(kernel_size).stride(Size2(stride.h ? stride.h : kernel_size.h, stride.w ? stride.w : kernel_size.w)).padding(padding)) {}
  Variable forward(const Variable& x) override { return ag::avg_pool2d(x, p_); }
  std::string type_name() const override { return "AvgPool2d"; }
  const PoolParams& params() const { return p_; }

private:
  PoolParams p_;
};

}  // namespace polyhead::nn
