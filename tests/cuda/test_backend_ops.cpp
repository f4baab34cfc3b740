// tests/cuda/test_backend_ops.cpp: the CUDA backend against the CPU backend (the reference), in the
// style of ggml's test-backend-ops: a table of op cases, each run on both backends from the same
// inputs and compared with a tolerance stated per case (0 = bit-identical). Covers every Backend
// primitive with odd sizes, broadcasting and non-contiguous views, K > 1 batched backwards, f32 and
// f64; plus determinism (two runs give identical bits, also for fused attention), Philox streams
// identical to the CPU's, allocator statistics, the out-of-memory message, the TF32 switch, index
// errors, and the direct convolution fallback.
//
// Without a CUDA device (or in a build without the CUDA target) every test case here is reported
// as skipped, never as passed.
#include <doctest/doctest.h>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/tensor.h"

#if POLYHEAD_HAVE_CUDA

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cuda/cuda_api.h"

using namespace polyhead;

namespace {

const bool kNoGpu = !polyhead::cuda::available();

Device gpu() { return Device::cuda(0); }
Backend& be(Device d) { return backend_for(d); }

void ensure_init() {
  polyhead::cuda::init();
  REQUIRE(backend_available(Device::Type::CUDA));
}

// ---- inputs: generated on the host from a seed, identical for both backends ----
std::vector<double> randv(size_t n, uint64_t seed, double lo, double hi) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
Tensor host(const std::vector<double>& v, const Shape& s, DType dt) { return Tensor::from_vector(v, s).to(dt); }
Tensor make(const Shape& s, DType dt, Device dev, uint64_t seed, double lo = -1, double hi = 1) {
  return host(randv(size_t(shape_numel(s)), seed, lo, hi), s, dt).to(dev);
}
// values on a grid of 0.5 (ties and equal elements happen)
Tensor make_q(const Shape& s, DType dt, Device dev, uint64_t seed, double lo = -2, double hi = 2) {
  auto v = randv(size_t(shape_numel(s)), seed, lo, hi);
  for (auto& x : v) x = std::round(x * 2) / 2;
  return host(v, s, dt).to(dev);
}
Tensor ints(const std::vector<int64_t>& v, const Shape& s, Device dev) { return Tensor::from_vector(v, s).to(dev); }
// outputs start as NaN (or 77 for integers) so that unwritten elements are caught
Tensor out(const Shape& s, DType dt, Device dev) {
  return Tensor::full(s, is_floating(dt) ? std::numeric_limits<double>::quiet_NaN() : 77.0, dt, dev);
}

// ---- comparison ----
std::vector<double> vals(const Tensor& t) { return t.to(Device::cpu()).contiguous().to_vector<double>(); }

// worst |got - want| / (1 + |want|); NaN matches NaN; tol 0 asks for identical values.
struct Diff {
  double worst = 0;
  size_t at = 0, bad = 0;
  double got = 0, want = 0;
};
Diff diff(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  Diff d;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    double e;
    if (std::isnan(g) || std::isnan(w)) e = std::isnan(g) && std::isnan(w) ? 0 : std::numeric_limits<double>::infinity();
    else if (g == w) e = 0;
    else e = std::abs(g - w) / (1.0 + std::abs(w));
    if (e > tol || (tol == 0 && e != 0)) ++d.bad;
    if (e > d.worst) { d.worst = e; d.at = i; d.got = g; d.want = w; }
  }
  return d;
}

void expect_match(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": shape " << got.str() << " vs " << want.str());
  const Diff d = diff(vals(got), vals(want), tol);
  INFO(what << ": " << d.bad << " of " << want.numel() << " elements off; worst error " << d.worst << " at " << d.at
            << " (cuda " << d.got << ", cpu " << d.want << "), tolerance " << tol);
  CHECK(d.bad == 0);
}

bool identical(const Tensor& a, const Tensor& b) {
  Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  if (ca.shape() != cb.shape() || ca.dtype() != cb.dtype()) return false;
  return std::memcmp(ca.raw(), cb.raw(), size_t(ca.numel()) * ca.itemsize()) == 0;
}

// ---- the table ----
struct Case {
  std::string name;
  double tol;
  std::function<std::vector<Tensor>(Device)> run;
};

const char* dn(DType dt) { return dtype_name(dt); }
double tol_ew(DType dt) { return dt == DType::f32 ? 1e-5 : 1e-12; }   // elementwise, row ops
double tol_mm(DType dt) { return dt == DType::f32 ? 1e-4 : 1e-11; }   // GEMM, convolution

const char* unary_name(UnaryOp op) {
  static const char* n[] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "relu", "gelu", "tanh",
                            "sigmoid", "silu", "square", "recip", "sin", "cos", "pow_scalar", "clamp", "affine", "gt_scalar"};
  return n[int(op)];
}
const char* binary_name(BinaryOp op) {
  static const char* n[] = {"add", "sub", "mul", "div", "max", "min", "pow", "eq", "ne", "lt", "le", "gt", "ge",
                            "relu_bwd", "gelu_bwd", "tanh_bwd", "sigmoid_bwd", "silu_bwd"};
  return n[int(op)];
}

void add_copy_cases(std::vector<Case>& cs) {
  cs.push_back({"copy contiguous f32", 0, [](Device d) {
    Tensor s = make({1031}, DType::f32, d, 1), o = out({1031}, DType::f32, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  cs.push_back({"copy transposed f64 -> f32", 0, [](Device d) {
    Tensor s = make({17, 9}, DType::f64, d, 2).t(), o = out({9, 17}, DType::f32, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  cs.push_back({"copy broadcast (stride 0)", 0, [](Device d) {
    Tensor s = make({1, 5, 1}, DType::f32, d, 3).expand({4, 5, 3}), o = out({4, 5, 3}, DType::f32, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  cs.push_back({"copy into a strided destination", 0, [](Device d) {
    Tensor big = out({6, 10}, DType::f64, d);
    Tensor dst = big.slice(1, 1, 9, 2);
    Tensor s = make({6, 4}, DType::f32, d, 4);
    be(d).copy(s, dst);
    return std::vector<Tensor>{big};
  }});
  cs.push_back({"copy rank-10 permuted (more than 8 dims)", 0, [](Device d) {
    Shape sh{2, 2, 3, 2, 2, 2, 3, 2, 2, 2};
    Tensor s = make(sh, DType::f32, d, 5).permute({9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    Tensor o = out(s.shape(), DType::f64, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  cs.push_back({"copy f64 -> i32 (truncation)", 0, [](Device d) {
    Tensor s = make({333}, DType::f64, d, 6, -100, 100), o = out({333}, DType::i32, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  cs.push_back({"copy i64 -> f32 transposed", 0, [](Device d) {
    std::vector<int64_t> v(60);
    for (size_t i = 0; i < v.size(); ++i) v[i] = int64_t(i * i) - 700;
    Tensor s = ints(v, {6, 10}, d).t(), o = out({10, 6}, DType::f32, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  cs.push_back({"copy u8 -> f64 and f32 -> u8", 0, [](Device d) {
    Tensor f = make({257}, DType::f32, d, 7, 0, 255);
    Tensor u = out({257}, DType::u8, d), back = out({257}, DType::f64, d);
    be(d).copy(f, u);
    be(d).copy(u, back);
    return std::vector<Tensor>{u, back};
  }});
  cs.push_back({"copy i32 -> i64 broadcast", 0, [](Device d) {
    Tensor s = make({1, 7}, DType::f64, d, 8, -50, 50).to(DType::i32).expand({5, 7}), o = out({5, 7}, DType::i64, d);
    be(d).copy(s, o);
    return std::vector<Tensor>{o};
  }});
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8}) {
    cs.push_back({std::string("fill ") + dn(dt), 0, [dt](Device d) {
      Tensor o = out({1001}, dt, d);
      be(d).fill(o, 3.5);
      Tensor z = out({7}, dt, d);
      be(d).fill(z, 0.0);
      return std::vector<Tensor>{o, z};
    }});
    if (dt == DType::u8) continue;
    cs.push_back({std::string("arange ") + dn(dt), 0, [dt](Device d) {
      Tensor o = out({1000}, dt, d);
      be(d).arange(o, -3.0, is_floating(dt) ? 0.37 : 3.0);
      return std::vector<Tensor>{o};
    }});
  }
}

void add_random_cases(std::vector<Case>& cs) {
  for (DType dt : {DType::f32, DType::f64}) {
    for (uint64_t offset : {uint64_t(0), uint64_t(17)}) {
      cs.push_back({std::string("random_uniform ") + dn(dt) + " offset " + std::to_string(offset), 0, [dt, offset](Device d) {
        Tensor o = out({100003}, dt, d);
        be(d).random_uniform(o, 1234, offset, -2.0, 3.0);
        return std::vector<Tensor>{o};
      }});
      // log/cos come from different math libraries: equal up to the last bits of a double
      cs.push_back({std::string("random_normal ") + dn(dt) + " offset " + std::to_string(offset),
                    dt == DType::f32 ? 1e-6 : 1e-13, [dt, offset](Device d) {
        Tensor o = out({100003}, dt, d);
        be(d).random_normal(o, 99, offset, 0.5, 2.0);
        return std::vector<Tensor>{o};
      }});
    }
    for (double p : {0.0, 0.3, 1.0}) {
      cs.push_back({std::string("dropout_mask ") + dn(dt) + " p=" + std::to_string(p), 0, [dt, p](Device d) {
        Tensor m = out({100001}, dt, d);
        be(d).dropout_mask(m, p, 7, 12);
        return std::vector<Tensor>{m};
      }});
    }
  }
}

void add_elementwise_cases(std::vector<Case>& cs) {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int o = 0; o <= int(UnaryOp::GtScalar); ++o) {
      const UnaryOp op = UnaryOp(o);
      const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::PowScalar ||
                            op == UnaryOp::Recip;
      const double lo = positive ? 0.1 : -3, hi = 3;
      double p = 0, q = 0;
      if (op == UnaryOp::PowScalar) p = 1.7;
      if (op == UnaryOp::Clamp) { p = -0.5; q = 0.8; }
      if (op == UnaryOp::Affine) { p = 2.5; q = -1.25; }
      if (op == UnaryOp::GtScalar) p = 0.1;
      cs.push_back({std::string("unary ") + unary_name(op) + " " + dn(dt) + " contiguous/transposed/broadcast", tol_ew(dt),
                    [=](Device d) {
        std::vector<Tensor> r;
        Tensor a = make({1037}, dt, d, 10 + o, lo, hi), oa = out({1037}, dt, d);
        be(d).unary(op, a, oa, p, q);
        Tensor b = make({23, 11}, dt, d, 40 + o, lo, hi).t(), ob = out({11, 23}, dt, d);
        be(d).unary(op, b, ob, p, q);
        Tensor c = make({1, 11}, dt, d, 70 + o, lo, hi).expand({7, 11}), oc = out({7, 11}, dt, d);
        be(d).unary(op, c, oc, p, q);
        return std::vector<Tensor>{oa, ob, oc};
      }});
    }
    for (int o = 0; o <= int(BinaryOp::SiluBwd); ++o) {
      const BinaryOp op = BinaryOp(o);
      const bool cmp = op >= BinaryOp::Eq && op <= BinaryOp::Ge;
      const double alo = op == BinaryOp::Pow ? 0.1 : -2, ahi = 2;
      const double blo = op == BinaryOp::Div ? 0.5 : -2, bhi = 2;
      cs.push_back({std::string("binary ") + binary_name(op) + " " + dn(dt) + " same/broadcast/scalar/permuted", tol_ew(dt),
                    [=](Device d) {
        auto mk = [&](const Shape& s, uint64_t seed, double lo, double hi) {
          return cmp ? make_q(s, dt, d, seed, lo, hi) : make(s, dt, d, seed, lo, hi);
        };
        const Shape S{3, 5, 7};
        Tensor a1 = mk(S, 100 + o, alo, ahi), b1 = mk(S, 200 + o, blo, bhi), o1 = out(S, dt, d);
        be(d).binary(op, a1, b1, o1);
        Tensor a2 = mk({3, 1, 7}, 300 + o, alo, ahi).expand(S), b2 = mk({1, 5, 7}, 400 + o, blo, bhi).expand(S);
        Tensor o2 = out(S, dt, d);
        be(d).binary(op, a2, b2, o2);
        Tensor b3 = mk({}, 500 + o, blo, bhi).expand(S), o3 = out(S, dt, d);
        be(d).binary(op, a1, b3, o3);
        Tensor a4 = mk({7, 5, 3}, 600 + o, alo, ahi).permute({2, 1, 0}), o4 = out(S, dt, d);
        be(d).binary(op, a4, b1, o4);
        return std::vector<Tensor>{o1, o2, o3, o4};
      }});
    }
    cs.push_back({std::string("where ") + dn(dt) + " broadcast", 0, [dt](Device d) {
      std::vector<int64_t> c(24);
      for (size_t i = 0; i < c.size(); ++i) c[i] = int64_t((i * 7 + 3) % 5 < 2);
      Tensor cond = ints(c, {4, 1, 6}, d).to(DType::u8).expand({4, 5, 6});
      Tensor a = make({4, 5, 6}, dt, d, 11), b = make({1, 5, 1}, dt, d, 12).expand({4, 5, 6}), o = out({4, 5, 6}, dt, d);
      be(d).where(cond, a, b, o);
      return std::vector<Tensor>{o};
    }});
  }
}

void add_reduce_cases(std::vector<Case>& cs) {
  struct R { int64_t outer, n, inner; };
  const std::vector<R> shapes = {{1, 100000, 1}, {7, 513, 1}, {3, 1000, 5}, {4, 3, 1000}, {1, 1, 1},
                                 {100, 2, 1},    {2, 70000, 3}, {300, 64, 1}, {1, 5000, 2}};
  const char* names[] = {"sum", "mean", "max", "min"};
  for (DType dt : {DType::f32, DType::f64}) {
    for (int o = 0; o < 4; ++o) {
      const ReduceOp op = ReduceOp(o);
      const bool exact = op == ReduceOp::Max || op == ReduceOp::Min;
      // f32 sums use positive data (no cancellation: the CPU's float reference stays accurate)
      const double lo = dt == DType::f32 ? 0 : -1;
      cs.push_back({std::string("reduce ") + names[o] + " " + dn(dt), exact ? 0 : (dt == DType::f32 ? 2e-5 : 1e-12),
                    [=](Device d) {
        std::vector<Tensor> r;
        for (size_t i = 0; i < shapes.size(); ++i) {
          const R s = shapes[i];
          Tensor x = make({s.outer * s.n * s.inner}, dt, d, 900 + i, lo, 1), y = out({s.outer * s.inner}, dt, d);
          be(d).reduce(op, x, s.outer, s.n, s.inner, y);
          r.push_back(y);
        }
        // NaN propagates (max/min/sum) and rows without NaN are unaffected
        auto v = randv(6 * 300, 77, -1, 1);
        v[5] = v[300 * 2 + 100] = v[300 * 4 + 299] = std::numeric_limits<double>::quiet_NaN();
        Tensor x = host(v, {6 * 300}, dt).to(d), y = out({6}, dt, d);
        be(d).reduce(op, x, 6, 300, 1, y);
        r.push_back(y);
        return r;
      }});
    }
    cs.push_back({std::string("argmax ") + dn(dt) + " rows/columns/ties/NaN", 0, [dt](Device d) {
      std::vector<Tensor> r;
      struct R { int64_t outer, n, inner; };
      for (R s : {R{5, 1000, 1}, R{3, 10, 4}, R{2, 100, 1}, R{4, 70, 3}}) {
        Tensor x = make_q({s.outer * s.n * s.inner}, dt, d, 31 + s.n), y = out({s.outer * s.inner}, DType::i64, d);
        be(d).argmax(x, s.outer, s.n, s.inner, y);
        r.push_back(y);
      }
      auto v = randv(4 * 200, 5, -1, 1);
      v[0] = std::numeric_limits<double>::quiet_NaN();          // row 0: NaN first -> 0
      v[200 + 50] = std::numeric_limits<double>::quiet_NaN();   // row 1: NaN in the middle is skipped
      for (int i = 0; i < 200; ++i) v[size_t(600 + i)] = std::numeric_limits<double>::quiet_NaN();  // row 3 all NaN
      Tensor x = host(v, {800}, dt).to(d), y = out({4}, DType::i64, d);
      be(d).argmax(x, 4, 200, 1, y);
      r.push_back(y);
      return r;
    }});
  }
}

void add_gemm_cases(std::vector<Case>& cs) {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      cs.push_back({std::string("gemm ") + (ta ? "T" : "N") + (tb ? "T" : "N") + " " + dn(dt) + " 37x29x53 + padded ld",
                    tol_mm(dt), [=](Device d) {
        const int64_t M = 37, N = 29, K = 53;
        std::vector<Tensor> r;
        for (int64_t pad : {0, 5}) {
          const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
          Tensor A = make({(ta ? K : M) * lda}, dt, d, 50 + t);
          Tensor B = make({(tb ? N : K) * ldb}, dt, d, 60 + t);
          Tensor C = make({M * ldc}, dt, d, 70 + t);
          be(d).gemm(ta, tb, M, N, K, 1.0, A, lda, 0, B, ldb, 0, 0.0, C, ldc, 0, 1);
          r.push_back(C);
        }
        return r;
      }});
    }
    cs.push_back({std::string("gemm batched, B shared (stride 0), alpha/beta ") + dn(dt), tol_mm(dt), [dt](Device d) {
      const int64_t M = 16, N = 24, K = 8, batch = 3;
      Tensor A = make({batch * M * K}, dt, d, 81), B = make({K * N}, dt, d, 82), C = make({batch * M * N}, dt, d, 83);
      be(d).gemm(false, false, M, N, K, 0.5, A, K, M * K, B, N, 0, 2.0, C, N, M * N, batch);
      Tensor A2 = make({M * K}, dt, d, 84), B2 = make({batch * N * K}, dt, d, 85), C2 = make({batch * M * N}, dt, d, 86);
      be(d).gemm(false, true, M, N, K, -1.0, A2, K, 0, B2, K, N * K, 1.0, C2, N, M * N, batch);
      return std::vector<Tensor>{C, C2};
    }});
    cs.push_back({std::string("gemm K = 0 scales C by beta ") + dn(dt), 0, [dt](Device d) {
      Tensor A = make({4}, dt, d, 91), B = make({4}, dt, d, 92), C = make({6 * 5}, dt, d, 93), C0 = make({6 * 5}, dt, d, 94);
      be(d).gemm(false, false, 6, 5, 0, 1.0, A, 1, 0, B, 5, 0, 0.5, C, 5, 0, 1);
      be(d).gemm(false, false, 6, 5, 0, 1.0, A, 1, 0, B, 5, 0, 0.0, C0, 5, 0, 1);
      return std::vector<Tensor>{C, C0};
    }});
  }
}

void add_nn_cases(std::vector<Case>& cs) {
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = tol_ew(dt);
    for (bool log : {false, true}) {
      const std::string nm = log ? "log_softmax" : "softmax";
      cs.push_back({nm + " forward/backward K=1,3 " + dn(dt), tol, [=](Device d) {
        std::vector<Tensor> r;
        const int64_t rows = 13;
        for (int64_t cols : {1, 7, 300, 5000}) {
          Tensor x = make({rows, cols}, dt, d, 5 + cols, -5, 5), y = out({rows, cols}, dt, d);
          be(d).softmax(x, rows, cols, log, y);
          r.push_back(y);
          for (int64_t K : {1, 3}) {
            Tensor gy = make({K * rows, cols}, dt, d, 17 + cols + K), gx = out({K * rows, cols}, dt, d);
            be(d).softmax_backward(y, gy, rows, cols, K, log, gx);
            r.push_back(gx);
          }
        }
        return r;
      }});
    }
    cs.push_back({std::string("layer_norm forward/backward K=1,2 (with/without affine) ") + dn(dt), tol, [=](Device d) {
      std::vector<Tensor> r;
      struct S { int64_t rows, cols; bool affine; };
      for (S s : {S{11, 1, true}, S{11, 64, true}, S{5, 1000, false}, S{600, 33, true}}) {
        Tensor x = make({s.rows, s.cols}, dt, d, 3 + s.cols, -2, 3);
        Tensor g = s.affine ? make({s.cols}, dt, d, 4, 0.5, 1.5) : Tensor(), b = s.affine ? make({s.cols}, dt, d, 5) : Tensor();
        Tensor y = out({s.rows, s.cols}, dt, d), mu = out({s.rows}, dt, d), rs = out({s.rows}, dt, d);
        be(d).layer_norm(x, g, b, s.rows, s.cols, 1e-5, y, mu, rs);
        r.insert(r.end(), {y, mu, rs});
        for (int64_t K : {1, 2}) {
          Tensor gy = make({K * s.rows, s.cols}, dt, d, 6 + K), gx = out({K * s.rows, s.cols}, dt, d);
          Tensor dg = out({K, s.cols}, dt, d), db = out({K, s.cols}, dt, d);
          be(d).layer_norm_backward(x, g, mu, rs, gy, s.rows, s.cols, K, gx, dg, db);
          r.insert(r.end(), {gx, dg, db});
        }
        // only gx; then only the parameter gradients
        Tensor gy = make({s.rows, s.cols}, dt, d, 8), gx = out({s.rows, s.cols}, dt, d), none;
        be(d).layer_norm_backward(x, g, mu, rs, gy, s.rows, s.cols, 1, gx, none, none);
        Tensor dg = out({1, s.cols}, dt, d), nogx;
        be(d).layer_norm_backward(x, g, mu, rs, gy, s.rows, s.cols, 1, nogx, dg, none);
        r.insert(r.end(), {gx, dg});
      }
      return r;
    }});
    // Fused causal attention: fp32 accumulation over Dh and over up to T keys in a different order
    // than the CPU's BLAS products, so GEMM tolerances. Dh from 5 (partial feature tiles) to 128
    // (the largest supported), T across tile edges (32), odd head counts, K = 1 and 3.
    cs.push_back({std::string("attention forward/backward K=1,3 ") + dn(dt), tol_mm(dt), [=](Device d) {
      std::vector<Tensor> r;
      struct S { int64_t BH, T, Dh; };
      for (S s : {S{1, 1, 8}, S{3, 7, 16}, S{5, 64, 64}, S{3, 130, 64}, S{2, 33, 128}, S{1, 40, 5}, S{2, 65, 96}}) {
        const Shape sh{s.BH, s.T, s.Dh};
        const double scale = 1.0 / std::sqrt(double(s.Dh));
        Tensor q = make(sh, dt, d, 31 + s.T, -2, 2), k = make(sh, dt, d, 32 + s.T, -2, 2), v = make(sh, dt, d, 33 + s.T);
        Tensor o = out(sh, dt, d), lse = out({s.BH, s.T}, dt, d);
        be(d).attention_forward(q, k, v, s.BH, s.T, s.Dh, scale, o, lse);
        r.insert(r.end(), {o, lse});
        for (int64_t K : {1, 3}) {
          const Shape gs{K * s.BH, s.T, s.Dh};
          Tensor gy = make(gs, dt, d, 40 + K + s.T), gq = out(gs, dt, d), gk = out(gs, dt, d), gv = out(gs, dt, d);
          be(d).attention_backward(q, k, v, o, lse, gy, s.BH, s.T, s.Dh, K, scale, gq, gk, gv);
          r.insert(r.end(), {gq, gk, gv});
        }
      }
      return r;
    }});
    cs.push_back({std::string("batch_norm train/eval forward, backward K=2 ") + dn(dt), tol, [=](Device d) {
      std::vector<Tensor> r;
      struct S { int64_t N, C, S; };
      for (S s : {S{4, 3, 5}, S{16, 6, 1}, S{2, 2, 10000}}) {
        const Shape xs{s.N, s.C, s.S};
        Tensor x = make(xs, dt, d, 21 + s.S, -1, 2), g = make({s.C}, dt, d, 22, 0.5, 1.5), b = make({s.C}, dt, d, 23);
        Tensor rm = make({s.C}, dt, d, 24), rv = make({s.C}, dt, d, 25, 0.5, 2);
        Tensor y = out(xs, dt, d), mu = out({s.C}, dt, d), is = out({s.C}, dt, d);
        be(d).batch_norm(x, g, b, rm, rv, true, 0.1, 1e-5, s.N, s.C, s.S, y, mu, is);
        r.insert(r.end(), {y, mu, is, rm, rv});
        const int64_t K = 2;
        Tensor gy = make({K * s.N, s.C, s.S}, dt, d, 26), gx = out({K * s.N, s.C, s.S}, dt, d);
        Tensor dg = out({K, s.C}, dt, d), db = out({K, s.C}, dt, d);
        be(d).batch_norm_backward(x, g, mu, is, gy, s.N, s.C, s.S, K, true, gx, dg, db);
        r.insert(r.end(), {gx, dg, db});
        // eval: running statistics, no affine parameters
        Tensor ye = out(xs, dt, d), mue = out({s.C}, dt, d), ise = out({s.C}, dt, d), none, none2;
        be(d).batch_norm(x, none, none2, rm, rv, false, 0.1, 1e-5, s.N, s.C, s.S, ye, mue, ise);
        Tensor gxe = out({s.N, s.C, s.S}, dt, d), dge = out({1, s.C}, dt, d), dbe = out({1, s.C}, dt, d);
        be(d).batch_norm_backward(x, none, mue, ise, gy.narrow(0, 0, s.N), s.N, s.C, s.S, 1, false, gxe, dge, dbe);
        r.insert(r.end(), {ye, mue, ise, gxe, dge, dbe});
      }
      return r;
    }});
    cs.push_back({std::string("cross_entropy forward/backward K=2, ignore_index, smoothing ") + dn(dt), tol, [=](Device d) {
      std::vector<Tensor> r;
      const int64_t N = 9;
      for (int64_t C : {5, 1000}) {
        std::vector<int64_t> t(N);
        for (int64_t i = 0; i < N; ++i) t[size_t(i)] = i % 4 == 2 ? -100 : (i * 7 + 1) % C;
        Tensor tg = ints(t, {N}, d);
        Tensor x = make({N, C}, dt, d, 41 + C, -4, 4);
        for (double ls : {0.0, 0.1}) {
          Tensor loss = out({N}, dt, d), lse = out({N}, dt, d);
          be(d).cross_entropy(x, tg, N, C, -100, ls, loss, lse);
          const int64_t K = 2;
          Tensor gl = make({K, N}, dt, d, 43), gx = out({K, N, C}, dt, d);
          be(d).cross_entropy_backward(x, tg, lse, gl, N, C, K, -100, ls, gx);
          r.insert(r.end(), {loss, lse, gx});
        }
      }
      return r;
    }});
    cs.push_back({std::string("embedding forward/backward K=2 (repeats, unused rows) ") + dn(dt), 0, [=](Device d) {
      std::vector<Tensor> r;
      for (int64_t D : {7, 1000}) {
        const int64_t V = 10, n = 23, K = 2;
        std::vector<int64_t> iv(n);
        for (int64_t i = 0; i < n; ++i) iv[size_t(i)] = (i * i + 3) % 7;  // rows 7..9 unused, repeats
        Tensor idx = ints(iv, {n}, d), w = make({V, D}, dt, d, 51 + D), o = out({n, D}, dt, d);
        be(d).embedding(w, idx, o);
        Tensor gy = make({K, n, D}, dt, d, 52), gw = out({K, V, D}, dt, d);
        be(d).embedding_backward(gy, idx, K, V, D, gw);
        r.insert(r.end(), {o, gw});
      }
      return r;
    }});
    cs.push_back({std::string("sgd_update momentum/dampening/nesterov/weight decay ") + dn(dt), tol, [=](Device d) {
      std::vector<Tensor> r;
      struct S { double mom, damp, wd; bool nesterov, first; };
      int i = 0;
      for (S s : {S{0.9, 0.1, 0.01, false, false}, S{0.9, 0.0, 0.0, true, false}, S{0.5, 0.0, 0.1, false, true},
                  S{0.0, 0.0, 0.01, false, false}}) {
        Tensor p = make({1001}, dt, d, 60 + i), g = make({1001}, dt, d, 61 + i);
        Tensor buf = s.mom != 0 ? make({1001}, dt, d, 62 + i) : Tensor();
        be(d).sgd_update(p, g, buf, 0.05, s.mom, s.damp, s.wd, s.nesterov, s.first);
        r.push_back(p);
        if (buf.defined()) r.push_back(buf);
        ++i;
      }
      return r;
    }});
    cs.push_back({std::string("adam_update and adamw_update ") + dn(dt), dt == DType::f32 ? 1e-5 : 1e-12, [=](Device d) {
      std::vector<Tensor> r;
      for (bool decoupled : {false, true})
        for (double wd : {0.0, 0.01}) {
          Tensor p = make({1001}, dt, d, 70), g = make({1001}, dt, d, 71), m = make({1001}, dt, d, 72, -0.1, 0.1);
          Tensor v = make({1001}, dt, d, 73, 0, 0.01);
          be(d).adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, wd, 3, decoupled);
          r.insert(r.end(), {p, m, v});
        }
      return r;
    }});
  }
}

void add_conv_pool_cases(std::vector<Case>& cs) {
  struct Cv { int64_t N, C, H, W, OC; ConvParams p; bool bias; };
  ConvParams p3; p3.kh = p3.kw = 3; p3.ph = p3.pw = 1;
  ConvParams pd; pd.kh = 3; pd.kw = 2; pd.sh = 2; pd.sw = 1; pd.ph = 1; pd.pw = 0; pd.dh = 2; pd.dw = 1;
  ConvParams p1;
  const std::vector<Cv> convs = {{2, 3, 9, 11, 4, p3, true}, {3, 5, 12, 10, 6, pd, false}, {2, 8, 5, 5, 3, p1, true}};
  for (DType dt : {DType::f32, DType::f64}) {
    cs.push_back({std::string("conv2d forward / backward data / backward filter ") + dn(dt), tol_mm(dt), [=](Device d) {
      std::vector<Tensor> r;
      int i = 0;
      for (const Cv& c : convs) {
        const int64_t OH = c.p.out_h(c.H), OW = c.p.out_w(c.W);
        Tensor x = make({c.N, c.C, c.H, c.W}, dt, d, 100 + i), w = make({c.OC, c.C, c.p.kh, c.p.kw}, dt, d, 101 + i);
        Tensor b = c.bias ? make({c.OC}, dt, d, 102 + i) : Tensor();
        Tensor y = out({c.N, c.OC, OH, OW}, dt, d);
        be(d).conv2d(x, w, b, c.p, y);
        Tensor gy = make({c.N, c.OC, OH, OW}, dt, d, 103 + i), gx = out({c.N, c.C, c.H, c.W}, dt, d);
        be(d).conv2d_backward_data(gy, w, c.p, gx);
        Tensor gw = out({c.OC, c.C, c.p.kh, c.p.kw}, dt, d);
        be(d).conv2d_backward_filter(x, gy, c.p, gw);
        r.insert(r.end(), {y, gx, gw});
        ++i;
      }
      return r;
    }});
    cs.push_back({std::string("max_pool2d forward (ties, padding, NaN) / backward K=2 ") + dn(dt), 0, [=](Device d) {
      std::vector<Tensor> r;
      PoolParams a; a.kh = a.kw = 3; a.sh = a.sw = 2; a.ph = a.pw = 1;
      PoolParams b;  // 2x2 stride 2
      PoolParams c; c.kh = c.kw = 3; c.sh = c.sw = 1; c.ph = c.pw = 1;
      int i = 0;
      for (const PoolParams& p : {a, b, c}) {
        const int64_t N = 2, C = 3, H = 9, W = 8, OH = p.out_h(H), OW = p.out_w(W);
        auto v = randv(size_t(N * C * H * W), 200 + i, -2, 2);
        for (auto& x : v) x = std::round(x * 2) / 2;  // ties
        v[5] = std::numeric_limits<double>::quiet_NaN();
        Tensor x = host(v, {N, C, H, W}, dt).to(d), y = out({N, C, OH, OW}, dt, d), idx = out({N, C, OH, OW}, DType::i64, d);
        be(d).max_pool2d(x, p, y, idx);
        const int64_t K = 2;
        Tensor gy = make({K * N, C, OH, OW}, dt, d, 210 + i), gx = out({K * N, C, H, W}, dt, d);
        be(d).max_pool2d_backward(gy, idx, K, gx);
        r.insert(r.end(), {y, idx, gx});
        ++i;
      }
      return r;
    }});
    cs.push_back({std::string("avg_pool2d forward / backward (count_include_pad on/off) ") + dn(dt), 0, [=](Device d) {
      std::vector<Tensor> r;
      for (bool inc : {true, false}) {
        PoolParams p; p.kh = 3; p.kw = 2; p.sh = 2; p.sw = 1; p.ph = 1; p.pw = 1; p.count_include_pad = inc;
        const int64_t N = 3, C = 2, H = 10, W = 7, OH = p.out_h(H), OW = p.out_w(W);
        Tensor x = make({N, C, H, W}, dt, d, 300 + inc), y = out({N, C, OH, OW}, dt, d);
        be(d).avg_pool2d(x, p, y);
        Tensor gy = make({2 * N, C, OH, OW}, dt, d, 301 + inc), gx = out({2 * N, C, H, W}, dt, d);
        be(d).avg_pool2d_backward(gy, p, gx);
        r.insert(r.end(), {y, gx});
      }
      return r;
    }});
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> cs;
  add_copy_cases(cs);
  add_random_cases(cs);
  add_elementwise_cases(cs);
  add_reduce_cases(cs);
  add_gemm_cases(cs);
  add_nn_cases(cs);
  add_conv_pool_cases(cs);
  return cs;
}

}  // namespace

TEST_CASE("cuda: init registers the backend; device summary" * doctest::skip(kNoGpu)) {
  polyhead::cuda::init();
  polyhead::cuda::init();  // twice is harmless
  CHECK(backend_available(Device::Type::CUDA));
  CHECK(std::string(backend_for(gpu()).name()) == "cuda");
  const std::string s = polyhead::cuda::device_summary();
  MESSAGE(s);
  CHECK(s.find("cuda:0") != std::string::npos);
  CHECK(polyhead::cuda::device_count() >= 1);
}

TEST_CASE("cuda: every primitive matches the cpu backend (op table)" * doctest::skip(kNoGpu)) {
  ensure_init();
  polyhead::cuda::set_tf32(false);
  int n_ok = 0, n_fail = 0;
  for (const Case& c : all_cases()) {
    std::vector<Tensor> g, w;
    try {
      g = c.run(gpu());
      w = c.run(Device::cpu());
    } catch (const std::exception& e) {
      ++n_fail;
      FAIL_CHECK(c.name << ": threw " << e.what());
      continue;
    }
    REQUIRE(g.size() == w.size());
    bool ok = true;
    for (size_t i = 0; i < g.size(); ++i) {
      const Diff d = diff(vals(g[i]), vals(w[i]), c.tol);
      if (d.bad) {
        ok = false;
        FAIL_CHECK(c.name << " output " << i << " " << w[i].str() << ": " << d.bad << " of " << w[i].numel()
                          << " elements off; worst error " << d.worst << " at " << d.at << " (cuda " << d.got
                          << ", cpu " << d.want << "), tolerance " << c.tol);
      }
    }
    (ok ? n_ok : n_fail)++;
  }
  MESSAGE("op table: " << n_ok << " cases match, " << n_fail << " differ");
  CHECK(n_fail == 0);
}

TEST_CASE("cuda: results are bit-identical run to run" * doctest::skip(kNoGpu)) {
  ensure_init();
  const Device d = gpu();
  auto run = [&]() {
    std::vector<Tensor> r;
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = make({3 * 200000}, dt, d, 1), s = out({3}, dt, d);
      be(d).reduce(ReduceOp::Sum, x, 3, 200000, 1, s);
      Tensor x2 = make({2 * 5000 * 3}, dt, d, 2), s2 = out({6}, dt, d);
      be(d).reduce(ReduceOp::Sum, x2, 2, 5000, 3, s2);
      const int64_t rows = 4096, cols = 257, K = 2;
      Tensor xl = make({rows, cols}, dt, d, 3), g = make({cols}, dt, d, 4), b = make({cols}, dt, d, 5);
      Tensor y = out({rows, cols}, dt, d), mu = out({rows}, dt, d), rs = out({rows}, dt, d);
      be(d).layer_norm(xl, g, b, rows, cols, 1e-5, y, mu, rs);
      Tensor gy = make({K * rows, cols}, dt, d, 6), gx = out({K * rows, cols}, dt, d), dg = out({K, cols}, dt, d),
             db = out({K, cols}, dt, d);
      be(d).layer_norm_backward(xl, g, mu, rs, gy, rows, cols, K, gx, dg, db);
      Tensor xb = make({64, 16, 100}, dt, d, 7), yb = out({64, 16, 100}, dt, d), mb = out({16}, dt, d), ib = out({16}, dt, d);
      Tensor none, none2, rm, rv;
      be(d).batch_norm(xb, none, none2, rm, rv, true, 0.1, 1e-5, 64, 16, 100, yb, mb, ib);
      Tensor gyb = make({64, 16, 100}, dt, d, 8), gxb = out({64, 16, 100}, dt, d), dgb = out({1, 16}, dt, d),
             dbb = out({1, 16}, dt, d);
      be(d).batch_norm_backward(xb, none, mb, ib, gyb, 64, 16, 100, 1, true, gxb, dgb, dbb);
      ConvParams p; p.kh = p.kw = 3; p.ph = p.pw = 1;
      Tensor xc = make({16, 8, 20, 20}, dt, d, 9), gyc = make({16, 12, 20, 20}, dt, d, 10), gw = out({12, 8, 3, 3}, dt, d);
      be(d).conv2d_backward_filter(xc, gyc, p, gw);
      Tensor wc = make({12, 8, 3, 3}, dt, d, 11), gxc = out({16, 8, 20, 20}, dt, d);
      be(d).conv2d_backward_data(gyc, wc, p, gxc);
      std::vector<int64_t> iv(5000);
      for (size_t i = 0; i < iv.size(); ++i) iv[i] = int64_t((i * 31) % 97);
      Tensor idx = ints(iv, {5000}, d), gye = make({5000, 64}, dt, d, 12), gwe = out({1, 100, 64}, dt, d);
      be(d).embedding_backward(gye, idx, 1, 100, 64, gwe);
      Tensor A = make({300 * 400}, dt, d, 13), B = make({400 * 200}, dt, d, 14), C = out({300 * 200}, dt, d);
      be(d).gemm(false, false, 300, 200, 400, 1.0, A, 400, 0, B, 200, 0, 0.0, C, 200, 0, 1);
      Tensor lg = make({64, 1000}, dt, d, 15), ls = out({64}, dt, d), lse = out({64}, dt, d);
      std::vector<int64_t> tv(64);
      for (size_t i = 0; i < tv.size(); ++i) tv[i] = int64_t(i * 13 % 1000);
      be(d).cross_entropy(lg, ints(tv, {64}, d), 64, 1000, -100, 0.1, ls, lse);
      r.insert(r.end(), {s, s2, y, gx, dg, db, yb, gxb, dgb, dbb, gw, gxc, gwe, C, ls, lse});
    }
    return r;
  };
  std::vector<Tensor> a = run(), b = run();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("output " << i << " " << a[i].str());
    CHECK(identical(a[i], b[i]));
  }
}

TEST_CASE("cuda: fused attention is bit-identical run to run; unsupported head sizes are errors" * doctest::skip(kNoGpu)) {
  ensure_init();
  const Device d = gpu();
  auto run = [&](DType dt, int64_t BH, int64_t T, int64_t Dh, int64_t K) {
    const Shape sh{BH, T, Dh}, gs{K * BH, T, Dh};
    const double scale = 1.0 / std::sqrt(double(Dh));
    Tensor q = make(sh, dt, d, 1), k = make(sh, dt, d, 2), v = make(sh, dt, d, 3), gy = make(gs, dt, d, 4);
    Tensor o = out(sh, dt, d), lse = out({BH, T}, dt, d), gq = out(gs, dt, d), gk = out(gs, dt, d), gv = out(gs, dt, d);
    be(d).attention_forward(q, k, v, BH, T, Dh, scale, o, lse);
    be(d).attention_backward(q, k, v, o, lse, gy, BH, T, Dh, K, scale, gq, gk, gv);
    return std::vector<Tensor>{o, lse, gq, gk, gv};
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t Dh : {64, 128}) {
      auto a = run(dt, 12, 300, Dh, 2), b = run(dt, 12, 300, Dh, 2);
      for (size_t i = 0; i < a.size(); ++i) {
        INFO(dn(dt) << " Dh " << Dh << " output " << i);
        CHECK(identical(a[i], b[i]));
      }
    }
  }
  Tensor q = make({1, 4, 129}, DType::f32, d, 5), o = out({1, 4, 129}, DType::f32, d), lse = out({1, 4}, DType::f32, d);
  CHECK_THROWS_AS(be(d).attention_forward(q, q, q, 1, 4, 129, 0.1, o, lse), Error);
}

TEST_CASE("cuda: Philox streams are identical to the cpu's" * doctest::skip(kNoGpu)) {
  ensure_init();
  const int64_t n = 1 << 20;
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor gu = out({n}, dt, gpu()), cu = out({n}, dt, Device::cpu());
    be(gpu()).random_uniform(gu, 0xdeadbeefcafeull, 12345, 0.0, 1.0);
    be(Device::cpu()).random_uniform(cu, 0xdeadbeefcafeull, 12345, 0.0, 1.0);
    CHECK(identical(gu, cu));
    Tensor gm = out({n}, dt, gpu()), cm = out({n}, dt, Device::cpu());
    be(gpu()).dropout_mask(gm, 0.25, 42, 8);
    be(Device::cpu()).dropout_mask(cm, 0.25, 42, 8);
    CHECK(identical(gm, cm));
    Tensor gn = out({n}, dt, gpu()), cn = out({n}, dt, Device::cpu());
    be(gpu()).random_normal(gn, 7, 0, 0.0, 1.0);
    be(Device::cpu()).random_normal(cn, 7, 0, 0.0, 1.0);
    const auto a = vals(gn), b = vals(cn);
    size_t same = 0;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      same += a[i] == b[i];
      worst = std::max(worst, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
    }
    MESSAGE("random_normal " << std::string(dtype_name(dt)) << ": " << same << " of " << a.size() << " bit-identical, worst "
                             << worst << " (device log/cos vs the host's libm)");
    CHECK(worst <= (dt == DType::f32 ? 1e-6 : 1e-13));
    if (dt == DType::f32) CHECK(double(same) >= 0.999 * double(a.size()));
  }
  // the global generator path: Tensor::rand on both devices from the same state
  manual_seed(2024);
  Tensor r1 = Tensor::rand({1000}, DType::f32, gpu());
  manual_seed(2024);
  Tensor r2 = Tensor::rand({1000}, DType::f32, Device::cpu());
  CHECK(identical(r1, r2));
}

TEST_CASE("cuda: caching allocator statistics" * doctest::skip(kNoGpu)) {
  ensure_init();
  polyhead::cuda::empty_cache();
  const auto s0 = polyhead::cuda::memory_stats();
  CHECK(s0.cached == 0);
  CHECK(s0.reserved == s0.allocated);
  size_t big = 0;
  {
    Tensor t = Tensor::empty({3 << 20}, DType::f32, gpu());  // 12 MiB: large pool
    Tensor u = Tensor::empty({100}, DType::f32, gpu());      // 400 B: small pool, rounded to 512
    const auto s1 = polyhead::cuda::memory_stats();
    CHECK(s1.allocated >= s0.allocated + (size_t(12) << 20) + 512);
    CHECK(s1.requested >= s0.requested + (size_t(12) << 20) + 400);
    CHECK(s1.peak_allocated >= s1.allocated);
    CHECK(s1.device_total > 0);
    big = s1.allocated - s0.allocated;
  }
  const auto s2 = polyhead::cuda::memory_stats();
  CHECK(s2.allocated == s0.allocated);
  CHECK(s2.cached >= big);  // freed blocks stay cached
  {
    Tensor t = Tensor::empty({3 << 20}, DType::f32, gpu());  // same size: served from the cache
    const auto s3 = polyhead::cuda::memory_stats();
    CHECK(s3.num_cache_hits > s2.num_cache_hits);
    CHECK(s3.num_device_mallocs == s2.num_device_mallocs);
  }
  polyhead::cuda::empty_cache();
  const auto s4 = polyhead::cuda::memory_stats();
  CHECK(s4.cached == 0);
  polyhead::cuda::reset_peak();
  CHECK(polyhead::cuda::memory_stats().peak_allocated == polyhead::cuda::memory_stats().allocated);
}

TEST_CASE("cuda: out of memory is a polyhead::Error naming the request, usage and cache" * doctest::skip(kNoGpu)) {
  ensure_init();
  const auto before = polyhead::cuda::memory_stats();
  std::string msg;
  try {
    Tensor t = Tensor::empty({int64_t(1) << 48}, DType::f32, gpu());  // 1 PiB
  } catch (const Error& e) {
    msg = e.what();
  }
  MESSAGE(msg);
  CHECK(msg.find("out of memory") != std::string::npos);
  CHECK(msg.find("tried to allocate 1.00 PiB") != std::string::npos);
  CHECK(msg.find("in use by tensors") != std::string::npos);
  CHECK(msg.find("cached by the allocator") != std::string::npos);
  CHECK(msg.find("HINT") != std::string::npos);
  CHECK(polyhead::cuda::memory_stats().num_ooms > before.num_ooms);
  // the device still works afterwards
  Tensor ok = Tensor::ones({1000}, DType::f32, gpu());
  CHECK(ops::sum(ok).item() == doctest::Approx(1000.0));
}

TEST_CASE("cuda: TF32 switch" * doctest::skip(kNoGpu)) {
  ensure_init();
  const bool was = polyhead::cuda::tf32();
  const int64_t M = 256, N = 256, K = 1024;
  Tensor A = make({M * K}, DType::f32, gpu(), 1), B = make({K * N}, DType::f32, gpu(), 2);
  Tensor A64 = A.to(DType::f64), B64 = B.to(DType::f64);
  Tensor ref = out({M * N}, DType::f64, gpu());
  be(gpu()).gemm(false, false, M, N, K, 1.0, A64, K, 0, B64, N, 0, 0.0, ref, N, 0, 1);
  auto err = [&](bool tf32) {
    polyhead::cuda::set_tf32(tf32);
    CHECK(polyhead::cuda::tf32() == tf32);
    Tensor C = out({M * N}, DType::f32, gpu());
    be(gpu()).gemm(false, false, M, N, K, 1.0, A, K, 0, B, N, 0, 0.0, C, N, 0, 1);
    return diff(vals(C), vals(ref), 1.0).worst;
  };
  const double off = err(false), on = err(true);
  polyhead::cuda::set_tf32(was);
  MESSAGE("f32 GEMM 256x256x1024 worst error vs f64: TF32 off " << off << ", TF32 on " << on);
  CHECK(off < 1e-4);     // full f32 (like the CPU's f32 GEMM)
  CHECK(on < 2e-2);      // TF32 rounds the inputs to 10-bit mantissas ...
  CHECK(on > 4 * off);   // ... so the switch visibly takes effect
}

// Index errors surface at the next synchronisation (deferred checks): each case synchronises.
TEST_CASE("cuda: index errors are reported as the cpu reports them" * doctest::skip(kNoGpu)) {
  ensure_init();
  const Device d = gpu();
  Tensor w = make({10, 4}, DType::f32, d, 1), o = out({3, 4}, DType::f32, d);
  Tensor idx = ints({1, 12, 3}, {3}, d);
  std::string msg;
  try { be(d).embedding(w, idx, o); be(d).synchronize(); } catch (const Error& e) { msg = e.what(); }
  CHECK(msg.find("index 12 at position 1 is out of range for an embedding of 10 rows") != std::string::npos);
  msg.clear();
  Tensor gy = make({1, 3, 4}, DType::f32, d, 2), gw = out({1, 10, 4}, DType::f32, d);
  try { be(d).embedding_backward(gy, ints({1, 2, -1}, {3}, d), 1, 10, 4, gw); be(d).synchronize(); } catch (const Error& e) { msg = e.what(); }
  CHECK(msg.find("index -1 at position 2") != std::string::npos);
  msg.clear();
  Tensor lg = make({3, 5}, DType::f32, d, 3), loss = out({3}, DType::f32, d), lse = out({3}, DType::f32, d);
  try { be(d).cross_entropy(lg, ints({0, 7, -100}, {3}, d), 3, 5, -100, 0.0, loss, lse); be(d).synchronize(); } catch (const Error& e) { msg = e.what(); }
  CHECK(msg.find("target 7 at row 1 is outside [0, 5)") != std::string::npos);
  msg.clear();
  Tensor gyp = make({1, 1, 2, 2}, DType::f32, d, 4), gxp = out({1, 1, 4, 4}, DType::f32, d);
  try { be(d).max_pool2d_backward(gyp, ints({0, 5, 16, 3}, {1, 1, 2, 2}, d), 1, gxp); be(d).synchronize(); } catch (const Error& e) { msg = e.what(); }
  CHECK(msg.find("index 16 outside the 4x4 plane") != std::string::npos);
  // the stream is still usable
  Tensor ok = out({3, 4}, DType::f32, d);
  be(d).embedding(w, ints({0, 9, 3}, {3}, d), ok);
  CHECK(identical(ok.narrow(0, 1, 1), w.narrow(0, 9, 1)));
}

TEST_CASE("cuda: direct convolution fallback matches cuDNN and the cpu" * doctest::skip(kNoGpu)) {
  ensure_init();
  ConvParams p; p.kh = 3; p.kw = 3; p.sh = 2; p.sw = 1; p.ph = 1; p.pw = 2; p.dh = 1; p.dw = 2;
  for (DType dt : {DType::f32, DType::f64}) {
    auto run = [&](Device d) {
      Tensor x = make({3, 4, 11, 9}, dt, d, 1), w = make({5, 4, 3, 3}, dt, d, 2), b = make({5}, dt, d, 3);
      const int64_t OH = p.out_h(11), OW = p.out_w(9);
      Tensor y = out({3, 5, OH, OW}, dt, d), gy = make({3, 5, OH, OW}, dt, d, 4);
      Tensor gx = out({3, 4, 11, 9}, dt, d), gw = out({5, 4, 3, 3}, dt, d);
      be(d).conv2d(x, w, b, p, y);
      be(d).conv2d_backward_data(gy, w, p, gx);
      be(d).conv2d_backward_filter(x, gy, p, gw);
      return std::vector<Tensor>{y, gx, gw};
    };
    setenv("POLYHEAD_CUDNN_DISABLE", "1", 1);
    std::vector<Tensor> direct = run(gpu());
    unsetenv("POLYHEAD_CUDNN_DISABLE");
    std::vector<Tensor> cudnn = run(gpu()), cpu = run(Device::cpu());
    for (size_t i = 0; i < 3; ++i) {
      expect_match(direct[i], cpu[i], tol_mm(dt), std::string("direct conv output ") + std::to_string(i) + " " + dn(dt));
      expect_match(cudnn[i], cpu[i], tol_mm(dt), std::string("cudnn conv output ") + std::to_string(i) + " " + dn(dt));
    }
  }
}

TEST_CASE("cuda: tensor-level ops run on the device" * doctest::skip(kNoGpu)) {
  ensure_init();
  Tensor a = make({5, 7, 3}, DType::f32, Device::cpu(), 1), b = make({3, 4}, DType::f32, Device::cpu(), 2);
  Tensor ga = a.to(gpu()), gb = b.to(gpu());
  CHECK(ga.device() == gpu());
  expect_match(ops::matmul(ga, gb), ops::matmul(a, b), 1e-5, "matmul");
  expect_match(ops::sum(ga, {1}), ops::sum(a, {1}), 1e-5, "sum over dim 1");
  expect_match(ops::amax(ga), ops::amax(a), 0, "amax");
  expect_match(ops::add(ga, ga.narrow(0, 0, 1)), ops::add(a, a.narrow(0, 0, 1)), 0, "broadcast add");
  expect_match(ga.transpose(0, 2).contiguous(), a.transpose(0, 2).contiguous(), 0, "transpose contiguous");
  expect_match(ops::cat({ga, ga}, 1), ops::cat({a, a}, 1), 0, "cat");
  CHECK(ops::argmax(ga, 2).to(Device::cpu()).to_vector<int64_t>() == ops::argmax(a, 2).to_vector<int64_t>());
}

#else  // no CUDA target in this build

TEST_CASE("cuda: backend not built (configure with -DPOLYHEAD_CUDA=ON)" * doctest::skip(true)) {}

#endif
