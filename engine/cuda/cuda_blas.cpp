// engine/cuda/cuda_blas.cpp: GEMM through cuBLAS (cublas{S,D}gemm_64 for one product,
// cublas{S,D}gemmStridedBatched_64 for a batch). One product goes through the plain GEMM entry, as
// PyTorch's mm does, so cuBLAS's heuristics for single products (e.g. split-K for the long-K
// weight gradients of linear layers) apply; the choice is a function of the sizes, so results stay
// reproducible.
//
// Row-major C (M x N) = alpha op(A) op(B) + beta C is the column-major product
// C^T (N x M) = alpha op(B)^T op(A)^T + beta C^T, so cuBLAS is called with the operands swapped:
// (opB, opA, N, M, K, B, ldb, A, lda, C, ldc). A batch stride of 0 shares an operand across the
// batch. f32 uses CUBLAS_DEFAULT_MATH (full f32 precision) unless TF32 is enabled
// (polyhead::cuda::set_tf32 / POLYHEAD_TF32=1), then CUBLAS_TF32_TENSOR_OP_MATH.
// Reproducibility: one stream per device, a fixed workspace and CUBLAS_ATOMICS_NOT_ALLOWED.
#include <cublas_v2.h>

#include <sstream>

#include "engine/cuda/cuda_common.h"

namespace polyhead::cuda {

namespace {

[[noreturn]] void throw_cublas(cublasStatus_t s, const char* call, int64_t M, int64_t N, int64_t K, int64_t batch) {
  std::ostringstream o;
  o << call << " failed: " << cublasGetStatusName(s) << " (" << cublasGetStatusString(s) << ") for M=" << M
    << " N=" << N << " K=" << K << " batch=" << batch;
  throw Error("gemm", o.str(), s == CUBLAS_STATUS_INVALID_VALUE ? "check the leading dimensions (ld >= columns)" : "");
}

}  // namespace

void CudaBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A, int64_t lda,
                       int64_t sA, const Tensor& B, int64_t ldb, int64_t sB, double beta, Tensor& C, int64_t ldc,
                       int64_t sC, int64_t batch) {
  const char* op = "gemm";
  DeviceContext& ctx = context_of(C, op);
  check_same_device(A, ctx, op, "A");
  check_same_device(B, ctx, op, "B");
  const DType dt = C.dtype();
  expect_float(dt, op);
  PH_CHECK(A.dtype() == dt && B.dtype() == dt, op, "dtype mismatch: " << A.str() << ", " << B.str() << " -> " << C.str());
  PH_CHECK(M >= 0 && N >= 0 && K >= 0 && batch >= 0, op, "negative size M=" << M << " N=" << N << " K=" << K << " batch=" << batch);
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {  // C = beta C
    launch_scale_matrix(ctx, dt, C.raw(), M, N, ldc, sC, batch, beta);
    return;
  }
  cublasHandle_t h = ctx.cublas;
  const cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  std::lock_guard<std::mutex> g(ctx.mu);  // the math mode is a property of the shared handle
  if (dt == DType::f32) {
    cublasStatus_t s = cublasSetMathMode(h, tf32_enabled() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) throw_cublas(s, "cublasSetMathMode", M, N, K, batch);
    const float a = float(alpha), b = float(beta);
    if (batch == 1) {
      s = cublasSgemm_64(h, opB, opA, N, M, K, &a, static_cast<const float*>(B.raw()), ldb,
                         static_cast<const float*>(A.raw()), lda, &b, static_cast<float*>(C.raw()), ldc);
      if (s != CUBLAS_STATUS_SUCCESS) throw_cublas(s, "cublasSgemm_64", M, N, K, batch);
      return;
    }
    s = cublasSgemmStridedBatched_64(h, opB, opA, N, M, K, &a, static_cast<const float*>(B.raw()), ldb, sB,
                                     static_cast<const float*>(A.raw()), lda, sA, &b, static_cast<float*>(C.raw()), ldc,
                                     sC, batch);
    if (s != CUBLAS_STATUS_SUCCESS) throw_cublas(s, "cublasSgemmStridedBatched_64", M, N, K, batch);
  } else {
    cublasStatus_t s = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) throw_cublas(s, "cublasSetMathMode", M, N, K, batch);
    const double a = alpha, b = beta;
    if (batch == 1) {
      s = cublasDgemm_64(h, opB, opA, N, M, K, &a, static_cast<const double*>(B.raw()), ldb,
                         static_cast<const double*>(A.raw()), lda, &b, static_cast<double*>(C.raw()), ldc);
      if (s != CUBLAS_STATUS_SUCCESS) throw_cublas(s, "cublasDgemm_64", M, N, K, batch);
      return;
    }
    s = cublasDgemmStridedBatched_64(h, opB, opA, N, M, K, &a, static_cast<const double*>(B.raw()), ldb, sB,
                                     static_cast<const double*>(A.raw()), lda, sA, &b, static_cast<double*>(C.raw()),
                                     ldc, sC, batch);
    if (s != CUBLAS_STATUS_SUCCESS) throw_cublas(s, "cublasDgemmStridedBatched_64", M, N, K, batch);
  }
}

}  // namespace polyhead::cuda
