// engine/cpu/cpu_misc.cpp: embedding lookup and its gradient, dropout masks, and the SGD and Adam
// parameter updates on the CPU. The embedding gradient is a scatter-add made deterministic by
// partitioning over destination rows: each row sums its source rows in increasing position order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/kernel_util.h"
#include "engine/rng.h"

namespace polyhead::cpu {

namespace {

// Every index in [0, V); the first bad one is reported.
void check_indices(const Tensor& idx, int64_t V, const char* op) {
  const int64_t* ip = static_cast<const int64_t*>(idx.raw());
  for (int64_t i = 0; i < idx.numel(); ++i)
    PH_CHECK_HINT(ip[i] >= 0 && ip[i] < V, op,
                  "index " << ip[i] << " at position " << i << " is out of range for an embedding of " << V << " rows",
                  "indices must lie in [0, num_embeddings); check the vocabulary size");
}

const int64_t kElemGrain = 1 << 15;  // elements per chunk of flat elementwise loops

}  // namespace

// ---------------------------------------------------------------------------------------------
// embedding: weight (V, D), idx (n) i64 (any shape, n elements) -> out (n, D) = weight[idx]
void CpuBackend::embedding(const Tensor& weight, const Tensor& idx, Tensor& out) {
  const char* op = "embedding";
  const DType dt = weight.dtype();
  PH_CHECK(weight.defined() && weight.dim() == 2, op, "weight must be 2-D (V, D), got " << weight.str());
  const int64_t V = weight.size(0), D = weight.size(1), n = idx.defined() ? idx.numel() : 0;
  expect(weight, dt, V * D, op, "weight");
  expect(idx, DType::i64, n, op, "indices");
  expect(out, dt, n * D, op, "out");
  check_indices(idx, V, op);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = static_cast<const T*>(weight.raw());
    const int64_t* ip = static_cast<const int64_t*>(idx.raw());
    T* op_ = static_cast<T*>(out.raw());
    parallel_for(n, std::max<int64_t>(1, kElemGrain / std::max<int64_t>(D, 1)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) std::copy(wp + ip[i] * D, wp + (ip[i] + 1) * D, op_ + i * D);
    });
  });
}

// embedding_backward: gy (K, n, D), idx (n) -> gw (K, V, D), zeroed here.
//   gw[k, v] = sum over positions i with idx[i] == v, in increasing i, of gy[k, i]
// A counting sort groups the positions by row; work items are (k, row) pairs.
void CpuBackend::embedding_backward(const Tensor& gy, const Tensor& idx, int64_t K, int64_t V, int64_t D, Tensor& gw) {
  const char* op = "embedding_backward";
  const DType dt = gy.dtype();
  const int64_t n = idx.defined() ? idx.numel() : 0;
  expect(idx, DType::i64, n, op, "indices");
  expect(gy, dt, K * n * D, op, "gy");
  expect(gw, dt, K * V * D, op, "gw");
  check_indices(idx, V, op);
  const int64_t* ip = static_cast<const int64_t*>(idx.raw());
  // start[v] .. start[v+1]: the positions of row v in `order`, increasing
  std::vector<int64_t> start(static_cast<size_t>(V + 1), 0), order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ++start[size_t(ip[i] + 1)];
  for (int64_t v = 0; v < V; ++v) start[size_t(v + 1)] += start[size_t(v)];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[size_t(fill[size_t(ip[i])]++)] = i;
  }
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gyp = static_cast<const T*>(gy.raw());
    T* gwp = static_cast<T*>(gw.raw());
    const int64_t grain = std::max<int64_t>(1, kElemGrain / std::max<int64_t>(D * (1 + n / std::max<int64_t>(V, 1)), 1));
    parallel_for(K * V, grain, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t k = u / V, v = u % V;
        T* dst = gwp + u * D;
        std::fill(dst, dst + D, T(0));
        for (int64_t j = start[size_t(v)]; j < start[size_t(v + 1)]; ++j) {
          const T* src = gyp + (k * n + order[size_t(j)]) * D;
          for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
        }
      }
    });
  });
}

// dropout_mask: mask[i] = (u_i >= p) / (1 - p), u_i = philox_uniform(seed, offset + i); p = 1: zeros.
void CpuBackend::dropout_mask(Tensor& mask, double p, uint64_t seed, uint64_t offset) {
  const char* op = "dropout_mask";
  expect(mask, mask.dtype(), mask.numel(), op, "mask");
  PH_CHECK(p >= 0 && p <= 1, op, "dropout probability must be in [0, 1], got " << p);
  dispatch_float(mask.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* mp = static_cast<T*>(mask.raw());
    const T keep = p >= 1 ? T(0) : T(1.0 / (1.0 - p));
    parallel_for(mask.numel(), kElemGrain / 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) mp[i] = philox_uniform(seed, offset + uint64_t(i)) >= p ? keep : T(0);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// sgd_update, torch.optim.SGD over flat buffers (param, grad, momentum_buf: n elements):
//   d = grad + weight_decay * param
//   if momentum != 0:
//     buf = first_step ? d : momentum * buf + (1 - dampening) * d
//     d = nesterov ? d + momentum * buf : buf
//   param -= lr * d
// momentum_buf may be undefined when momentum == 0.
void CpuBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                            double dampening, double weight_decay, bool nesterov, bool first_step) {
  const char* op = "sgd_update";
  const DType dt = param.dtype();
  const int64_t n = param.numel();
  expect(param, dt, n, op, "param");
  expect(grad, dt, n, op, "grad");
  if (momentum != 0) expect(momentum_buf, dt, n, op, "momentum_buf");
  PH_CHECK(!nesterov || (momentum > 0 && dampening == 0), op, "Nesterov momentum requires a momentum and zero dampening");
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* pp = static_cast<T*>(param.raw());
    const T* gp = static_cast<const T*>(grad.raw());
    T* bp = momentum != 0 ? static_cast<T*>(momentum_buf.raw()) : nullptr;
    const T tlr = T(lr), tmom = T(momentum), tdamp = T(1.0 - dampening), twd = T(weight_decay);
    parallel_for(n, kElemGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T d = gp[i];
        if (weight_decay != 0) d += twd * pp[i];
        if (bp) {
          const T b = first_step ? d : tmom * bp[i] + tdamp * d;
          bp[i] = b;
          d = nesterov ? d + tmom * b : b;
        }
        pp[i] -= tlr * d;
      }
    });
  });
}

// adam_update, torch.optim.Adam / AdamW over flat buffers; step counts from 1:
//   Adam:  g = grad + weight_decay * param        AdamW: param *= 1 - lr * weight_decay
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
void CpuBackend::adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                             double beta2, double eps, double weight_decay, int64_t step, bool decoupled) {
  const char* op = decoupled ? "adamw_update" : "adam_update";
  const DType dt = param.dtype();
  const int64_t n = param.numel();
  expect(param, dt, n, op, "param");
  expect(grad, dt, n, op, "grad");
  expect(m, dt, n, op, "exp_avg");
  expect(v, dt, n, op, "exp_avg_sq");
  PH_CHECK(step >= 1, op, "step counts from 1, got " << step);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* pp = static_cast<T*>(param.raw());
    const T* gp = static_cast<const T*>(grad.raw());
    T* mp = static_cast<T*>(m.raw());
    T* vp = static_cast<T*>(v.raw());
    const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
    const T step_size = T(lr / bc1), bc2_sqrt = T(std::sqrt(bc2)), teps = T(eps);
    const T b1 = T(beta1), b2 = T(beta2), a1 = T(1.0 - beta1), a2 = T(1.0 - beta2);
    const T twd = T(weight_decay), decay = T(1.0 - lr * weight_decay);
    const bool wd = weight_decay != 0;
    parallel_for(n, kElemGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T g = gp[i];
        if (wd && decoupled) pp[i] *= decay;
        if (wd && !decoupled) g += twd * pp[i];
        mp[i] = b1 * mp[i] + a1 * g;
        vp[i] = b2 * vp[i] + a2 * g * g;
        const T denom = std::sqrt(vp[i]) / bc2_sqrt + teps;
        pp[i] -= step_size * mp[i] / denom;
      }
    });
  });
}

}  // namespace polyhead::cpu
