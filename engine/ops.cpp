// engine/ops.cpp: functional tensor ops over the Backend (see ops.h).
#include "engine/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace polyhead::ops {

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  a.check_defined(op);
  b.check_defined(op);
  PH_CHECK_HINT(a.dtype() == b.dtype(), op, "dtype mismatch: " << a.str() << " vs " << b.str(),
                "convert one operand with .to(DType)");
  PH_CHECK_HINT(a.device() == b.device(), op, "device mismatch: " << a.str() << " vs " << b.str(),
                "move both operands to one device with .to(Device)");
}

Tensor unary(UnaryOp op, const Tensor& x, double p, double q) {
  x.check_defined("unary");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel()) backend_for(x.device()).unary(op, x, out, p, q);
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_same(a, b, "binary");
  Shape s = broadcast_shapes(a.shape(), b.shape(), "binary op");
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  if (out.numel()) {
    Tensor ae = a.expand(s), be = b.expand(s);
    backend_for(a.device()).binary(op, ae, be, out);
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same(a, b, "where");
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  if (out.numel()) {
    Tensor c = cond.expand(s), ae = a.expand(s), be = b.expand(s);
    backend_for(a.device()).where(c, ae, be, out);
  }
  return out;
}

static std::vector<int> norm_dims(const Tensor& x, std::vector<int> dims) {
  if (dims.empty()) { dims.resize(size_t(x.dim())); std::iota(dims.begin(), dims.end(), 0); }
  for (auto& d : dims) d = x.wrap_dim(d);
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  return dims;
}

static Tensor reduce_one(ReduceOp op, const Tensor& x, int d) {
  Tensor c = x.contiguous();
  int64_t outer = 1, inner = 1, n = c.shape()[d];
  for (int i = 0; i < d; ++i) outer *= c.shape()[i];
  for (int i = d + 1; i < c.dim(); ++i) inner *= c.shape()[i];
  Shape os = c.shape();
  os[d] = 1;
  PH_CHECK(n > 0 || op == ReduceOp::Sum || op == ReduceOp::Mean, "reduce", "max/min over an empty dimension of " << x.str());
  Tensor out = Tensor::empty(os, c.dtype(), c.device());
  if (out.numel()) {
    if (n == 0) out.fill_(op == ReduceOp::Mean ? NAN : 0.0);
    else backend_for(c.device()).reduce(op, c, outer, n, inner, out);
  }
  return out;
}

static Tensor reduce(ReduceOp op, const Tensor& x, std::vector<int> dims, bool keepdim) {
  x.check_defined("reduce");
  dims = norm_dims(x, dims);
  if (x.dim() == 0) return x.clone();
  Tensor r = x;
  if (op == ReduceOp::Mean) {
    // mean over several dims = sum over them / count (one scaling, exact for one dim)
    int64_t cnt = 1;
    for (int d : dims) cnt *= x.shape()[d];
    if (dims.size() == 1) r = reduce_one(ReduceOp::Mean, r, dims[0]);
    else {
      for (int d : dims) r = reduce_one(ReduceOp::Sum, r, d);
      r = mul_scalar(r, 1.0 / double(cnt));
    }
  } else {
    // all-dims reduction of a contiguous tensor: one pass over the flat data
    if (int(dims.size()) == x.dim() && x.dim() > 1) r = reduce_one(op, x.reshape({x.numel()}), 0);
    else for (int d : dims) r = reduce_one(op, r, d);
  }
  if (keepdim) {
    Shape s = x.shape();
    for (int d : dims) s[d] = 1;
    return r.reshape(s);
  }
  Shape s;
  for (int i = 0; i < x.dim(); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) s.push_back(x.shape()[i]);
  return r.reshape(s);
}

Tensor sum(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(ReduceOp::Sum, x, std::move(dims), keepdim); }
Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(ReduceOp::Mean, x, std::move(dims), keepdim); }
Tensor amax(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(ReduceOp::Max, x, std::move(dims), keepdim); }
Tensor amin(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(ReduceOp::Min, x, std::move(dims), keepdim); }

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  Tensor c = x.contiguous();
  int d = c.wrap_dim(dim);
  int64_t outer = 1, inner = 1, n = c.shape()[d];
  PH_CHECK(n > 0, "argmax", "empty dimension in " << x.str());
  for (int i = 0; i < d; ++i) outer *= c.shape()[i];
  for (int i = d + 1; i < c.dim(); ++i) inner *= c.shape()[i];
  Shape os = c.shape();
  os[d] = 1;
  Tensor out = Tensor::empty(os, DType::i64, c.device());
  backend_for(c.device()).argmax(c, outer, n, inner, out);
  return keepdim ? out : out.squeeze(d);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  int lead = x.dim() - int(shape.size());
  PH_CHECK(lead >= 0, "sum_to", "cannot sum " << x.str() << " to larger " << shape_str(shape));
  std::vector<int> dims;
  for (int i = 0; i < x.dim(); ++i) {
    if (i < lead) dims.push_back(i);
    else if (shape[i - lead] == 1 && x.shape()[i] != 1) dims.push_back(i);
    else PH_CHECK(shape[i - lead] == x.shape()[i], "sum_to", "cannot sum " << x.str() << " to " << shape_str(shape));
  }
  Tensor r = dims.empty() ? x : sum(x, dims, true);
  return r.reshape(shape);
}

// Row-major GEMM operand description of a 2-D (m x k) view: either contiguous rows (ld = stride0,
// stride1 == 1) or a transposed contiguous matrix (stride0 == 1).
static bool gemm_operand(const Tensor& t, int64_t rows, int64_t cols, bool& trans, int64_t& ld, int a0, int a1) {
  int64_t s0 = t.strides()[a0], s1 = t.strides()[a1];
  if (s1 == 1 && (s0 >= cols || rows == 1)) { trans = false; ld = std::max<int64_t>(s0, std::max<int64_t>(cols, 1)); return true; }
  if (s0 == 1 && (s1 >= rows || cols == 1)) { trans = true; ld = std::max<int64_t>(s1, std::max<int64_t>(rows, 1)); return true; }
  return false;
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_same(a_in, b_in, "matmul");
  PH_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul", "0-d operands: " << a_in.str() << ", " << b_in.str());
  Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(1) : b_in;
  int64_t m = a.size(-2), k = a.size(-1), k2 = b.size(-2), n = b.size(-1);
  PH_CHECK_HINT(k == k2, "matmul", "inner dims differ: " << a_in.str() << " @ " << b_in.str(),
                "(..., m, k) @ (..., k, n) needs equal k");
  Backend& be = backend_for(a.device());
  Shape out_shape;
  Tensor out;
  if (b.dim() == 2) {
    // Fold all leading dims of a into the rows of one GEMM when a's rows are uniformly strided.
    Tensor ac = a;
    bool ok = true;
    int64_t rows = a.numel() / std::max<int64_t>(k, 1);
    if (a.dim() > 2) {
      ac = a.is_contiguous() ? a : a.contiguous();
    }
    bool ta = false, tb = false;
    int64_t lda = 0, ldb = 0;
    Tensor a2 = ac.dim() > 2 ? ac.reshape({rows, k}) : ac;
    if (!gemm_operand(a2, a2.size(0), k, ta, lda, 0, 1)) { a2 = a2.contiguous(); ta = false; lda = std::max<int64_t>(k, 1); }
    Tensor b2 = b;
    if (!gemm_operand(b2, k, n, tb, ldb, 0, 1)) { b2 = b2.contiguous(); tb = false; ldb = std::max<int64_t>(n, 1); }
    (void)ok;
    out_shape = Shape(a.shape().begin(), a.shape().end() - 1);
    out_shape.push_back(n);
    out = Tensor::empty(out_shape, a.dtype(), a.device());
    if (out.numel()) {
      if (k == 0) out.zero_();
      else be.gemm(ta, tb, a2.size(0), n, k, 1.0, a2, lda, 0, b2, ldb, 0, 0.0, out, n, 0, 1);
    }
  } else {
    Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
    Shape batch = broadcast_shapes(ab, bb, "matmul batch dims");
    int64_t nb = shape_numel(batch);
    Shape ae = batch, bex = batch;
    ae.push_back(m); ae.push_back(k);
    bex.push_back(k); bex.push_back(n);
    Tensor a3 = a.expand(ae), b3 = b.expand(bex);
    // Flatten batch dims: need a single batch stride per operand (0 = shared, or uniform).
    auto flat = [&](Tensor t, int64_t r, int64_t c, bool& tr, int64_t& ld, int64_t& stride) -> Tensor {
      int nd = t.dim();
      // uniform batch stride?
      bool uniform = true;
      int64_t st = -1;
      {
        // batch dims with size > 1 must form one arithmetic sequence
        int64_t expect = -1;
        for (int i = nd - 3; i >= 0; --i) {
          if (t.shape()[i] == 1) continue;
          if (expect < 0) { st = t.strides()[i]; expect = st * t.shape()[i]; }
          else if (t.strides()[i] != expect) { uniform = false; break; }
          else expect *= t.shape()[i];
          if (t.strides()[i] == 0 && st != 0) uniform = false;
        }
        if (st < 0) st = 0;
      }
      if (!uniform || !gemm_operand(t, r, c, tr, ld, nd - 2, nd - 1)) {
        t = t.contiguous();
        tr = false;
        ld = std::max<int64_t>(c, 1);
        st = r * c;
      }
      stride = st;
      return t;
    };
    bool ta, tb;
    int64_t lda, ldb, sa, sb;
    a3 = flat(a3, m, k, ta, lda, sa);
    b3 = flat(b3, k, n, tb, ldb, sb);
    out_shape = batch;
    out_shape.push_back(m);
    out_shape.push_back(n);
    out = Tensor::empty(out_shape, a.dtype(), a.device());
    if (out.numel()) {
      if (k == 0) out.zero_();
      else be.gemm(ta, tb, m, n, k, 1.0, a3, lda, sa, b3, ldb, sb, 0.0, out, n, m * n, nb);
    }
  }
  if (a_in.dim() == 1) out = out.squeeze(-2);
  if (b_in.dim() == 1) out = out.squeeze(-1);
  return out;
}

Tensor cat(const std::vector<Tensor>& xs, int dim) {
  PH_CHECK(!xs.empty(), "cat", "no tensors given");
  const Tensor& f = xs[0];
  int d = f.wrap_dim(dim);
  Shape s = f.shape();
  int64_t total = 0;
  for (const auto& x : xs) {
    check_same(f, x, "cat");
    PH_CHECK(x.dim() == f.dim(), "cat", "rank mismatch: " << f.str() << " vs " << x.str());
    for (int i = 0; i < f.dim(); ++i)
      PH_CHECK(i == d || x.shape()[i] == s[i], "cat", "shapes differ outside dim " << d << ": " << f.str() << " vs " << x.str());
    total += x.shape()[d];
  }
  s[d] = total;
  Tensor out = Tensor::empty(s, f.dtype(), f.device());
  int64_t at = 0;
  for (const auto& x : xs) {
    Tensor dst = out.narrow(d, at, x.shape()[d]);
    if (x.numel()) backend_for(out.device()).copy(x, dst);
    at += x.shape()[d];
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int dim) {
  PH_CHECK(!xs.empty(), "stack", "no tensors given");
  std::vector<Tensor> u;
  int d = dim < 0 ? dim + xs[0].dim() + 1 : dim;
  for (const auto& x : xs) u.push_back(x.unsqueeze(d));
  return cat(u, d);
}

double dot(const Tensor& a, const Tensor& b) {
  check_same(a, b, "dot");
  PH_CHECK(a.numel() == b.numel(), "dot", "sizes differ: " << a.str() << " vs " << b.str());
  Tensor p = mul(a.reshape({a.numel()}), b.reshape({b.numel()})).to(DType::f64);
  return sum(p).item();
}

bool all_finite(const Tensor& x) {
  if (!is_floating(x.dtype()) || x.numel() == 0) return true;
  Tensor s = sum(mul_scalar(x, 0.0).to(DType::f64));  // NaN/Inf * 0 = NaN
  return std::isfinite(s.item());
}

}  // namespace polyhead::ops
