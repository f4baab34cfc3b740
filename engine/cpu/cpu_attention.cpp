// engine/cpu/cpu_attention.cpp: fused causal self-attention on the CPU, forward and backward.
//
// The composed formula softmax(scale q k^T + mask) v would store the (BH, T, T) scores and
// probabilities; here each work item handles one block of query rows of one head with a scratch of
// kRows x T values, using single-threaded BLAS for the small products:
//   forward, per (head, row block [i0, i1)): S = scale Q_blk K[0, i1)^T; per row i the max and the
//     sum of exp over keys j <= i (summed in double) give lse_i; P = exp(S - lse) (0 for j > i);
//     O_blk = P V[0, i1).
//   backward (FlashAttention-2, probabilities recomputed from lse), per (cotangent block, head),
//     row blocks in increasing order: D_i = rowsum(dO_i * O_i), dV[0, i1) += P^T dO_blk,
//     dP = dO_blk V[0, i1)^T, dS = P * (dP - D), dQ_blk = scale dS K[0, i1), dK[0, i1) += scale dS^T Q_blk.
// Determinism: every output element is written by one work item in a fixed order; the work
// partitioning depends on the sizes only, so results are bit-identical with any thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/kernel_util.h"

namespace polyhead::cpu {

namespace {

constexpr int64_t kRows = 64;  // query rows per block

void check_sizes(int64_t BH, int64_t T, int64_t Dh, int64_t K, const char* op) {
  PH_CHECK(BH >= 0 && T >= 0 && K >= 0, op, "negative size: BH " << BH << ", T " << T << ", K " << K);
  PH_CHECK(Dh > 0, op, "head size Dh must be positive, got " << Dh);
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t BH, int64_t T,
                                   int64_t Dh, double scale, Tensor& out, Tensor& lse) {
  const char* op = "attention_forward";
  check_sizes(BH, T, Dh, 1, op);
  const DType dt = q.dtype();
  const int64_t n = BH * T * Dh;
  expect(q, dt, n, op, "q");
  expect(k, dt, n, op, "k");
  expect(v, dt, n, op, "v");
  expect(out, dt, n, op, "out");
  expect(lse, dt, BH * T, op, "lse");
  if (n == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using F = std::remove_pointer_t<decltype(tag)>;
    const F* qp = cptr<F>(q);
    const F* kp = cptr<F>(k);
    const F* vp = cptr<F>(v);
    F* op_ = mptr<F>(out);
    F* lp = mptr<F>(lse);
    const int64_t nblk = (T + kRows - 1) / kRows;
    parallel_for(BH * nblk, 1, [&](int64_t u0, int64_t u1) {
      std::vector<F> S(size_t(kRows * T));
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t h = u / nblk, i0 = (u % nblk) * kRows, i1 = std::min(T, i0 + kRows), rows = i1 - i0;
        const F* qh = qp + h * T * Dh;
        const F* kh = kp + h * T * Dh;
        const F* vh = vp + h * T * Dh;
        // S (rows x i1, leading dimension i1) = scale Q_blk K[0, i1)^T
        gemm_serial<F>(false, true, rows, i1, Dh, F(scale), qh + i0 * Dh, Dh, kh, Dh, F(0), S.data(), i1);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          F* s = S.data() + r * i1;
          F mx = -std::numeric_limits<F>::infinity();
          for (int64_t j = 0; j <= i; ++j) mx = s[j] > mx ? s[j] : mx;
          double sum = 0;
          for (int64_t j = 0; j <= i; ++j) sum += double(std::exp(s[j] - mx));
          const F l = mx + F(std::log(sum));
          lp[h * T + i] = l;
          for (int64_t j = 0; j <= i; ++j) s[j] = std::exp(s[j] - l);
          for (int64_t j = i + 1; j < i1; ++j) s[j] = F(0);
        }
        // O_blk = P V[0, i1)
        gemm_serial<F>(false, false, rows, Dh, i1, F(1), S.data(), i1, vh, Dh, F(0), op_ + (h * T + i0) * Dh, Dh);
      }
    });
  });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout, int64_t BH, int64_t T, int64_t Dh,
                                    int64_t K, double scale, Tensor& dq, Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  check_sizes(BH, T, Dh, K, op);
  const DType dt = q.dtype();
  const int64_t n = BH * T * Dh;
  expect(q, dt, n, op, "q");
  expect(k, dt, n, op, "k");
  expect(v, dt, n, op, "v");
  expect(out, dt, n, op, "out");
  expect(lse, dt, BH * T, op, "lse");
  expect(dout, dt, K * n, op, "dout");
  expect(dq, dt, K * n, op, "dq");
  expect(dk, dt, K * n, op, "dk");
  expect(dv, dt, K * n, op, "dv");
  if (K * n == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using F = std::remove_pointer_t<decltype(tag)>;
    const F* qp = cptr<F>(q);
    const F* kp = cptr<F>(k);
    const F* vp = cptr<F>(v);
    const F* op_ = cptr<F>(out);
    const F* lp = cptr<F>(lse);
    const F* gp = cptr<F>(dout);
    F* dqp = mptr<F>(dq);
    F* dkp = mptr<F>(dk);
    F* dvp = mptr<F>(dv);
    const F sc = F(scale);
    // One work item per (cotangent block, head): dK and dV sum over all row blocks of the head, in order.
    parallel_for(K * BH, 1, [&](int64_t u0, int64_t u1) {
      std::vector<F> P(size_t(kRows * T)), dP(size_t(kRows * T)), D(static_cast<size_t>(kRows));
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t h = u % BH;  // the saved head
        const F* qh = qp + h * T * Dh;
        const F* kh = kp + h * T * Dh;
        const F* vh = vp + h * T * Dh;
        const F* oh = op_ + h * T * Dh;
        const F* lh = lp + h * T;
        const F* gh = gp + u * T * Dh;
        F* dqh = dqp + u * T * Dh;
        F* dkh = dkp + u * T * Dh;
        F* dvh = dvp + u * T * Dh;
        std::fill(dkh, dkh + T * Dh, F(0));
        std::fill(dvh, dvh + T * Dh, F(0));
        for (int64_t i0 = 0; i0 < T; i0 += kRows) {
          const int64_t i1 = std::min(T, i0 + kRows), rows = i1 - i0;
          const F* qb = qh + i0 * Dh;
          const F* gb = gh + i0 * Dh;
          for (int64_t r = 0; r < rows; ++r) {
            double acc = 0;
            for (int64_t d = 0; d < Dh; ++d) acc += double(gb[r * Dh + d]) * double(oh[(i0 + r) * Dh + d]);
            D[size_t(r)] = F(acc);
          }
          // P = exp(scale Q_blk K^T - lse), 0 above the diagonal
          gemm_serial<F>(false, true, rows, i1, Dh, sc, qb, Dh, kh, Dh, F(0), P.data(), i1);
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = i0 + r;
            F* p = P.data() + r * i1;
            const F l = lh[i];
            for (int64_t j = 0; j <= i; ++j) p[j] = std::exp(p[j] - l);
            for (int64_t j = i + 1; j < i1; ++j) p[j] = F(0);
          }
          // dV[0, i1) += P^T dO_blk
          gemm_serial<F>(true, false, i1, Dh, rows, F(1), P.data(), i1, gb, Dh, F(1), dvh, Dh);
          // dP = dO_blk V[0, i1)^T; dS = P (dP - D), kept in dP
          gemm_serial<F>(false, true, rows, i1, Dh, F(1), gb, Dh, vh, Dh, F(0), dP.data(), i1);
          for (int64_t r = 0; r < rows; ++r) {
            const F* p = P.data() + r * i1;
            F* ds = dP.data() + r * i1;
            const F di = D[size_t(r)];
            for (int64_t j = 0; j < i1; ++j) ds[j] = p[j] * (ds[j] - di);
          }
          // dQ_blk = scale dS K[0, i1); dK[0, i1) += scale dS^T Q_blk
          gemm_serial<F>(false, false, rows, Dh, i1, sc, dP.data(), i1, kh, Dh, F(0), dqh + i0 * Dh, Dh);
          gemm_serial<F>(true, false, i1, Dh, rows, sc, dP.data(), i1, qb, Dh, F(1), dkh, Dh);
        }
      }
    });
  });
}

}  // namespace polyhead::cpu
