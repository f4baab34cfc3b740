// autograd/functions_shape.cpp: reductions, matmul/linear and view ops with batched rules.
// In every rule dimension d of the forward tensor is dimension d+1 of the batched gradient.
#include <algorithm>
#include <numeric>

#include "autograd/function_util.h"
#include "autograd/functions.h"
#include "engine/ops.h"

namespace polyhead::ag {

static std::vector<int> wrap_dims(const Shape& s, std::vector<int> dims) {
  int r = int(s.size());
  if (dims.empty()) { dims.resize(size_t(r)); std::iota(dims.begin(), dims.end(), 0); }
  for (auto& d : dims) {
    PH_CHECK(d >= -r && d < std::max(r, 1), "reduce", "dim " << d << " out of range for rank " << r);
    d = d < 0 ? d + r : d;
  }
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  return dims;
}

// Batched gradient of a reduction result back to the input shape (keepdim shape, then expand).
static Tensor expand_reduced(const Tensor& gy, const Shape& in, const std::vector<int>& dims, int64_t K) {
  Shape keep = in;
  for (int d : dims) if (d < int(keep.size())) keep[d] = 1;
  return gy.reshape(batched_shape(K, keep)).expand(batched_shape(K, in));
}

Variable sum(const Variable& x, std::vector<int> dims, bool keepdim) {
  Shape in = x.shape();
  dims = wrap_dims(in, dims);
  return make_op("sum", ops::sum(x.data(), dims, keepdim), {x}, [in, dims](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    return std::vector<Tensor>{expand_reduced(gy, in, dims, K)};
  });
}

Variable mean(const Variable& x, std::vector<int> dims, bool keepdim) {
  Shape in = x.shape();
  dims = wrap_dims(in, dims);
  int64_t cnt = 1;
  for (int d : dims) if (d < int(in.size())) cnt *= in[d];
  return make_op("mean", ops::mean(x.data(), dims, keepdim), {x}, [in, dims, cnt](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    return std::vector<Tensor>{expand_reduced(ops::mul_scalar(gy, 1.0 / double(std::max<int64_t>(cnt, 1))), in, dims, K)};
  });
}

Variable amax(const Variable& x, int dim, bool keepdim) {
  Tensor t = x.data();
  int d = t.wrap_dim(dim);
  Tensor m = ops::amax(t, {d}, true);
  Tensor out = keepdim ? m : m.squeeze(d);
  // gradient split evenly among ties (as PyTorch's amax)
  Tensor mask = ops::binary(BinaryOp::Eq, t, m);
  Tensor cnt = ops::sum(mask, {d}, true);
  Tensor share = ops::div(mask, cnt);
  Shape in = t.shape();
  return make_op("amax", out, {x}, [share, in, d](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::mul(expand_reduced(gy, in, {d}, K), share)};
  });
}

Variable matmul(const Variable& a, const Variable& b) {
  PH_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul", "0-d operands " << a.str() << ", " << b.str());
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  Tensor ta = a.data(), tb = b.data();
  return make_op("matmul", ops::matmul(ta, tb), {a, b}, [ta, tb](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    Tensor ga, gb;
    // gy (K, ..., m, n); ga = gy @ b^T, gb = a^T @ gy (a broadcast over K: stride-0 batched GEMM)
    if (need[0]) ga = sum_to_batched(ops::matmul(gy, tb.transpose(-1, -2)), ta.shape());
    if (need[1]) gb = sum_to_batched(ops::matmul(ta.transpose(-1, -2), gy), tb.shape());
    return std::vector<Tensor>{ga, gb};
  });
}

Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  PH_CHECK_HINT(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.size(1), "linear",
                "input " << x.str() << " and weight " << w.str() << " do not fit", "x (..., in), weight (out, in)");
  PH_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), "linear", "bias " << b.str() << " must be (" << w.size(0) << ")");
  Tensor tx = x.data(), tw = w.data();
  Tensor y = ops::matmul(tx, tw.t());
  if (b.defined()) y = ops::add(y, b.data());
  int64_t in = tw.size(1), outf = tw.size(0);
  return make_op("linear", y, {x, w, b}, [tx, tw, in, outf](const Tensor& gy, int64_t K, const std::vector<bool>& need) {
    Tensor gx, gw, gb;
    int64_t rows = tx.numel() / std::max<int64_t>(in, 1);
    Tensor g3 = gy.reshape({K, rows, outf});  // (K, rows, out)
    if (need[0]) gx = ops::matmul(g3.reshape({K * rows, outf}), tw).reshape(batched_shape(K, tx.shape()));
    if (need[1]) {
      Tensor x2 = tx.reshape({rows, in});
      // gw_k = gy_k^T x: (K, out, rows) @ (rows, in) -> (K, out, in), x shared by all K
      gw = ops::matmul(g3.transpose(1, 2), x2.unsqueeze(0));
    }
    if (need[2]) gb = ops::sum(g3, {1});
    return std::vector<Tensor>{gx, gw, gb};
  });
}

Variable reshape(const Variable& x, const Shape& shape) {
  Shape in = x.shape();
  return make_op("reshape", x.data().reshape(shape), {x}, [in](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    return std::vector<Tensor>{gy.reshape(batched_shape(K, in))};
  });
}

Variable flatten(const Variable& x, int start, int end) {
  Tensor f = x.data().flatten(start, end);
  return reshape(x, f.shape());
}

Variable contiguous(const Variable& x) {
  return make_op("contiguous", x.data().contiguous(), {x},
                 [](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{gy}; });
}

Variable transpose(const Variable& x, int a, int b) {
  int da = x.data().wrap_dim(a), db = x.data().wrap_dim(b);
  return make_op("transpose", x.data().transpose(da, db), {x}, [da, db](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{gy.transpose(da + 1, db + 1)};
  });
}

Variable permute(const Variable& x, const std::vector<int>& dims) {
  Tensor y = x.data().permute(dims);
  int r = x.dim();
  std::vector<int> inv(size_t(r) + 1);
  inv[0] = 0;
  for (int i = 0; i < r; ++i) inv[size_t(x.data().wrap_dim(dims[size_t(i)])) + 1] = i + 1;
  return make_op("permute", y, {x}, [inv](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{gy.permute(inv)};
  });
}

Variable narrow(const Variable& x, int dim, int64_t start, int64_t length) {
  int d = x.data().wrap_dim(dim);
  Shape in = x.shape();
  return make_op("narrow", x.data().narrow(d, start, length), {x}, [in, d, start, length](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    Tensor g = Tensor::zeros(batched_shape(K, in), gy.dtype(), gy.device());
    Tensor dst = g.narrow(d + 1, start, length);
    dst.copy_(gy);
    return std::vector<Tensor>{g};
  });
}

Variable select(const Variable& x, int dim, int64_t index) {
  int d = x.data().wrap_dim(dim);
  if (index < 0) index += x.size(d);
  return squeeze(narrow(x, d, index, 1), d);
}

Variable expand(const Variable& x, const Shape& shape) {
  Shape in = x.shape();
  return make_op("expand", x.data().expand(shape), {x}, [in](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{sum_to_batched(gy, in)};
  });
}

Variable squeeze(const Variable& x, int dim) {
  Shape in = x.shape();
  return make_op("squeeze", x.data().squeeze(dim), {x}, [in](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    return std::vector<Tensor>{gy.reshape(batched_shape(K, in))};
  });
}

Variable unsqueeze(const Variable& x, int dim) {
  Shape in = x.shape();
  return make_op("unsqueeze", x.data().unsqueeze(dim), {x}, [in](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    return std::vector<Tensor>{gy.reshape(batched_shape(K, in))};
  });
}

Variable cat(const std::vector<Variable>& xs, int dim) {
  PH_CHECK(!xs.empty(), "cat", "no inputs");
  std::vector<Tensor> ts;
  for (const auto& v : xs) ts.push_back(v.data());
  int d = ts[0].wrap_dim(dim);
  std::vector<int64_t> sizes;
  for (const auto& t : ts) sizes.push_back(t.size(d));
  return make_op("cat", ops::cat(ts, d), xs, [sizes, d](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    std::vector<Tensor> g(sizes.size());
    int64_t at = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (need[i]) g[i] = gy.narrow(d + 1, at, sizes[i]);
      at += sizes[i];
    }
    return g;
  });
}

Variable stack(const std::vector<Variable>& xs, int dim) {
  PH_CHECK(!xs.empty(), "stack", "no inputs");
  int d = dim < 0 ? dim + xs[0].dim() + 1 : dim;
  std::vector<Variable> u;
  for (const auto& x : xs) u.push_back(unsqueeze(x, d));
  return cat(u, d);
}

}  // namespace polyhead::ag
