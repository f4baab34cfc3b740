// tests/autograd/test_fused_attention.cpp: the fused causal attention (ag::causal_attention over
// Backend::attention_forward / attention_backward) checked against the composed formula
// softmax(q k^T / sqrt(Dh) + causal mask) v built from matmul, softmax and a mask, forward and all
// three gradients; against closed forms (T = 1), float64 finite differences, K batched cotangents
// versus K separate backward passes, and 1 versus 2 threads (bit-identical).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/threading.h"

using namespace polyhead;
using namespace polyhead::ag;

namespace {

Tensor randt(const Shape& s, uint64_t seed, DType dt, double scale = 1.0) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> n(0.0, scale);
  std::vector<double> v(size_t(shape_numel(s)));
  for (auto& x : v) x = n(g);
  return Tensor::from_vector(v, s).to(dt);
}

// The composed formula: scores, additive -inf mask above the diagonal, softmax, weighted sum.
Variable composed_attention(const Variable& q, const Variable& k, const Variable& v) {
  const int64_t T = q.size(2), Dh = q.size(3);
  const DType dt = q.dtype();
  Tensor i = Tensor::arange(0, double(T), 1, dt);
  Tensor above = ops::binary(BinaryOp::Gt, i.reshape({1, T}), i.reshape({T, 1})).to(DType::u8);
  Tensor mask = ops::where(above, Tensor::full({}, -std::numeric_limits<double>::infinity(), dt), Tensor::zeros({}, dt))
                    .contiguous();
  Variable att = mul_scalar(matmul(q, transpose(k, -2, -1)), 1.0 / std::sqrt(double(Dh)));
  att = softmax(add_constant(att, mask), -1);
  return matmul(att, v);
}

using AttnFn = Variable (*)(const Variable&, const Variable&, const Variable&);

struct Result {
  Tensor y, gq, gk, gv;
};

// Forward and the gradients for cotangent gy (batched when gy has one more dim than y).
Result run(AttnFn f, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& gy) {
  Variable vq(q.clone(), true), vk(k.clone(), true), vv(v.clone(), true);
  Variable y = f(vq, vk, vv);
  GradOptions o;
  o.batched = gy.dim() == y.dim() + 1;
  auto g = grad({y}, {vq, vk, vv}, {gy}, o);
  return {y.data(), g[0], g[1], g[2]};
}

// worst |got - want| / (1 + |want|)
double worst(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  auto a = got.to(DType::f64).contiguous().to_vector<double>(), b = want.to(DType::f64).contiguous().to_vector<double>();
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(a[i] - b[i]) / (1.0 + std::abs(b[i]));
    w = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(w, e);
  }
  return w;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.shape() == cb.shape() && ca.dtype() == cb.dtype() &&
         std::memcmp(ca.raw(), cb.raw(), size_t(ca.numel()) * ca.itemsize()) == 0;
}

double tol(DType dt) { return dt == DType::f32 ? 1e-5 : 1e-12; }

}  // namespace

TEST_CASE("fused attention: T = 1 attends to itself only (out = v, lse = scale q.k)") {
  Backend& be = backend_for(Device::cpu());
  for (DType dt : {DType::f32, DType::f64}) {
    const int64_t BH = 3, T = 1, Dh = 5;
    const double scale = 0.37;
    Tensor q = randt({BH, T, Dh}, 1, dt), k = randt({BH, T, Dh}, 2, dt), v = randt({BH, T, Dh}, 3, dt);
    Tensor out = Tensor::empty({BH, T, Dh}, dt), lse = Tensor::empty({BH, T}, dt);
    be.attention_forward(q, k, v, BH, T, Dh, scale, out, lse);
    CHECK(same_bits(out, v));
    auto qv = q.to_vector<double>(), kv = k.to_vector<double>(), lv = lse.to_vector<double>();
    for (int64_t h = 0; h < BH; ++h) {
      double s = 0;
      for (int64_t d = 0; d < Dh; ++d) s += qv[size_t(h * Dh + d)] * kv[size_t(h * Dh + d)];
      CHECK(lv[size_t(h)] == doctest::Approx(scale * s).epsilon(dt == DType::f32 ? 1e-6 : 1e-14));
    }
    // one key: the probabilities are constant 1, so dq = dk = 0 (up to rounding) and dv = dout
    Tensor gy = randt({BH, T, Dh}, 4, dt);
    Tensor gq = Tensor::empty({BH, T, Dh}, dt), gk = Tensor::empty({BH, T, Dh}, dt), gv = Tensor::empty({BH, T, Dh}, dt);
    be.attention_backward(q, k, v, out, lse, gy, BH, T, Dh, 1, scale, gq, gk, gv);
    CHECK(same_bits(gv, gy));
    CHECK(worst(gq, Tensor::zeros({BH, T, Dh}, dt)) < tol(dt));
    CHECK(worst(gk, Tensor::zeros({BH, T, Dh}, dt)) < tol(dt));
  }
}

TEST_CASE("fused attention: lse is the log-sum-exp of the causal scores (direct sums)") {
  const int64_t BH = 2, T = 9, Dh = 3;
  const double scale = 0.8;
  Tensor q = randt({BH, T, Dh}, 5, DType::f64), k = randt({BH, T, Dh}, 6, DType::f64), v = randt({BH, T, Dh}, 7, DType::f64);
  Tensor out = Tensor::empty({BH, T, Dh}, DType::f64), lse = Tensor::empty({BH, T}, DType::f64);
  backend_for(Device::cpu()).attention_forward(q, k, v, BH, T, Dh, scale, out, lse);
  auto qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
  auto ov = out.to_vector<double>(), lv = lse.to_vector<double>();
  for (int64_t h = 0; h < BH; ++h)
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> s(size_t(i + 1));
      double z = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double a = 0;
        for (int64_t d = 0; d < Dh; ++d) a += qv[size_t((h * T + i) * Dh + d)] * kv[size_t((h * T + j) * Dh + d)];
        s[size_t(j)] = std::exp(scale * a);
        z += s[size_t(j)];
      }
      CHECK(lv[size_t(h * T + i)] == doctest::Approx(std::log(z)).epsilon(1e-13));
      for (int64_t d = 0; d < Dh; ++d) {
        double o = 0;
        for (int64_t j = 0; j <= i; ++j) o += s[size_t(j)] / z * vv[size_t((h * T + j) * Dh + d)];
        CHECK(ov[size_t((h * T + i) * Dh + d)] == doctest::Approx(o).epsilon(1e-13));
      }
    }
}

TEST_CASE("fused attention: forward and gradients match the composed formula") {
  struct S { int64_t B, H, T, Dh; };
  for (DType dt : {DType::f64, DType::f32}) {
    for (S s : {S{1, 1, 1, 8}, S{1, 3, 7, 16}, S{3, 1, 64, 8}, S{1, 3, 130, 64}, S{1, 1, 130, 16}, S{5, 1, 65, 64}}) {
      const Shape sh{s.B, s.H, s.T, s.Dh};
      const uint64_t seed = uint64_t(s.T * 131 + s.Dh);
      Tensor q = randt(sh, seed, dt), k = randt(sh, seed + 1, dt), v = randt(sh, seed + 2, dt), gy = randt(sh, seed + 3, dt);
      Result a = run(causal_attention, q, k, v, gy), b = run(composed_attention, q, k, v, gy);
      INFO(dtype_name(dt) << " B " << s.B << " H " << s.H << " T " << s.T << " Dh " << s.Dh);
      CHECK(worst(a.y, b.y) < tol(dt));
      CHECK(worst(a.gq, b.gq) < tol(dt));
      CHECK(worst(a.gk, b.gk) < tol(dt));
      CHECK(worst(a.gv, b.gv) < tol(dt));
    }
  }
}

TEST_CASE("fused attention: large scores stay finite and match the composed formula") {
  const Shape sh{2, 2, 70, 16};
  Tensor q = randt(sh, 11, DType::f64, 30.0), k = randt(sh, 12, DType::f64, 30.0), v = randt(sh, 13, DType::f64);
  Tensor gy = randt(sh, 14, DType::f64);
  Result a = run(causal_attention, q, k, v, gy), b = run(composed_attention, q, k, v, gy);
  // scores up to ~1e4: the exponentials are sharp, so compare with a looser bound
  CHECK(worst(a.y, b.y) < 1e-9);
  CHECK(worst(a.gv, b.gv) < 1e-9);
  CHECK(worst(a.gq, b.gq) < 1e-7);
  CHECK(worst(a.gk, b.gk) < 1e-7);
  CHECK(std::isfinite(ops::sum(ops::unary(UnaryOp::Abs, a.gq)).item()));
}

TEST_CASE("fused attention: strided inputs (heads split from (B, T, H, Dh)) and a single graph node") {
  const int64_t B = 2, T = 11, H = 3, Dh = 4;
  Tensor base = randt({B, T, 3 * H * Dh}, 21, DType::f64);
  Variable x(base, true);
  auto head = [&](int64_t i) { return transpose(reshape(narrow(x, 2, i * H * Dh, H * Dh), {B, T, H, Dh}), 1, 2); };
  Variable y = causal_attention(head(0), head(1), head(2));
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->name() == "causal_attention");
  Variable yc = composed_attention(head(0), head(1), head(2));
  CHECK(worst(y.data(), yc.data()) < 1e-12);
  Tensor gy = randt({B, H, T, Dh}, 22, DType::f64);
  auto g1 = grad({y}, {x}, {gy}), g2 = grad({yc}, {x}, {gy});
  CHECK(worst(g1[0], g2[0]) < 1e-12);
}

TEST_CASE("fused attention: float64 finite differences and batched cotangents") {
  GradFn f = [](const std::vector<Variable>& v) { return causal_attention(v[0], v[1], v[2]); };
  for (Shape sh : {Shape{1, 2, 5, 3}, Shape{2, 1, 9, 2}, Shape{1, 1, 1, 4}}) {
    std::vector<Tensor> in{randt(sh, 31, DType::f64), randt(sh, 32, DType::f64), randt(sh, 33, DType::f64)};
    auto r = gradcheck(f, in);
    CHECK_MESSAGE(r.ok, r.message);
    auto b = batched_check(f, in);
    CHECK_MESSAGE(b.ok, b.message);
  }
}

TEST_CASE("fused attention: K = 3 batched cotangents equal 3 separate backward passes") {
  for (DType dt : {DType::f64, DType::f32}) {
    const Shape sh{2, 3, 70, 16};
    Tensor q = randt(sh, 41, dt), k = randt(sh, 42, dt), v = randt(sh, 43, dt);
    Tensor G = randt({3, 2, 3, 70, 16}, 44, dt);
    Result all = run(causal_attention, q, k, v, G);
    for (int64_t r = 0; r < 3; ++r) {
      Result one = run(causal_attention, q, k, v, G.select(0, r).contiguous());
      INFO(dtype_name(dt) << " row " << r);
      // the same computation per block; only the addresses differ
      CHECK(worst(all.gq.select(0, r), one.gq) <= tol(dt) * 1e-2);
      CHECK(worst(all.gk.select(0, r), one.gk) <= tol(dt) * 1e-2);
      CHECK(worst(all.gv.select(0, r), one.gv) <= tol(dt) * 1e-2);
      // and the composed formula agrees with the batched rows
      Result ref = run(composed_attention, q, k, v, G.select(0, r).contiguous());
      CHECK(worst(all.gq.select(0, r), ref.gq) < tol(dt));
      CHECK(worst(all.gk.select(0, r), ref.gk) < tol(dt));
      CHECK(worst(all.gv.select(0, r), ref.gv) < tol(dt));
    }
  }
}

TEST_CASE("fused attention: bit-identical with 1 and 2 threads") {
  for (DType dt : {DType::f32, DType::f64}) {
    const Shape sh{2, 3, 130, 16};
    Tensor q = randt(sh, 51, dt), k = randt(sh, 52, dt), v = randt(sh, 53, dt), G = randt({2, 2, 3, 130, 16}, 54, dt);
    set_num_threads(1);
    Result one = run(causal_attention, q, k, v, G);
    set_num_threads(2);
    Result two = run(causal_attention, q, k, v, G);
    set_num_threads(0);
    INFO(dtype_name(dt));
    CHECK(same_bits(one.y, two.y));
    CHECK(same_bits(one.gq, two.gq));
    CHECK(same_bits(one.gk, two.gk));
    CHECK(same_bits(one.gv, two.gv));
  }
}

TEST_CASE("fused attention: empty sequence, bad shapes and dtypes") {
  {
    Tensor q = Tensor::zeros({2, 3, 0, 4}, DType::f64);
    Variable vq(q, true), vk(q.clone(), true), vv(q.clone(), true);
    Variable y = causal_attention(vq, vk, vv);
    CHECK(y.shape() == Shape{2, 3, 0, 4});
    auto g = grad({y}, {vq, vk, vv}, {Tensor::zeros({2, 3, 0, 4}, DType::f64)});
    CHECK(g[0].shape() == Shape{2, 3, 0, 4});
  }
  Variable a(randt({1, 2, 4, 3}, 61, DType::f32), true), b(randt({1, 2, 5, 3}, 62, DType::f32), true);
  CHECK_THROWS_AS(causal_attention(a, b, a), Error);
  Variable c(randt({2, 4, 3}, 63, DType::f32), true);
  CHECK_THROWS_AS(causal_attention(c, c, c), Error);
  Variable d(randt({1, 2, 4, 3}, 64, DType::f64), true);
  CHECK_THROWS_AS(causal_attention(a, d, a), Error);
  Variable e(Tensor::zeros({1, 1, 3, 0}), true);
  CHECK_THROWS_AS(causal_attention(e, e, e), Error);
  Backend& be = backend_for(Device::cpu());
  Tensor qi = Tensor::zeros({1, 3, 2}, DType::i64), oi = Tensor::zeros({1, 3, 2}, DType::i64), li = Tensor::zeros({1, 3}, DType::i64);
  CHECK_THROWS_AS(be.attention_forward(qi, qi, qi, 1, 3, 2, 1.0, oi, li), Error);
  Tensor q = randt({1, 3, 2}, 65, DType::f32), o = Tensor::empty({1, 3, 2}), l = Tensor::empty({1, 2});
  CHECK_THROWS_AS(be.attention_forward(q, q, q, 1, 3, 2, 1.0, o, l), Error);  // lse has 2 elements, not 3
}
