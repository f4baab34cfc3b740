// autograd/functions_nn.cpp: neural-network ops (softmax, norms, conv, pooling, embedding,
// dropout, cross-entropy, causal attention) over the backend's fused primitives, with batched
// backward rules: the K cotangent rows are folded into the primitives' batch dimension.
#include <cmath>
#include <limits>

#include "autograd/function_util.h"
#include "autograd/functions.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace polyhead::ag {

static Backend& be(const Tensor& t) { return backend_for(t.device()); }

// Softmax over `dim`: moved to the last position, computed over rows.
static Variable softmax_impl(const Variable& x, int dim, bool log) {
  int d = x.data().wrap_dim(dim);
  int last = x.dim() - 1;
  if (d != last) return transpose(softmax_impl(transpose(x, d, last), last, log), d, last);
  Tensor t = x.data().contiguous();
  int64_t cols = t.dim() ? t.size(-1) : 1, rows = t.numel() / std::max<int64_t>(cols, 1);
  Tensor y = Tensor::empty(t.shape(), t.dtype(), t.device());
  if (t.numel()) be(t).softmax(t, rows, cols, log, y);
  return make_op(log ? "log_softmax" : "softmax", y, {x}, [y, rows, cols, log](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    Tensor g = gy.contiguous();
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
    if (g.numel()) be(g).softmax_backward(y, g, rows, cols, K, log, gx);
    return std::vector<Tensor>{gx};
  });
}
Variable softmax(const Variable& x, int dim) { return softmax_impl(x, dim, false); }
Variable log_softmax(const Variable& x, int dim) { return softmax_impl(x, dim, true); }

Variable layer_norm(const Variable& x, const Variable& gamma, const Variable& beta, double eps) {
  Tensor t = x.data().contiguous();
  int64_t cols = t.size(-1), rows = t.numel() / std::max<int64_t>(cols, 1);
  if (gamma.defined()) PH_CHECK(gamma.numel() == cols, "layer_norm", "gamma " << gamma.str() << " vs input " << x.str());
  if (beta.defined()) PH_CHECK(beta.numel() == cols, "layer_norm", "beta " << beta.str() << " vs input " << x.str());
  Tensor g = gamma.defined() ? gamma.data().contiguous() : Tensor();
  Tensor b = beta.defined() ? beta.data().contiguous() : Tensor();
  Tensor y = Tensor::empty(t.shape(), t.dtype(), t.device());
  Tensor mu = Tensor::empty({rows}, t.dtype(), t.device()), rs = Tensor::empty({rows}, t.dtype(), t.device());
  be(t).layer_norm(t, g, b, rows, cols, eps, y, mu, rs);
  return make_op("layer_norm", y, {x, gamma, beta}, [t, g, mu, rs, rows, cols](const Tensor& gy, int64_t K, const std::vector<bool>& need) {
    Tensor gc = gy.contiguous();
    Tensor gx = Tensor::empty(gc.shape(), gc.dtype(), gc.device());
    Tensor dg = need[1] ? Tensor::empty({K, cols}, gc.dtype(), gc.device()) : Tensor();
    Tensor db = need[2] ? Tensor::empty({K, cols}, gc.dtype(), gc.device()) : Tensor();
    be(gc).layer_norm_backward(t, g, mu, rs, gc, rows, cols, K, gx, dg, db);
    return std::vector<Tensor>{need[0] ? gx : Tensor(), dg, db};
  });
}

Variable batch_norm(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, double momentum, double eps) {
  PH_CHECK(x.dim() >= 2, "batch_norm", "input " << x.str() << " needs (N, C, ...)");
  Tensor t = x.data().contiguous();
  int64_t N = t.size(0), C = t.size(1), S = t.numel() / std::max<int64_t>(N * C, 1);
  PH_CHECK_HINT(!training || N * S > 1, "batch_norm", "training needs more than one value per channel, got " << x.str(),
                "use a batch size > 1 or eval()");
  Tensor g = gamma.defined() ? gamma.data() : Tensor(), b = beta.defined() ? beta.data() : Tensor();
  Tensor y = Tensor::empty(t.shape(), t.dtype(), t.device());
  Tensor mu = Tensor::empty({C}, t.dtype(), t.device()), is = Tensor::empty({C}, t.dtype(), t.device());
  be(t).batch_norm(t, g, b, running_mean, running_var, training, momentum, eps, N, C, S, y, mu, is);
  return make_op("batch_norm", y, {x, gamma, beta}, [t, g, mu, is, N, C, S, training](const Tensor& gy, int64_t K, const std::vector<bool>& need) {
    Tensor gc = gy.contiguous();
    Tensor gx = Tensor::empty(gc.shape(), gc.dtype(), gc.device());
    Tensor dg = need[1] ? Tensor::empty({K, C}, gc.dtype(), gc.device()) : Tensor();
    Tensor db = need[2] ? Tensor::empty({K, C}, gc.dtype(), gc.device()) : Tensor();
    be(gc).batch_norm_backward(t, g, mu, is, gc, N, C, S, K, training, gx, dg, db);
    return std::vector<Tensor>{need[0] ? gx : Tensor(), dg, db};
  });
}

Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const ConvParams& p) {
  PH_CHECK_HINT(x.dim() == 4 && w.dim() == 4 && x.size(1) == w.size(1) && w.size(2) == p.kh && w.size(3) == p.kw, "conv2d",
                "input " << x.str() << " and weight " << w.str() << " do not fit",
                "x (N, C, H, W), weight (OC, C, kh, kw)");
  Tensor tx = x.data().contiguous(), tw = w.data().contiguous();
  int64_t N = tx.size(0), C = tx.size(1), H = tx.size(2), W = tx.size(3), OC = tw.size(0);
  int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, "conv2d", "input " << x.str() << " too small for kernel " << p.kh << "x" << p.kw);
  Tensor tb = b.defined() ? b.data().contiguous() : Tensor();
  Tensor y = Tensor::empty({N, OC, OH, OW}, tx.dtype(), tx.device());
  be(tx).conv2d(tx, tw, tb, p, y);
  return make_op("conv2d", y, {x, w, b}, [tx, tw, p, N, C, H, W, OC, OH, OW](const Tensor& gy, int64_t K, const std::vector<bool>& need) {
    Tensor gc = gy.contiguous();  // (K, N, OC, OH, OW)
    Tensor gx, gw, gb;
    if (need[0]) {
      gx = Tensor::empty({K * N, C, H, W}, gc.dtype(), gc.device());
      be(gc).conv2d_backward_data(gc.reshape({K * N, OC, OH, OW}), tw, p, gx);
      gx = gx.reshape({K, N, C, H, W});
    }
    if (need[1]) {
      // fold K into the output channels: (K, N, OC, ...) -> (N, K*OC, ...)
      Tensor gk = K == 1 ? gc.reshape({N, OC, OH, OW}) : gc.permute({1, 0, 2, 3, 4}).contiguous().reshape({N, K * OC, OH, OW});
      gw = Tensor::empty({K * OC, C, p.kh, p.kw}, gc.dtype(), gc.device());
      be(gc).conv2d_backward_filter(tx, gk, p, gw);
      gw = gw.reshape({K, OC, C, p.kh, p.kw});
    }
    if (need[2]) gb = ops::sum(gc, {1, 3, 4});
    return std::vector<Tensor>{gx, gw, gb};
  });
}

Variable max_pool2d(const Variable& x, const PoolParams& p) {
  PH_CHECK(x.dim() == 4, "max_pool2d", "input " << x.str() << " must be (N, C, H, W)");
  Tensor t = x.data().contiguous();
  int64_t N = t.size(0), C = t.size(1), H = t.size(2), W = t.size(3), OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, "max_pool2d", "input " << x.str() << " too small for window " << p.kh << "x" << p.kw);
  Tensor y = Tensor::empty({N, C, OH, OW}, t.dtype(), t.device());
  Tensor idx = Tensor::empty({N, C, OH, OW}, DType::i64, t.device());
  be(t).max_pool2d(t, p, y, idx);
  return make_op("max_pool2d", y, {x}, [idx, N, C, H, W, OH, OW](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    Tensor gc = gy.contiguous().reshape({K * N, C, OH, OW});
    Tensor gx = Tensor::empty({K * N, C, H, W}, gc.dtype(), gc.device());
    be(gc).max_pool2d_backward(gc, idx, K, gx);
    return std::vector<Tensor>{gx.reshape({K, N, C, H, W})};
  });
}

Variable avg_pool2d(const Variable& x, const PoolParams& p) {
  PH_CHECK(x.dim() == 4, "avg_pool2d", "input " << x.str() << " must be (N, C, H, W)");
  Tensor t = x.data().contiguous();
  int64_t N = t.size(0), C = t.size(1), H = t.size(2), W = t.size(3), OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, "avg_pool2d", "input " << x.str() << " too small for window " << p.kh << "x" << p.kw);
  Tensor y = Tensor::empty({N, C, OH, OW}, t.dtype(), t.device());
  be(t).avg_pool2d(t, p, y);
  return make_op("avg_pool2d", y, {x}, [p, N, C, H, W, OH, OW](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    Tensor gc = gy.contiguous().reshape({K * N, C, OH, OW});
    Tensor gx = Tensor::empty({K * N, C, H, W}, gc.dtype(), gc.device());
    be(gc).avg_pool2d_backward(gc, p, gx);
    return std::vector<Tensor>{gx.reshape({K, N, C, H, W})};
  });
}

Variable embedding(const Variable& weight, const Tensor& idx) {
  PH_CHECK(weight.dim() == 2, "embedding", "weight " << weight.str() << " must be (V, D)");
  PH_CHECK_HINT(idx.dtype() == DType::i64, "embedding", "indices must be i64, got " << idx.str(), "convert with .to(DType::i64)");
  Tensor w = weight.data().contiguous(), ix = idx.contiguous();
  int64_t V = w.size(0), D = w.size(1), n = ix.numel();
  Shape os = ix.shape();
  os.push_back(D);
  Tensor out = Tensor::empty({n, D}, w.dtype(), w.device());
  if (n) be(w).embedding(w, ix.reshape({n}), out);
  return make_op("embedding", out.reshape(os), {weight}, [ix, V, D, n](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    Tensor gc = gy.contiguous().reshape({K, n, D});
    Tensor gw = Tensor::empty({K, V, D}, gc.dtype(), gc.device());
    be(gc).embedding_backward(gc, ix.reshape({n}), K, V, D, gw);
    return std::vector<Tensor>{gw};
  });
}

Variable dropout(const Variable& x, double p, bool training) {
  PH_CHECK(p >= 0 && p <= 1, "dropout", "probability " << p << " outside [0, 1]");
  if (!training || p == 0) return x;
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  auto& g = default_generator();
  be(mask).dropout_mask(mask, p, g.seed(), g.reserve(uint64_t(mask.numel())));
  return mul_constant(x, mask);
}

Variable cross_entropy(const Variable& logits, const Tensor& target, Reduction r, int64_t ignore_index,
                       double label_smoothing) {
  PH_CHECK(logits.dim() >= 2, "cross_entropy", "logits " << logits.str() << " must be (N, C, ...)");
  PH_CHECK_HINT(target.dtype() == DType::i64, "cross_entropy", "targets must be class indices (i64), got " << target.str(),
                "convert with .to(DType::i64)");
  PH_CHECK(label_smoothing >= 0 && label_smoothing < 1, "cross_entropy", "label_smoothing " << label_smoothing << " outside [0, 1)");
  Variable l = logits;
  if (logits.dim() > 2) {  // (N, C, d...) -> (N*d..., C)
    std::vector<int> perm{0};
    for (int i = 2; i < logits.dim(); ++i) perm.push_back(i);
    perm.push_back(1);
    l = reshape(permute(logits, perm), {-1, logits.size(1)});
  }
  Tensor tgt = target.contiguous().reshape({-1});
  int64_t N = l.size(0), C = l.size(1);
  PH_CHECK(tgt.numel() == N, "cross_entropy", "logits " << logits.str() << " and targets " << target.str() << " disagree");
  Tensor tl = l.data().contiguous();
  Tensor loss = Tensor::empty({N}, tl.dtype(), tl.device()), lse = Tensor::empty({N}, tl.dtype(), tl.device());
  be(tl).cross_entropy(tl, tgt, N, C, ignore_index, label_smoothing, loss, lse);
  Variable per = make_op("cross_entropy", loss, {l}, [tl, tgt, lse, N, C, ignore_index, label_smoothing](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    Tensor gc = gy.contiguous();
    Tensor g = Tensor::empty({K, N, C}, gc.dtype(), gc.device());
    be(gc).cross_entropy_backward(tl, tgt, lse, gc, N, C, K, ignore_index, label_smoothing, g);
    return std::vector<Tensor>{g};
  });
  if (r == Reduction::None) return reshape(per, target.shape());
  if (r == Reduction::Sum) return sum(per);
  // mean over non-ignored targets (PyTorch)
  if (!tgt.device().is_cpu()) {
    // On a device the count stays there (no host synchronisation; the backend checked the
    // targets): mean = sum / count, NaN when every target is ignored (0 * inf).
    Tensor tf = tgt.to(tl.dtype());
    Tensor valid = ops::binary(BinaryOp::Ne, tf, Tensor::full({}, double(ignore_index), tl.dtype(), tl.device()));
    return mul_constant(sum(per), ops::unary(UnaryOp::Recip, ops::sum(valid)));
  }
  auto tv = tgt.to(Device::cpu());
  const int64_t* tp = static_cast<const int64_t*>(tv.contiguous().raw());
  int64_t cnt = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (tp[i] == ignore_index) continue;
    PH_CHECK_HINT(tp[i] >= 0 && tp[i] < C, "cross_entropy", "target " << tp[i] << " at row " << i << " outside [0, " << C << ")",
                  "targets are class indices in [0, C) or ignore_index");
    ++cnt;
  }
  return mul_scalar(sum(per), cnt ? 1.0 / double(cnt) : std::numeric_limits<double>::quiet_NaN());
}

// Fused causal attention (Backend::attention_forward / attention_backward): one node saving q, k,
// v, the output and the per-row log-sum-exp; the backward recomputes the probabilities, so no
// (B, H, T, T) tensor is kept. The K cotangent blocks are folded into the head dimension.
Variable causal_attention(const Variable& q, const Variable& k, const Variable& v) {
  PH_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(), "causal_attention",
           "q, k, v must be (B, H, T, Dh) of one shape: " << q.str() << ", " << k.str() << ", " << v.str());
  PH_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype() && k.device() == q.device() && v.device() == q.device(),
           "causal_attention", "q, k, v must share dtype and device: " << q.str() << ", " << k.str() << ", " << v.str());
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dh = q.size(3), BH = B * H;
  PH_CHECK(Dh > 0, "causal_attention", "head size (last dim) must be positive, got " << q.str());
  const double scale = 1.0 / std::sqrt(double(Dh));
  Tensor tq = q.data().contiguous(), tk = k.data().contiguous(), tv = v.data().contiguous();
  Tensor out = Tensor::empty(tq.shape(), tq.dtype(), tq.device());
  Tensor lse = Tensor::empty({B, H, T}, tq.dtype(), tq.device());
  if (out.numel()) be(tq).attention_forward(tq, tk, tv, BH, T, Dh, scale, out, lse);
  return make_op("causal_attention", out, {q, k, v}, [tq, tk, tv, out, lse, B, H, T, Dh, BH, scale](const Tensor& gy, int64_t K, const std::vector<bool>& need) {
    Tensor g = gy.contiguous();  // (K, B, H, T, Dh)
    const Shape s{K, B, H, T, Dh};
    Tensor gq = Tensor::empty(s, g.dtype(), g.device()), gk = Tensor::empty(s, g.dtype(), g.device());
    Tensor gv = Tensor::empty(s, g.dtype(), g.device());
    if (g.numel()) be(g).attention_backward(tq, tk, tv, out, lse, g, BH, T, Dh, K, scale, gq, gk, gv);
    return std::vector<Tensor>{need[0] ? gq : Tensor(), need[1] ? gk : Tensor(), need[2] ? gv : Tensor()};
  });
}

}  // namespace polyhead::ag
