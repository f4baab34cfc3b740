// engine/backend.h: the Backend interface, the few dozen primitives a device implements.
//
// Composite ops (engine/ops.h) and autograd rules are written once above this interface. The CPU
// backend (engine/cpu/) is the reference; the CUDA backend (engine/cuda/) is checked against it.
// Conventions:
//   - Outputs are preallocated by the caller, contiguous, on the backend's device.
//   - Inputs of elementwise primitives may be any strided view already expanded to the output
//     shape (stride 0 = broadcast). Other primitives take contiguous inputs unless noted.
//   - Floating primitives support f32 and f64; index tensors are i64.
//   - "K" arguments are the leading batch of cotangent rows of a batched backward: gradient
//     inputs carry K copies of the shape the saved forward tensors have.
//   - Deterministic: no float atomics; fixed partitioning of work regardless of thread count.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/tensor.h"

namespace polyhead {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Relu, Gelu, Tanh, Sigmoid, Silu, Square, Recip, Sin, Cos,
  PowScalar,  // x^p
  Clamp,      // clamp(x, p, q)
  Affine,     // p*x + q
  GtScalar,   // x > p ? 1 : 0
};
enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Max, Min, Pow, Eq, Ne, Lt, Le, Gt, Ge,
  // backward helpers: a = saved forward tensor, b = incoming gradient
  ReluBwd,     // b * (a > 0), a = x
  GeluBwd,     // b * gelu'(a), a = x (tanh approximation-free, erf form)
  TanhBwd,     // b * (1 - a^2), a = y
  SigmoidBwd,  // b * a (1 - a), a = y
  SiluBwd,     // b * silu'(a), a = x
};
enum class ReduceOp : uint8_t { Sum, Mean, Max, Min };

struct ConvParams {
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t out_h(int64_t h) const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  int64_t out_w(int64_t w) const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
};

struct PoolParams {
  int kh = 2, kw = 2, sh = 2, sw = 2, ph = 0, pw = 0;
  bool count_include_pad = true;  // avg pooling
  int64_t out_h(int64_t h) const { return (h + 2 * ph - kh) / sh + 1; }
  int64_t out_w(int64_t w) const { return (w + 2 * pw - kw) / sw + 1; }
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // ---- memory ----
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void synchronize() {}
  // Page-locked host memory for staging host-to-device copies. Backends without it return nullptr.
  virtual void* host_alloc_pinned(size_t /*nbytes*/) { return nullptr; }
  virtual void host_free_pinned(void* /*p*/) {}
  // A copy from page-locked host memory that need not complete before returning; `keep` owns the
  // source and is released once the copy is done. Default: the synchronous copy.
  virtual void copy_from_pinned_host(void* dst, const void* src, size_t nbytes, std::shared_ptr<void> keep) {
    copy_from_host(dst, src, nbytes);
  }

  // ---- data movement and filling ----
  // dst[i] = cast(src[i]); same shape; any strides; dtypes may differ.
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  virtual void fill(Tensor& dst, double value) = 0;  // dst contiguous
  virtual void arange(Tensor& dst, double start, double step) = 0;
  // Philox stream (seed, offset): element i uses counter offset + i. Same values on every backend.
  virtual void random_uniform(Tensor& dst, uint64_t seed, uint64_t offset, double lo, double hi) = 0;
  virtual void random_normal(Tensor& dst, uint64_t seed, uint64_t offset, double mean, double std) = 0;

  // ---- elementwise (out contiguous, inputs expanded to out's shape) ----
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& out, double p = 0, double q = 0) = 0;
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) = 0;

  // ---- reductions: x contiguous, viewed as (outer, n, inner); out (outer, inner) ----
  virtual void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) = 0;
  virtual void argmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out_i64) = 0;

  // ---- GEMM, row-major: for b in [0, batch): C_b = alpha op(A_b) op(B_b) + beta C_b ----
  // op(A_b) is M x K, op(B_b) is K x N. Batch strides in elements; 0 means shared by all b.
  virtual void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                    const Tensor& A, int64_t lda, int64_t strideA, const Tensor& B, int64_t ldb, int64_t strideB,
                    double beta, Tensor& C, int64_t ldc, int64_t strideC, int64_t batch) = 0;

  // ---- neural-network primitives (contiguous inputs) ----
  // softmax / log-softmax over the last dim of x (rows x cols).
  virtual void softmax(const Tensor& x, int64_t rows, int64_t cols, bool log, Tensor& y) = 0;
  // gy, gx: (K*rows, cols); y saved (rows, cols) shared by the K rows-blocks.
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, int64_t rows, int64_t cols, int64_t K, bool log,
                                Tensor& gx) = 0;
  // y = (x - mean) * rstd * gamma + beta over the last dim. mean, rstd: (rows). gamma/beta may be undefined.
  virtual void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t rows, int64_t cols,
                          double eps, Tensor& y, Tensor& mean, Tensor& rstd) = 0;
  // gy, gx: (K*rows, cols); dgamma, dbeta: (K, cols) (undefined to skip).
  virtual void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& gy, int64_t rows, int64_t cols, int64_t K, Tensor& gx,
                                   Tensor& dgamma, Tensor& dbeta) = 0;
  // Batch norm over x viewed as (N, C, S). Training: batch statistics into mean/invstd (C) and the
  // running buffers updated with momentum (unbiased variance); eval: running statistics.
  virtual void batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                          Tensor& running_var, bool training, double momentum, double eps, int64_t N, int64_t C,
                          int64_t S, Tensor& y, Tensor& mean, Tensor& invstd) = 0;
  // Training-mode backward. gy, gx: (K*N, C, S); dgamma, dbeta: (K, C).
  virtual void batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                   const Tensor& gy, int64_t N, int64_t C, int64_t S, int64_t K, bool training,
                                   Tensor& gx, Tensor& dgamma, Tensor& dbeta) = 0;
  // Cross-entropy per row of logits (N, C) with class targets (N, i64). loss (N): 0 for ignored
  // rows. lse (N): saved log-sum-exp. label_smoothing in [0, 1).
  virtual void cross_entropy(const Tensor& logits, const Tensor& target, int64_t N, int64_t C, int64_t ignore_index,
                             double label_smoothing, Tensor& loss, Tensor& lse) = 0;
  // glogits (K, N, C) = d loss_n / d logits * gloss (K, N).
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                      const Tensor& gloss, int64_t N, int64_t C, int64_t K, int64_t ignore_index,
                                      double label_smoothing, Tensor& glogits) = 0;
  // Fused causal self-attention over BH independent heads (FlashAttention-style: the T x T scores
  // are never stored for all heads at once). q, k, v, out: (BH, T, Dh); lse (BH, T) saved for the
  // backward: lse_i = log sum_{j<=i} exp(scale q_i.k_j), out_i = sum_{j<=i} exp(scale q_i.k_j - lse_i) v_j.
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t BH, int64_t T,
                                 int64_t Dh, double scale, Tensor& out, Tensor& lse) = 0;
  // dout, dq, dk, dv: (K*BH, T, Dh); block kb uses the saved q, k, v, out, lse of head kb % BH. The
  // probabilities are recomputed from lse; D_i = rowsum(dout_i * out_i) (FlashAttention-2).
  virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const Tensor& dout, int64_t BH, int64_t T, int64_t Dh,
                                  int64_t K, double scale, Tensor& dq, Tensor& dk, Tensor& dv) = 0;
  // Convolution, NCHW. x (N, C, H, W), w (OC, C, kh, kw), bias (OC) or undefined; y (N, OC, OH, OW).
  virtual void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p, Tensor& y) = 0;
  // gx (N, C, H, W) = conv-transpose of gy (N, OC, OH, OW).
  virtual void conv2d_backward_data(const Tensor& gy, const Tensor& w, const ConvParams& p, Tensor& gx) = 0;
  // gw (OC, C, kh, kw) = sum over N of gy (*) x. Callers fold K into OC (gy (N, K*OC, ...)).
  virtual void conv2d_backward_filter(const Tensor& x, const Tensor& gy, const ConvParams& p, Tensor& gw) = 0;
  // Pooling, NCHW. idx (N, C, OH, OW) i64: flat h*W+w index of the max within its (n, c) plane.
  virtual void max_pool2d(const Tensor& x, const PoolParams& p, Tensor& y, Tensor& idx) = 0;
  // gy (K*N, C, OH, OW), gx (K*N, C, H, W) zero-initialised by the callee.
  virtual void max_pool2d_backward(const Tensor& gy, const Tensor& idx, int64_t K, Tensor& gx) = 0;
  virtual void avg_pool2d(const Tensor& x, const PoolParams& p, Tensor& y) = 0;
  virtual void avg_pool2d_backward(const Tensor& gy, const PoolParams& p, Tensor& gx) = 0;  // gy (M, C, OH, OW)
  // out (n, D) = weight (V, D) rows at idx (n). Throws on an index outside [0, V).
  virtual void embedding(const Tensor& weight, const Tensor& idx, Tensor& out) = 0;
  // gw (K, V, D) = sum of gy (K, n, D) rows into rows idx; deterministic order. gw zeroed by callee.
  virtual void embedding_backward(const Tensor& gy, const Tensor& idx, int64_t K, int64_t V, int64_t D,
                                  Tensor& gw) = 0;
  // mask[i] = (u_i >= p) / (1 - p) from the Philox stream (seed, offset).
  virtual void dropout_mask(Tensor& mask, double p, uint64_t seed, uint64_t offset) = 0;

  // ---- optimizer updates over flat buffers (n elements) ----
  virtual void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                          double dampening, double weight_decay, bool nesterov, bool first_step) = 0;
  // decoupled = true: AdamW (param *= 1 - lr*wd); false: Adam (grad += wd*param).
  virtual void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                           double beta2, double eps, double weight_decay, int64_t step, bool decoupled) = 0;
};

// The backend for a device. The CPU backend always exists; CUDA is registered at start-up by the
// CUDA target when a device is present.
Backend& backend_for(Device d);
bool backend_available(Device d);  // the CPU always; another device when its backend is registered
void register_backend(Device::Type t, Backend* b);
bool backend_available(Device::Type t);

}  // namespace polyhead
