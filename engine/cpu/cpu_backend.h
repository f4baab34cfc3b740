// engine/cpu/cpu_backend.h: the CPU backend, the reference implementation of every primitive.
// Threading is oneTBB only, with fixed partitioning (chunk boundaries depend on sizes, never on
// the thread count) so that results are bit-identical with any number of threads. BLAS runs
// single-threaded inside TBB tasks.
#pragma once
#include <functional>

#include "engine/backend.h"

namespace polyhead::cpu {

class CpuBackend final : public Backend {
public:
  CpuBackend();
  Device device() const override { return Device::cpu(); }
  const char* name() const override { return "cpu"; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* p, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;

  void copy(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, double value) override;
  void arange(Tensor& dst, double start, double step) override;
  void random_uniform(Tensor& dst, uint64_t seed, uint64_t offset, double lo, double hi) override;
  void random_normal(Tensor& dst, uint64_t seed, uint64_t offset, double mean, double std) override;

  void unary(UnaryOp op, const Tensor& x, Tensor& out, double p, double q) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;

  void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) override;
  void argmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out_i64) override;

  void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A, int64_t lda,
            int64_t strideA, const Tensor& B, int64_t ldb, int64_t strideB, double beta, Tensor& C, int64_t ldc,
            int64_t strideC, int64_t batch) override;

  void softmax(const Tensor& x, int64_t rows, int64_t cols, bool log, Tensor& y) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, int64_t rows, int64_t cols, int64_t K, bool log,
                        Tensor& gx) override;
  void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t rows, int64_t cols, double eps,
                  Tensor& y, Tensor& mean, Tensor& rstd) override;
  void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                           const Tensor& gy, int64_t rows, int64_t cols, int64_t K, Tensor& gx, Tensor& dgamma,
                           Tensor& dbeta) override;
  void batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                  bool training, double momentum, double eps, int64_t N, int64_t C, int64_t S, Tensor& y,
                  Tensor& mean, Tensor& invstd) override;
  void batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                           const Tensor& gy, int64_t N, int64_t C, int64_t S, int64_t K, bool training, Tensor& gx,
                           Tensor& dgamma, Tensor& dbeta) override;
  void cross_entropy(const Tensor& logits, const Tensor& target, int64_t N, int64_t C, int64_t ignore_index,
                     double label_smoothing, Tensor& loss, Tensor& lse) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse, const Tensor& gloss,
                              int64_t N, int64_t C, int64_t K, int64_t ignore_index, double label_smoothing,
                              Tensor& glogits) override;
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t BH, int64_t T, int64_t Dh,
                         double scale, Tensor& out, Tensor& lse) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                          const Tensor& dout, int64_t BH, int64_t T, int64_t Dh, int64_t K, double scale, Tensor& dq,
                          Tensor& dk, Tensor& dv) override;
  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p, Tensor& y) override;
  void conv2d_backward_data(const Tensor& gy, const Tensor& w, const ConvParams& p, Tensor& gx) override;
  void conv2d_backward_filter(const Tensor& x, const Tensor& gy, const ConvParams& p, Tensor& gw) override;
  void max_pool2d(const Tensor& x, const PoolParams& p, Tensor& y, Tensor& idx) override;
  void max_pool2d_backward(const Tensor& gy, const Tensor& idx, int64_t K, Tensor& gx) override;
  void avg_pool2d(const Tensor& x, const PoolParams& p, Tensor& y) override;
  void avg_pool2d_backward(const Tensor& gy, const PoolParams& p, Tensor& gx) override;
  void embedding(const Tensor& weight, const Tensor& idx, Tensor& out) override;
  void embedding_backward(const Tensor& gy, const Tensor& idx, int64_t K, int64_t V, int64_t D, Tensor& gw) override;
  void dropout_mask(Tensor& mask, double p, uint64_t seed, uint64_t offset) override;

  void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                  double dampening, double weight_decay, bool nesterov, bool first_step) override;
  void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                   double eps, double weight_decay, int64_t step, bool decoupled) override;
};

// Fixed-grain parallel loop over [0, n): chunk boundaries depend only on n and grain.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// Single-threaded GEMM on raw pointers (row-major), used inside parallel kernels.
template <class T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace polyhead::cpu
