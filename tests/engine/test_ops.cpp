// tests/engine/test_ops.cpp: elementwise ops, broadcasting, reductions, matmul, cat/stack against
// naive loops.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/threading.h"

using namespace polyhead;

static std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int m, int k, int n) {
  std::vector<double> c(size_t(m * n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p) c[size_t(i * n + j)] += a[size_t(i * k + p)] * b[size_t(p * n + j)];
  return c;
}

TEST_CASE("ops: broadcasting binary ops match loops") {
  manual_seed(1);
  auto a = Tensor::randn({3, 1, 5}, DType::f64), b = Tensor::randn({4, 1}, DType::f64);
  auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  auto c = ops::mul(a, b);
  REQUIRE(c.shape() == Shape{3, 4, 5});
  auto cv = c.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k) CHECK(cv[size_t(i * 20 + j * 5 + k)] == av[size_t(i * 5 + k)] * bv[size_t(j)]);
  auto d = ops::sub(a.transpose(0, 2), Tensor::scalar(1.0, DType::f64));  // non-contiguous input
  CHECK(d.shape() == Shape{5, 1, 3});
  CHECK(d.to_vector<double>()[1] == av[5] - 1.0);
  auto g = ops::unary(UnaryOp::Gelu, Tensor::from_vector(std::vector<double>{-1, 0, 1}));
  CHECK(g.to_vector<double>()[2] == doctest::Approx(0.8413447460685429));
  auto w = ops::where(Tensor::from_vector(std::vector<uint8_t>{1, 0, 1}), Tensor::from_vector(std::vector<double>{1, 2, 3}),
                      Tensor::scalar(-1, DType::f64));
  CHECK(w.to_vector<double>() == std::vector<double>{1, -1, 3});
}

TEST_CASE("ops: reductions over dims") {
  auto t = Tensor::arange(0, 24, 1, DType::f64).reshape({2, 3, 4});
  CHECK(ops::sum(t).item() == 276);
  auto s = ops::sum(t, {1});
  CHECK(s.shape() == Shape{2, 4});
  CHECK(s.to_vector<double>()[0] == 0 + 4 + 8);
  auto sk = ops::sum(t, {0, 2}, true);
  CHECK(sk.shape() == Shape{1, 3, 1});
  CHECK(sk.to_vector<double>()[1] == (4 + 5 + 6 + 7) + (16 + 17 + 18 + 19));
  CHECK(ops::mean(t, {-1}).to_vector<double>()[0] == 1.5);
  CHECK(ops::amax(t, {1}).to_vector<double>()[0] == 8);
  CHECK(ops::amin(t).item() == 0);
  auto am = ops::argmax(Tensor::from_vector(std::vector<double>{1, 5, 2, 7, 0, 3}, {2, 3}), 1);
  CHECK(am.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(ops::sum_to(Tensor::ones({4, 2, 3}, DType::f64), {2, 1}).to_vector<double>() == std::vector<double>{12, 12});
  // long full reduction (chunked) equals the exact integer sum
  auto big = Tensor::ones({100000}, DType::f64);
  CHECK(ops::sum(big).item() == 100000);
}

TEST_CASE("ops: matmul against naive loops, incl. batched, broadcast and transposed") {
  manual_seed(2);
  for (auto [m, k, n] : std::vector<std::tuple<int, int, int>>{{1, 1, 1}, {3, 5, 2}, {17, 33, 9}, {64, 64, 64}}) {
    auto a = Tensor::randn({m, k}, DType::f64), b = Tensor::randn({k, n}, DType::f64);
    auto c = ops::matmul(a, b).to_vector<double>();
    auto r = naive_matmul(a.to_vector<double>(), b.to_vector<double>(), m, k, n);
    for (size_t i = 0; i < r.size(); ++i) CHECK(c[i] == doctest::Approx(r[i]).epsilon(1e-12));
    // transposed operands (views)
    auto at = a.t().contiguous().t(), bt = b.t().contiguous().t();
    auto c2 = ops::matmul(at, bt).to_vector<double>();
    for (size_t i = 0; i < r.size(); ++i) CHECK(c2[i] == doctest::Approx(r[i]).epsilon(1e-12));
  }
  auto A = Tensor::randn({4, 3, 5}, DType::f64), B = Tensor::randn({5, 2}, DType::f64);
  auto C = ops::matmul(A, B);
  REQUIRE(C.shape() == Shape{4, 3, 2});
  auto B3 = Tensor::randn({4, 5, 2}, DType::f64);
  auto C3 = ops::matmul(A, B3);
  auto Bc = Tensor::randn({1, 5, 2}, DType::f64);
  auto C4 = ops::matmul(Tensor::randn({3, 5}, DType::f64).unsqueeze(0).expand({4, 3, 5}), Bc);
  CHECK(C4.shape() == Shape{4, 3, 2});
  for (int bi = 0; bi < 4; ++bi) {
    auto r = naive_matmul(A.select(0, bi).contiguous().to_vector<double>(), B3.select(0, bi).contiguous().to_vector<double>(), 3, 5, 2);
    auto c = C3.select(0, bi).contiguous().to_vector<double>();
    for (size_t i = 0; i < r.size(); ++i) CHECK(c[i] == doctest::Approx(r[i]).epsilon(1e-12));
  }
  auto v = ops::matmul(Tensor::ones({3}, DType::f64), Tensor::ones({3, 2}, DType::f64));
  CHECK(v.shape() == Shape{2});
  CHECK(v.to_vector<double>()[0] == 3);
  CHECK_THROWS_WITH_AS(ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), doctest::Contains("inner dims"), Error);
}

TEST_CASE("ops: large GEMM is bit-identical with 1 and 2 threads") {
  manual_seed(3);
  auto a = Tensor::randn({300, 257}), b = Tensor::randn({257, 311});
  set_num_threads(1);
  auto c1 = ops::matmul(a, b).to_vector<float>();
  set_num_threads(2);
  auto c2 = ops::matmul(a, b).to_vector<float>();
  set_num_threads(0);
  CHECK(c1 == c2);
}

TEST_CASE("ops: cat and stack") {
  auto a = Tensor::zeros({2, 2}), b = Tensor::ones({2, 3});
  auto c = ops::cat({a, b}, 1);
  CHECK(c.shape() == Shape{2, 5});
  CHECK(ops::sum(c).item() == 6);
  auto s = ops::stack({a, a, a}, 0);
  CHECK(s.shape() == Shape{3, 2, 2});
  CHECK_THROWS_AS(ops::cat({a, Tensor::zeros({3, 3})}, 1), Error);
}
