// tests/layers/test_layers.cpp: every layer's forward against a naive f64 computation, default
// initialisations, batch-norm running statistics, transformer causality, init functions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/conv.h"
#include "layers/embedding.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pool.h"
#include "layers/sequential.h"

using namespace polyhead;
using polyhead::ag::Variable;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }
std::vector<double> vals(const Variable& v) { return vals(v.data()); }

Tensor randn64(const Shape& s, uint64_t seed) {
  manual_seed(seed);
  return Tensor::randn(s, DType::f64);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
  }
}

struct Stats {
  double mean = 0, std = 0, maxabs = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  for (double x : v) { s.mean += x; s.maxabs = std::max(s.maxabs, std::abs(x)); }
  s.mean /= double(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / double(v.size()));
  return s;
}

// Naive y = x W^T + b over the last dim.
std::vector<double> naive_linear(const std::vector<double>& x, int64_t rows, int64_t in, const std::vector<double>& w,
                                 const std::vector<double>& b, int64_t out) {
  std::vector<double> y(size_t(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[size_t(o)];
      for (int64_t i = 0; i < in; ++i) s += x[size_t(r * in + i)] * w[size_t(o * in + i)];
      y[size_t(r * out + o)] = s;
    }
  return y;
}

}  // namespace

// ------------------------------------------------------------------ Linear

TEST_CASE("Linear: forward matches x W^T + b, with and without bias") {
  for (bool bias : {true, false}) {
    nn::Linear lin(4, 5, bias);
    CHECK(lin.type_name() == "Linear");
    lin.to(DType::f64);
    Tensor x = randn64({2, 3, 4}, 11);
    Variable y = lin(Variable(x));
    CHECK(y.shape() == Shape{2, 3, 5});
    auto want = naive_linear(vals(x), 6, 4, vals(lin.weight), bias ? vals(lin.bias) : std::vector<double>{}, 5);
    check_close(vals(y), want);
    CHECK(lin.named_parameters().size() == (bias ? 2u : 1u));
  }
  nn::Linear lin(4, 5);
  CHECK_THROWS_AS(lin(Variable(Tensor::zeros({2, 3}))), Error);
}

TEST_CASE("Linear and Conv2d: PyTorch default init bounds") {
  manual_seed(5);
  nn::Linear lin(50, 40);
  double b = 1.0 / std::sqrt(50.0);
  Stats w = stats(vals(lin.weight)), bs = stats(vals(lin.bias));
  CHECK(w.maxabs <= b);
  CHECK(w.maxabs > 0.95 * b);  // 2000 draws fill the interval
  CHECK(std::abs(w.mean) < 0.1 * b);
  CHECK(w.std == doctest::Approx(b / std::sqrt(3.0)).epsilon(0.05));
  CHECK(bs.maxabs <= b);
  CHECK(bs.maxabs > 0.5 * b);

  nn::Conv2d conv(3, 16, nn::Size2(5, 3));
  double cb = 1.0 / std::sqrt(3.0 * 5 * 3);
  CHECK(conv.weight.shape() == Shape{16, 3, 5, 3});
  CHECK(conv.bias.shape() == Shape{16});
  Stats cw = stats(vals(conv.weight)), cbs = stats(vals(conv.bias));
  CHECK(cw.maxabs <= cb);
  CHECK(cw.maxabs > 0.95 * cb);
  CHECK(cw.std == doctest::Approx(cb / std::sqrt(3.0)).epsilon(0.08));
  CHECK(cbs.maxabs <= cb);

  // Reproducible from the seed.
  manual_seed(5);
  nn::Linear again(50, 40);
  CHECK(vals(again.weight) == vals(lin.weight));
}

// ------------------------------------------------------------------ Conv2d and pooling

TEST_CASE("Conv2d: forward matches a naive convolution (stride, padding, dilation)") {
  const int64_t N = 2, C = 3, H = 7, W = 6, OC = 4;
  nn::Conv2d conv(nn::Conv2dOptions(C, OC, nn::Size2(3, 2)).stride(nn::Size2(2, 1)).padding(nn::Size2(1, 2)).dilation(nn::Size2(1, 2)));
  CHECK(conv.type_name() == "Conv2d");
  conv.to(DType::f64);
  Tensor x = randn64({N, C, H, W}, 3);
  Variable y = conv(Variable(x));
  const int kh = 3, kw = 2, sh = 2, sw = 1, ph = 1, pw = 2, dh = 1, dw = 2;
  const int64_t OH = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1, OW = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
  REQUIRE(y.shape() == Shape{N, OC, OH, OW});
  auto xv = vals(x), wv = vals(conv.weight), bv = vals(conv.bias);
  std::vector<double> want;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double s = bv[size_t(o)];
          for (int64_t c = 0; c < C; ++c)
            for (int a = 0; a < kh; ++a)
              for (int b = 0; b < kw; ++b) {
                int64_t hi = i * sh - ph + a * dh, wi = j * sw - pw + b * dw;
                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                s += xv[size_t(((n * C + c) * H + hi) * W + wi)] * wv[size_t(((o * C + c) * kh + a) * kw + b)];
              }
          want.push_back(s);
        }
  check_close(vals(y), want);
  CHECK_THROWS_AS(conv(Variable(Tensor::zeros({1, 2, 5, 5}, DType::f64))), Error);
  // Positional constructor and no bias.
  nn::Conv2d c2(3, 2, 3, 1, 1, 1, false);
  CHECK(!c2.bias.defined());
  CHECK(c2(Variable(Tensor::zeros({1, 3, 4, 4}))).shape() == Shape{1, 2, 4, 4});
}

TEST_CASE("MaxPool2d / AvgPool2d match naive pooling") {
  const int64_t N = 2, C = 2, H = 7, W = 6;
  Tensor x = randn64({N, C, H, W}, 9);
  auto xv = vals(x);
  auto naive = [&](int k, int s, int p, bool is_max) {
    int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    std::vector<double> out;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < OH; ++i)
          for (int64_t j = 0; j < OW; ++j) {
            double m = -std::numeric_limits<double>::infinity(), sum = 0;
            for (int a = 0; a < k; ++a)
              for (int b = 0; b < k; ++b) {
                int64_t hi = i * s - p + a, wi = j * s - p + b;
                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                double v = xv[size_t(((n * C + c) * H + hi) * W + wi)];
                m = std::max(m, v);
                sum += v;
              }
            out.push_back(is_max ? m : sum / double(k * k));  // count_include_pad
          }
    return out;
  };
  Variable xv_(x);
  nn::MaxPool2d mp(2);
  CHECK(mp.params().sh == 2);  // stride defaults to the kernel
  CHECK(mp(xv_).shape() == Shape{N, C, 3, 3});
  check_close(vals(mp(xv_)), naive(2, 2, 0, true));
  nn::MaxPool2d mp3(3, 2, 1);
  check_close(vals(mp3(xv_)), naive(3, 2, 1, true));
  nn::AvgPool2d ap(2);
  check_close(vals(ap(xv_)), naive(2, 2, 0, false));
  nn::AvgPool2d ap3(3, 2, 1);
  check_close(vals(ap3(xv_)), naive(3, 2, 1, false));
  CHECK(ap3.type_name() == "AvgPool2d");
  CHECK_THROWS_AS(nn::MaxPool2d(2, 2, 2), Error);  // padding > kernel / 2
}

// ------------------------------------------------------------------ normalisation

namespace {
// Per-channel batch statistics of x viewed as (N, C, S).
void channel_stats(const std::vector<double>& x, int64_t N, int64_t C, int64_t S, std::vector<double>& mean,
                   std::vector<double>& var_biased) {
  mean.assign(size_t(C), 0.0);
  var_biased.assign(size_t(C), 0.0);
  const double M = double(N * S);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean[size_t(c)] += x[size_t((n * C + c) * S + s)];
    mean[size_t(c)] /= M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        double d = x[size_t((n * C + c) * S + s)] - mean[size_t(c)];
        var_biased[size_t(c)] += d * d;
      }
    var_biased[size_t(c)] /= M;
  }
}

std::vector<double> bn_apply(const std::vector<double>& x, int64_t N, int64_t C, int64_t S, const std::vector<double>& mean,
                             const std::vector<double>& var, const std::vector<double>& w, const std::vector<double>& b,
                             double eps) {
  std::vector<double> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        size_t i = size_t((n * C + c) * S + s);
        y[i] = (x[i] - mean[size_t(c)]) / std::sqrt(var[size_t(c)] + eps) * w[size_t(c)] + b[size_t(c)];
      }
  return y;
}

void check_batch_norm(nn::BatchNormBase& bn, const Shape& shape, double eps, double momentum) {
  bn.to(DType::f64);
  nn::init::uniform_(bn.weight, 0.5, 1.5);
  nn::init::uniform_(bn.bias, -0.5, 0.5);
  const int64_t N = shape[0], C = shape[1], S = shape_numel(shape) / (N * C);
  std::vector<double> rm(size_t(C), 0.0), rv(size_t(C), 1.0);
  for (int step = 0; step < 2; ++step) {
    Tensor x = ops::add_scalar(ops::mul_scalar(randn64(shape, 20 + uint64_t(step)), 2.0), 1.0);
    auto xv = vals(x);
    Variable y = bn(Variable(x));
    std::vector<double> mean, var;
    channel_stats(xv, N, C, S, mean, var);
    check_close(vals(y), bn_apply(xv, N, C, S, mean, var, vals(bn.weight), vals(bn.bias), eps), 1e-10);
    const double M = double(N * S);
    for (int64_t c = 0; c < C; ++c) {
      rm[size_t(c)] = (1 - momentum) * rm[size_t(c)] + momentum * mean[size_t(c)];
      rv[size_t(c)] = (1 - momentum) * rv[size_t(c)] + momentum * var[size_t(c)] * M / (M - 1);  // unbiased
    }
    check_close(vals(bn.buffer("running_mean")), rm, 1e-12);
    check_close(vals(bn.buffer("running_var")), rv, 1e-12);
    CHECK(bn.buffer("num_batches_tracked").item() == double(step + 1));
  }
  // Eval: running statistics, buffers untouched.
  bn.eval();
  Tensor x = randn64(shape, 40);
  auto xv = vals(x);
  Variable y = bn(Variable(x));
  check_close(vals(y), bn_apply(xv, N, C, S, rm, rv, vals(bn.weight), vals(bn.bias), eps), 1e-10);
  check_close(vals(bn.buffer("running_mean")), rm, 1e-12);
  CHECK(bn.buffer("num_batches_tracked").item() == 2.0);
  bn.train();
}
}  // namespace

TEST_CASE("BatchNorm1d: output, running statistics and num_batches_tracked vs the formulas") {
  nn::BatchNorm1d bn(3);
  CHECK(bn.type_name() == "BatchNorm1d");
  CHECK(vals(bn.weight) == std::vector<double>{1, 1, 1});
  CHECK(vals(bn.bias) == std::vector<double>{0, 0, 0});
  CHECK(vals(bn.buffer("running_var")) == std::vector<double>{1, 1, 1});
  CHECK(bn.buffer("num_batches_tracked").dtype() == DType::i64);
  CHECK(bn.buffer("num_batches_tracked").dim() == 0);
  SUBCASE("(N, C)") { check_batch_norm(bn, {6, 3}, 1e-5, 0.1); }
  SUBCASE("(N, C, L)") { check_batch_norm(bn, {4, 3, 5}, 1e-5, 0.1); }
  SUBCASE("options") {
    nn::BatchNorm1d b2(nn::BatchNormOptions(3).eps(1e-3).momentum(0.3));
    check_batch_norm(b2, {5, 3}, 1e-3, 0.3);
  }
  CHECK_THROWS_AS(bn(Variable(Tensor::zeros({2, 4}))), Error);        // wrong C
  CHECK_THROWS_AS(bn(Variable(Tensor::zeros({2, 3, 2, 2}))), Error);  // 4-D
}

TEST_CASE("BatchNorm2d: statistics over (N, H, W)") {
  nn::BatchNorm2d bn(2, 1e-5, 0.2);
  CHECK(bn.type_name() == "BatchNorm2d");
  check_batch_norm(bn, {3, 2, 4, 3}, 1e-5, 0.2);
  CHECK_THROWS_AS(bn(Variable(Tensor::zeros({3, 2}, DType::f64))), Error);
  nn::BatchNorm2d plain(nn::BatchNormOptions(2).affine(false));
  CHECK(plain.named_parameters().empty());
  CHECK(plain(Variable(Tensor::randn({2, 2, 3, 3}))).shape() == Shape{2, 2, 3, 3});
}

TEST_CASE("LayerNorm matches the formula over the last dim") {
  nn::LayerNorm ln(6);
  CHECK(ln.type_name() == "LayerNorm");
  ln.to(DType::f64);
  nn::init::normal_(ln.weight);
  nn::init::normal_(ln.bias);
  Tensor x = randn64({2, 4, 6}, 8);
  auto xv = vals(x), w = vals(ln.weight), b = vals(ln.bias);
  std::vector<double> want;
  for (int r = 0; r < 8; ++r) {
    double m = 0, v = 0;
    for (int i = 0; i < 6; ++i) m += xv[size_t(r * 6 + i)];
    m /= 6;
    for (int i = 0; i < 6; ++i) v += (xv[size_t(r * 6 + i)] - m) * (xv[size_t(r * 6 + i)] - m);
    v /= 6;
    for (int i = 0; i < 6; ++i) want.push_back((xv[size_t(r * 6 + i)] - m) / std::sqrt(v + 1e-5) * w[size_t(i)] + b[size_t(i)]);
  }
  check_close(vals(ln(Variable(x))), want, 1e-10);
  CHECK_THROWS_AS(ln(Variable(Tensor::zeros({2, 5}, DType::f64))), Error);
}

// ------------------------------------------------------------------ activations

TEST_CASE("activations match their formulas") {
  Tensor x = randn64({3, 4}, 2);
  auto xv = vals(x);
  Variable v(x);
  auto each = [&](nn::UnaryModule& m, double (*f)(double)) {
    std::vector<double> want;
    for (double a : xv) want.push_back(f(a));
    check_close(vals(m(v)), want);
  };
  nn::ReLU relu;
  each(relu, [](double a) { return a > 0 ? a : 0.0; });
  nn::GELU gelu;
  each(gelu, [](double a) { return 0.5 * a * (1 + std::erf(a / std::sqrt(2.0))); });
  nn::Tanh th;
  each(th, [](double a) { return std::tanh(a); });
  nn::Sigmoid sg;
  each(sg, [](double a) { return 1 / (1 + std::exp(-a)); });
  nn::SiLU si;
  each(si, [](double a) { return a / (1 + std::exp(-a)); });
  nn::Identity id;
  each(id, [](double a) { return a; });
  CHECK(relu.type_name() == "ReLU");
  CHECK(gelu.type_name() == "GELU");

  // Softmax over dim 0 of (3, 4): columns sum to one.
  nn::Softmax sm(0);
  std::vector<double> want(12);
  for (int j = 0; j < 4; ++j) {
    double z = 0;
    for (int i = 0; i < 3; ++i) z += std::exp(xv[size_t(i * 4 + j)]);
    for (int i = 0; i < 3; ++i) want[size_t(i * 4 + j)] = std::exp(xv[size_t(i * 4 + j)]) / z;
  }
  check_close(vals(sm(v)), want);
  nn::LogSoftmax lsm(0);
  for (auto& w : want) w = std::log(w);
  check_close(vals(lsm(v)), want);
}

TEST_CASE("Flatten and Dropout") {
  Variable x(randn64({2, 3, 4, 5}, 4));
  CHECK(nn::Flatten()(x).shape() == Shape{2, 60});
  CHECK(nn::Flatten(1, 2)(x).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten(0)(x).shape() == Shape{120});
  CHECK(vals(nn::Flatten()(x)) == vals(x));

  nn::Dropout d(0.25);
  Variable big(Tensor::ones({20000}, DType::f64));
  d.eval();
  CHECK(vals(d(big)) == vals(big));
  d.train();
  auto y = vals(d(big));
  int zeros = 0;
  for (double a : y) {
    if (a == 0) ++zeros;
    else CHECK(a == doctest::Approx(1.0 / 0.75));
  }
  CHECK(double(zeros) / 20000 == doctest::Approx(0.25).epsilon(0.05));
  CHECK_THROWS_AS(nn::Dropout(1.5), Error);
}

// ------------------------------------------------------------------ Embedding

TEST_CASE("Embedding: row lookup, N(0, 1) init, index checks") {
  manual_seed(3);
  nn::Embedding emb(1000, 8);
  CHECK(emb.type_name() == "Embedding");
  Stats s = stats(vals(emb.weight));
  CHECK(std::abs(s.mean) < 0.05);
  CHECK(s.std == doctest::Approx(1.0).epsilon(0.05));

  Tensor idx = Tensor::from_vector<int64_t>({5, 0, 999, 5, 17, 3}, {2, 3});
  Variable y = emb.forward(idx);
  CHECK(y.shape() == Shape{2, 3, 8});
  auto w = vals(emb.weight), yv = vals(y);
  std::vector<int64_t> ix{5, 0, 999, 5, 17, 3};
  for (size_t r = 0; r < ix.size(); ++r)
    for (size_t k = 0; k < 8; ++k) CHECK(yv[r * 8 + k] == w[size_t(ix[r]) * 8 + k]);
  // The Variable form (for Sequential) agrees.
  CHECK(vals(emb(Variable(idx))) == yv);
  CHECK_THROWS_AS(emb.forward(Tensor::from_vector<int64_t>({1000})), Error);
  CHECK_THROWS_AS(emb.forward(Tensor::zeros({2}, DType::f32)), Error);
  // Gradient: counts of each row.
  ag::sum(emb.forward(idx)).backward();
  auto g = vals(emb.weight.grad());
  CHECK(g[5 * 8] == 2.0);
  CHECK(g[0] == 1.0);
  CHECK(g[1 * 8] == 0.0);
}

// ------------------------------------------------------------------ attention

TEST_CASE("CausalSelfAttention matches a naive per-head computation") {
  const int64_t B = 2, T = 5, d = 8, H = 2, Dh = d / H;
  manual_seed(12);
  nn::CausalSelfAttention attn(d, H);
  CHECK(attn.type_name() == "CausalSelfAttention");
  std::vector<std::string> names;
  for (auto& [n, v] : attn.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"qkv.weight", "qkv.bias", "proj.weight", "proj.bias"});
  attn.to(DType::f64);
  Tensor x = randn64({B, T, d}, 13);
  Variable y = attn(Variable(x));
  REQUIRE(y.shape() == Shape{B, T, d});

  auto qkv = naive_linear(vals(x), B * T, d, vals(attn.qkv->weight), vals(attn.qkv->bias), 3 * d);  // (B*T, 3d)
  std::vector<double> o(size_t(B * T * d), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        auto at = [&](int64_t t, int64_t part, int64_t e) { return qkv[size_t((b * T + t) * 3 * d + part * d + h * Dh + e)]; };
        std::vector<double> s(size_t(i + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < Dh; ++e) dot += at(i, 0, e) * at(j, 1, e);
          s[size_t(j)] = dot / std::sqrt(double(Dh));
          mx = std::max(mx, s[size_t(j)]);
        }
        double z = 0;
        for (auto& a : s) { a = std::exp(a - mx); z += a; }
        for (int64_t e = 0; e < Dh; ++e) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += s[size_t(j)] / z * at(j, 2, e);
          o[size_t((b * T + i) * d + h * Dh + e)] = acc;
        }
      }
  auto want = naive_linear(o, B * T, d, vals(attn.proj->weight), vals(attn.proj->bias), d);
  check_close(vals(y), want, 1e-10);
  CHECK_THROWS_AS(nn::CausalSelfAttention(10, 3), Error);
  CHECK_THROWS_AS(attn(Variable(Tensor::zeros({T, d}, DType::f64))), Error);
}

TEST_CASE("TransformerBlock: children, output shape, causality") {
  const int64_t B = 2, T = 6, d = 8;
  manual_seed(21);
  nn::TransformerBlock blk(d, 2);
  CHECK(blk.type_name() == "TransformerBlock");
  std::vector<std::string> kids;
  for (auto& [n, m] : blk.named_children()) kids.push_back(n);
  CHECK(kids == std::vector<std::string>{"ln1", "attn", "ln2", "fc1", "fc2"});
  CHECK(blk.fc1->weight.shape() == Shape{4 * d, d});
  CHECK(blk.fc2->weight.shape() == Shape{d, 4 * d});
  blk.to(DType::f64);

  Tensor x = randn64({B, T, d}, 22);
  Variable y = blk(Variable(x));
  REQUIRE(y.shape() == Shape{B, T, d});
  // Changing the token at position 3 leaves positions 0..2 unchanged, changes 3..5.
  Tensor x2 = x.clone();
  Tensor tok = x2.select(1, 3);
  tok.copy_(randn64({B, d}, 23));
  Variable y2 = blk(Variable(x2));
  auto a = vals(y), b = vals(y2);
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t t = 0; t < T; ++t) {
      double diff = 0;
      for (int64_t e = 0; e < d; ++e) diff = std::max(diff, std::abs(a[size_t((bb * T + t) * d + e)] - b[size_t((bb * T + t) * d + e)]));
      INFO("batch " << bb << " position " << t);
      if (t < 3) CHECK(diff <= 1e-12);
      else CHECK(diff > 1e-6);
    }
  // Gradient view of causality: earlier outputs do not depend on later inputs.
  Variable xv(x, true);
  Variable early = ag::sum(ag::narrow(blk(xv), 1, 0, 3));
  Tensor gx = ag::grad({early}, {xv})[0];
  auto g = vals(gx);
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t t = 0; t < T; ++t) {
      double m = 0;
      for (int64_t e = 0; e < d; ++e) m = std::max(m, std::abs(g[size_t((bb * T + t) * d + e)]));
      if (t >= 3) CHECK(m == 0.0);
      else CHECK(m > 0.0);
    }
}

// ------------------------------------------------------------------ Sequential

TEST_CASE("Sequential names children 0, 1, ... and chains forward") {
  manual_seed(30);
  nn::Sequential seq{std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Tanh>()};
  auto last = seq.push_back(std::make_shared<nn::Linear>(4, 2));
  CHECK(seq.size() == 3);
  CHECK(seq.type_name() == "Sequential");
  std::vector<std::string> kids;
  for (auto& [n, m] : seq.named_children()) kids.push_back(n);
  CHECK(kids == std::vector<std::string>{"0", "1", "2"});
  CHECK(seq.named_parameters()[2].first == "2.weight");
  seq.to(DType::f64);
  Variable x(randn64({5, 3}, 31));
  Variable want = last->forward(ag::tanh(std::static_pointer_cast<nn::Linear>(seq[0])->forward(x)));
  CHECK(vals(seq(x)) == vals(want));
  CHECK_THROWS_AS(seq[3], Error);
  nn::Sequential empty;
  CHECK(vals(empty(x)) == vals(x));
}

// ------------------------------------------------------------------ init

TEST_CASE("init: gains, fans and bounds") {
  using namespace nn::init;
  CHECK(calculate_gain(Nonlinearity::Linear) == 1.0);
  CHECK(calculate_gain(Nonlinearity::Sigmoid) == 1.0);
  CHECK(calculate_gain(Nonlinearity::Tanh) == doctest::Approx(5.0 / 3.0));
  CHECK(calculate_gain(Nonlinearity::ReLU) == doctest::Approx(std::sqrt(2.0)));
  CHECK(calculate_gain(Nonlinearity::LeakyReLU, 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
  auto [fi, fo] = calculate_fan_in_and_fan_out({4, 3, 5, 5});
  CHECK(fi == 75);
  CHECK(fo == 100);
  CHECK_THROWS_AS(calculate_fan_in_and_fan_out({7}), Error);

  manual_seed(1);
  Tensor w = Tensor::empty({200, 100}, DType::f64);
  kaiming_uniform_(w);  // a = 0, fan_in, leaky_relu: bound sqrt(6 / fan_in)
  Stats s = stats(vals(w));
  double b = std::sqrt(6.0 / 100);
  CHECK(s.maxabs <= b);
  CHECK(s.maxabs > 0.99 * b);
  kaiming_uniform_(w, 0.0, FanMode::FanOut, Nonlinearity::ReLU);
  CHECK(stats(vals(w)).maxabs <= std::sqrt(6.0 / 200));
  kaiming_normal_(w, 0.0, FanMode::FanIn, Nonlinearity::ReLU);
  CHECK(stats(vals(w)).std == doctest::Approx(std::sqrt(2.0 / 100)).epsilon(0.03));
  xavier_uniform_(w, 2.0);
  s = stats(vals(w));
  CHECK(s.maxabs <= 2.0 * std::sqrt(6.0 / 300));
  CHECK(s.maxabs > 0.99 * 2.0 * std::sqrt(6.0 / 300));
  xavier_normal_(w);
  CHECK(stats(vals(w)).std == doctest::Approx(std::sqrt(2.0 / 300)).epsilon(0.03));
  normal_(w, 3.0, 0.5);
  s = stats(vals(w));
  CHECK(s.mean == doctest::Approx(3.0).epsilon(0.01));
  CHECK(s.std == doctest::Approx(0.5).epsilon(0.03));
  uniform_(w, -2.0, -1.0);
  for (double a : vals(w)) CHECK((a >= -2.0 && a < -1.0));
  constant_(w, 0.25);
  for (double a : vals(w)) CHECK(a == 0.25);
  zeros_(w);
  CHECK(stats(vals(w)).maxabs == 0.0);
  ones_(w);
  CHECK(stats(vals(w)).mean == 1.0);
  CHECK_THROWS_AS(uniform_(Tensor::zeros({3}, DType::i64)), Error);
}

TEST_CASE("init: in place, through views, on Variables, with a given generator") {
  using namespace nn::init;
  // A transposed (non-contiguous) view is filled in its base.
  Tensor base = Tensor::zeros({3, 4}, DType::f64);
  uniform_(base.t(), 1.0, 2.0);
  for (double a : vals(base)) CHECK((a >= 1.0 && a < 2.0));
  // A Variable's data is filled in its storage.
  Variable v(Tensor::zeros({5, 6}), true);
  Tensor before = v.data();
  xavier_uniform_(v);
  CHECK(v.data().storage() == before.storage());
  CHECK(stats(vals(before)).maxabs > 0);
  // A given generator: reproducible, and the default generator is not advanced.
  Generator g1(77), g2(77);
  Tensor a = Tensor::empty({10}), b = Tensor::empty({10});
  uint64_t off = default_generator().offset();
  normal_(a, 0.0, 1.0, g1);
  normal_(b, 0.0, 1.0, g2);
  CHECK(vals(a) == vals(b));
  CHECK(default_generator().offset() == off);
  normal_(b, 0.0, 1.0, g2);  // the next draw differs
  CHECK(vals(a) != vals(b));
}
