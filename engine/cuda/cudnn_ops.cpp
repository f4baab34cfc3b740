// engine/cuda/cudnn_ops.cpp: conv2d forward, backward data and backward filter through cuDNN
// (the legacy convolution API, present in cuDNN 8 and 9), NCHW, f32 and f64.
//
// Algorithms: cuDNN's heuristics (cudnnGet*Algorithm_v7, no timing, so the choice depends only on
// the configuration and the device) filtered to CUDNN_DETERMINISTIC ones: e.g. backward data
// ALGO_1 rather than ALGO_0, backward filter ALGO_1 rather than ALGO_0/ALGO_3, which accumulate
// with atomics. The first candidate whose workspace query and execution succeed is cached per
// configuration. Math: CUDNN_FMA_MATH (no TF32) unless TF32 is enabled for f32.
// When cuDNN has no deterministic algorithm for a configuration (or rejects its sizes), direct
// kernels (cuda_pool.cu) compute the result, one output element per thread in a fixed order.
// The bias is added by a separate elementwise kernel.
#include <cudnn.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <vector>

#include "engine/cuda/cuda_common.h"

namespace polyhead::cuda {

namespace {

[[noreturn]] void throw_cudnn(cudnnStatus_t s, const char* call, const char* op) {
  std::ostringstream o;
  o << call << " failed: " << cudnnGetErrorString(s);
  throw Error(op, o.str());
}
#define PH_CUDNN(call, op)                                             \
  do {                                                                 \
    cudnnStatus_t ph_s_ = (call);                                      \
    if (ph_s_ != CUDNN_STATUS_SUCCESS) throw_cudnn(ph_s_, #call, op);  \
  } while (0)

void expect4(const Tensor& t, const DeviceContext& ctx, DType dt, const char* op, const char* name) {
  check_same_device(t, ctx, op, name);
  PH_CHECK(t.dim() == 4, op, name << " must be 4-D (N, C, H, W), got " << t.str());
  PH_CHECK(t.dtype() == dt, op, name << " must be " << dtype_name(dt) << ", got " << t.str());
  PH_CHECK(t.is_contiguous(), op, name << " must be contiguous, got " << t.str());
}

void check_conv_params(const ConvParams& p, const char* op) {
  PH_CHECK(p.kh > 0 && p.kw > 0 && p.sh > 0 && p.sw > 0 && p.dh > 0 && p.dw > 0 && p.ph >= 0 && p.pw >= 0, op,
           "invalid parameters: kernel " << p.kh << "x" << p.kw << ", stride " << p.sh << "x" << p.sw << ", padding "
                                         << p.ph << "x" << p.pw << ", dilation " << p.dh << "x" << p.dw);
}

enum class Kind { Fwd, BwdData, BwdFilter };

struct Key {
  int kind, dtype, tf32, device;
  int64_t N, C, H, W, OC;
  int kh, kw, sh, sw, ph, pw, dh, dw;
  auto tie() const { return std::tie(kind, dtype, tf32, device, N, C, H, W, OC, kh, kw, sh, sw, ph, pw, dh, dw); }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

// -1: use the direct kernels
std::mutex g_algo_mu;
std::map<Key, int>& algo_cache() {
  static auto* m = new std::map<Key, int>();
  return *m;
}

constexpr size_t kMaxWorkspace = size_t(2) << 30;

// Descriptors of one convolution, destroyed on scope exit.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool ok = false;  // sizes representable and accepted by cuDNN
  Descs(DType dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW, const ConvParams& p,
        cudnnMathType_t math, const char* op) {
    PH_CUDNN(cudnnCreateTensorDescriptor(&x), op);
    PH_CUDNN(cudnnCreateTensorDescriptor(&y), op);
    PH_CUDNN(cudnnCreateFilterDescriptor(&w), op);
    PH_CUDNN(cudnnCreateConvolutionDescriptor(&conv), op);
    for (int64_t v : {N, C, H, W, OC, OH, OW, N * C * H * W, N * OC * OH * OW, OC * C * int64_t(p.kh) * p.kw})
      if (v <= 0 || v > INT_MAX) return;
    const cudnnDataType_t t = dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    if (cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, t, int(N), int(C), int(H), int(W)) != CUDNN_STATUS_SUCCESS) return;
    if (cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, t, int(N), int(OC), int(OH), int(OW)) != CUDNN_STATUS_SUCCESS) return;
    if (cudnnSetFilter4dDescriptor(w, t, CUDNN_TENSOR_NCHW, int(OC), int(C), p.kh, p.kw) != CUDNN_STATUS_SUCCESS) return;
    if (cudnnSetConvolution2dDescriptor(conv, p.ph, p.pw, p.sh, p.sw, p.dh, p.dw, CUDNN_CROSS_CORRELATION, t) !=
        CUDNN_STATUS_SUCCESS)
      return;
    if (cudnnSetConvolutionMathType(conv, math) != CUDNN_STATUS_SUCCESS) return;
    int n = 0, c = 0, h = 0, wd = 0;
    if (cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd) != CUDNN_STATUS_SUCCESS) return;
    ok = n == N && c == OC && h == OH && wd == OW;
  }
  ~Descs() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

bool math_allowed(cudnnMathType_t m, bool tf32) {
  return tf32 || m == CUDNN_DEFAULT_MATH || m == CUDNN_FMA_MATH;
}

// Deterministic candidates from the heuristics, in the heuristics' order.
std::vector<int> candidates(Kind kind, cudnnHandle_t h, const Descs& d, bool tf32) {
  std::vector<int> out;
  int returned = 0;
  if (kind == Kind::Fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    if (cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                               perf) != CUDNN_STATUS_SUCCESS)
      return out;
    for (int i = 0; i < returned; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
          math_allowed(perf[i].mathType, tf32))
        out.push_back(int(perf[i].algo));
  } else if (kind == Kind::BwdData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    if (cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                    &returned, perf) != CUDNN_STATUS_SUCCESS)
      return out;
    for (int i = 0; i < returned; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
          math_allowed(perf[i].mathType, tf32))
        out.push_back(int(perf[i].algo));
    if (out.empty()) out.push_back(int(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1));
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                      &returned, perf) != CUDNN_STATUS_SUCCESS)
      return out;
    for (int i = 0; i < returned; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
          math_allowed(perf[i].mathType, tf32))
        out.push_back(int(perf[i].algo));
    if (out.empty()) out.push_back(int(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1));
  }
  return out;
}

bool workspace_size(Kind kind, cudnnHandle_t h, const Descs& d, int algo, size_t& bytes) {
  cudnnStatus_t s;
  if (kind == Kind::Fwd)
    s = cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, cudnnConvolutionFwdAlgo_t(algo), &bytes);
  else if (kind == Kind::BwdData)
    s = cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, cudnnConvolutionBwdDataAlgo_t(algo), &bytes);
  else
    s = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, cudnnConvolutionBwdFilterAlgo_t(algo),
                                                       &bytes);
  return s == CUDNN_STATUS_SUCCESS && bytes <= kMaxWorkspace;
}

// in0/in1/out per kind: Fwd (x, w -> y), BwdData (w, gy -> gx), BwdFilter (x, gy -> gw)
cudnnStatus_t execute(Kind kind, cudnnHandle_t h, const Descs& d, int algo, DType dt, const void* in0, const void* in1,
                      void* out, void* ws, size_t ws_bytes) {
  const float a32 = 1.f, b32 = 0.f;
  const double a64 = 1.0, b64 = 0.0;
  const void* alpha = dt == DType::f64 ? static_cast<const void*>(&a64) : static_cast<const void*>(&a32);
  const void* beta = dt == DType::f64 ? static_cast<const void*>(&b64) : static_cast<const void*>(&b32);
  switch (kind) {
    case Kind::Fwd:
      return cudnnConvolutionForward(h, alpha, d.x, in0, d.w, in1, d.conv, cudnnConvolutionFwdAlgo_t(algo), ws, ws_bytes,
                                     beta, d.y, out);
    case Kind::BwdData:
      return cudnnConvolutionBackwardData(h, alpha, d.w, in0, d.y, in1, d.conv, cudnnConvolutionBwdDataAlgo_t(algo), ws,
                                          ws_bytes, beta, d.x, out);
    case Kind::BwdFilter:
      return cudnnConvolutionBackwardFilter(h, alpha, d.x, in0, d.y, in1, d.conv, cudnnConvolutionBwdFilterAlgo_t(algo),
                                            ws, ws_bytes, beta, d.w, out);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

// Runs one convolution through cuDNN; returns false when no deterministic algorithm applies (the
// caller then uses the direct kernels).
bool run_cudnn(Kind kind, DeviceContext& ctx, DType dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC,
               int64_t OH, int64_t OW, const ConvParams& p, const void* in0, const void* in1, void* out, const char* op) {
  // POLYHEAD_CUDNN_DISABLE=1 forces the direct kernels (tests compare both paths)
  if (const char* env = std::getenv("POLYHEAD_CUDNN_DISABLE"); env && env[0] == '1') return false;
  const bool tf32 = dt == DType::f32 && tf32_enabled();
  const Key key{int(kind), int(dt), int(tf32), ctx.index, N, C, H, W, OC, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw};
  int cached = -2;
  {
    std::lock_guard<std::mutex> g(g_algo_mu);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) cached = it->second;
  }
  if (cached == -1) return false;
  const cudnnMathType_t math = tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  Descs d(dt, N, C, H, W, OC, OH, OW, p, math, op);
  auto remember = [&](int algo) {
    std::lock_guard<std::mutex> g(g_algo_mu);
    algo_cache()[key] = algo;
  };
  if (!d.ok) {
    remember(-1);
    return false;
  }
  cudnnHandle_t h = cudnn_handle(ctx);
  std::vector<int> algos = cached >= 0 ? std::vector<int>{cached} : candidates(kind, h, d, tf32);
  for (int algo : algos) {
    size_t bytes = 0;
    if (!workspace_size(kind, h, d, algo, bytes)) continue;
    Scratch ws(ctx.index, bytes);
    const cudnnStatus_t s = execute(kind, h, d, algo, dt, in0, in1, out, ws.get(), bytes);
    if (s == CUDNN_STATUS_SUCCESS) {
      if (cached < 0) remember(algo);
      return true;
    }
    // "not supported" and "bad parameter" (with cuDNN 9's sub-codes) mean: try the next algorithm
    const int category = int(s) / 1000 * 1000;
    if (category != int(CUDNN_STATUS_NOT_SUPPORTED) && category != int(CUDNN_STATUS_BAD_PARAM)) {
      std::ostringstream o;
      o << "cudnnConvolution" << (kind == Kind::Fwd ? "Forward" : kind == Kind::BwdData ? "BackwardData" : "BackwardFilter")
        << " (algorithm " << algo << ") failed: " << cudnnGetErrorString(s);
      throw Error(op, o.str());
    }
  }
  remember(-1);
  return false;
}

}  // namespace

void CudaBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p, Tensor& y) {
  const char* op = "conv2d";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  expect_float(dt, op);
  check_conv_params(p, op);
  expect4(x, ctx, dt, op, "x");
  expect4(w, ctx, dt, op, "weight");
  expect4(y, ctx, dt, op, "y");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), OC = w.size(0);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(w.shape() == Shape({OC, C, p.kh, p.kw}), op,
           "weight " << w.str() << " does not match input " << x.str() << " and kernel " << p.kh << "x" << p.kw);
  PH_CHECK(OH > 0 && OW > 0, op, "input " << x.str() << " is smaller than the (dilated) kernel");
  PH_CHECK(y.shape() == Shape({N, OC, OH, OW}), op, "output " << y.str() << " should be " << shape_str({N, OC, OH, OW}));
  if (bias.defined()) {
    check_same_device(bias, ctx, op, "bias");
    PH_CHECK(bias.dtype() == dt && bias.is_contiguous() && bias.numel() == OC, op,
             "bias " << bias.str() << " should be (" << OC << ")");
  }
  if (N == 0 || OC == 0) return;
  if (C == 0) {
    launch_fill(ctx, dt, y.raw(), y.numel(), 0.0);
  } else if (!run_cudnn(Kind::Fwd, ctx, dt, N, C, H, W, OC, OH, OW, p, x.raw(), w.raw(), y.raw(), op)) {
    launch_conv2d_direct(ctx, dt, x.raw(), w.raw(), y.raw(), N, C, H, W, OC, OH, OW, p);
  }
  if (bias.defined()) launch_add_bias(ctx, dt, y.raw(), bias.raw(), N, OC, OH * OW);
}

void CudaBackend::conv2d_backward_data(const Tensor& gy, const Tensor& w, const ConvParams& p, Tensor& gx) {
  const char* op = "conv2d_backward_data";
  DeviceContext& ctx = context_of(gy, op);
  const DType dt = gy.dtype();
  expect_float(dt, op);
  check_conv_params(p, op);
  expect4(gy, ctx, dt, op, "gy");
  expect4(w, ctx, dt, op, "weight");
  expect4(gx, ctx, dt, op, "gx");
  const int64_t N = gx.size(0), C = gx.size(1), H = gx.size(2), W = gx.size(3), OC = w.size(0);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(w.shape() == Shape({OC, C, p.kh, p.kw}), op,
           "weight " << w.str() << " does not match gx " << gx.str() << " and kernel " << p.kh << "x" << p.kw);
  PH_CHECK(gy.shape() == Shape({N, OC, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({N, OC, OH, OW}));
  if (gx.numel() == 0) return;
  if (OC == 0 || OH <= 0 || OW <= 0) {
    launch_fill(ctx, dt, gx.raw(), gx.numel(), 0.0);
    return;
  }
  if (!run_cudnn(Kind::BwdData, ctx, dt, N, C, H, W, OC, OH, OW, p, w.raw(), gy.raw(), gx.raw(), op))
    launch_conv2d_bwd_data_direct(ctx, dt, gy.raw(), w.raw(), gx.raw(), N, C, H, W, OC, OH, OW, p);
}

void CudaBackend::conv2d_backward_filter(const Tensor& x, const Tensor& gy, const ConvParams& p, Tensor& gw) {
  const char* op = "conv2d_backward_filter";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  expect_float(dt, op);
  check_conv_params(p, op);
  expect4(x, ctx, dt, op, "x");
  expect4(gy, ctx, dt, op, "gy");
  expect4(gw, ctx, dt, op, "gw");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), OC = gw.size(0);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(gw.shape() == Shape({OC, C, p.kh, p.kw}), op,
           "gw " << gw.str() << " does not match input " << x.str() << " and kernel " << p.kh << "x" << p.kw);
  PH_CHECK(gy.shape() == Shape({N, OC, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({N, OC, OH, OW}));
  if (gw.numel() == 0) return;
  if (N == 0 || OH <= 0 || OW <= 0) {
    launch_fill(ctx, dt, gw.raw(), gw.numel(), 0.0);
    return;
  }
  if (!run_cudnn(Kind::BwdFilter, ctx, dt, N, C, H, W, OC, OH, OW, p, x.raw(), gy.raw(), gw.raw(), op))
    launch_conv2d_bwd_filter_direct(ctx, dt, x.raw(), gy.raw(), gw.raw(), N, C, H, W, OC, OH, OW, p);
}

}  // namespace polyhead::cuda
