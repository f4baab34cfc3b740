// tests/engine/test_tensor.cpp: Tensor metadata, views, copies, factories and RNG.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "engine/backend.h"

using namespace polyhead;

TEST_CASE("tensor: factories and item") {
  auto z = Tensor::zeros({2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.is_contiguous());
  CHECK(z.strides() == Shape{3, 1});
  CHECK(ops::sum(z).item() == 0.0);
  auto f = Tensor::full({2, 2}, 2.5, DType::f64);
  CHECK(ops::sum(f).item() == 10.0);
  auto a = Tensor::arange(0, 5);
  CHECK(a.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
  auto v = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4}, {2, 2});
  CHECK(v.dtype() == DType::i64);
  CHECK(v.select(0, 1).select(0, 0).item() == 3.0);
  CHECK_THROWS_AS(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
  CHECK_THROWS_AS(Tensor::zeros({2, 2}).item(), Error);
  for (DType d : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8})
    CHECK(Tensor::ones({3}, d).to(DType::f64).to_vector<double>() == std::vector<double>{1, 1, 1});
}

TEST_CASE("tensor: views share storage and index correctly") {
  auto t = Tensor::arange(0, 24, 1, DType::f64).reshape({2, 3, 4});
  auto tr = t.transpose(0, 2);  // (4, 3, 2)
  CHECK(tr.shape() == Shape{4, 3, 2});
  CHECK(!tr.is_contiguous());
  CHECK(tr.storage() == t.storage());
  // element [i][j][k] of tr = t[k][j][i]
  CHECK(tr.select(0, 3).select(0, 1).select(0, 1).item() == 12 + 4 + 3);
  auto c = tr.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.reshape({-1}).to_vector<double>()[1] == 12.0);  // [0][0][1] = t[1][0][0]
  auto p = t.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.select(0, 2).select(0, 3).select(0, 1).item() == 12 + 8 + 3);
  auto n = t.narrow(2, 1, 2);
  CHECK(n.shape() == Shape{2, 3, 2});
  CHECK(n.select(0, 1).select(0, 2).select(0, 1).item() == 12 + 8 + 2);
  auto s = t.slice(2, 0, 4, 2);
  CHECK(s.to_vector<double>()[1] == 2.0);
  auto e = Tensor::arange(0, 3).reshape({3, 1}).expand({3, 4});
  CHECK(e.strides()[1] == 0);
  CHECK(ops::sum(e).item() == 12.0);
  CHECK(t.unsqueeze(1).shape() == Shape{2, 1, 3, 4});
  CHECK(t.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(t.unsqueeze(0).squeeze().shape() == t.shape());
  CHECK(t.flatten(1).shape() == Shape{2, 12});
  // writes through a view are visible in the base
  auto base = Tensor::zeros({2, 2});
  base.select(0, 1).fill_(7);
  CHECK(base.to_vector<float>() == std::vector<float>{0, 0, 7, 7});
  base.transpose(0, 1).select(0, 0).fill_(3);  // column 0
  CHECK(base.to_vector<float>() == std::vector<float>{3, 0, 3, 7});
}

TEST_CASE("tensor: bad views and shapes are errors naming the op") {
  auto t = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(t.view({4, 2}), doctest::Contains("view"), Error);
  CHECK_THROWS_AS(t.transpose(0, 1).view({6}), Error);
  CHECK(t.transpose(0, 1).reshape({6}).numel() == 6);
  CHECK_THROWS_AS(t.expand({3, 3}), Error);
  CHECK_THROWS_AS(t.narrow(1, 2, 2), Error);
  CHECK_THROWS_AS(t.permute({0, 0}), Error);
  CHECK_THROWS_AS(t.select(0, 5), Error);
  CHECK_THROWS_AS(t.transpose(0, 2), Error);
  CHECK_THROWS_AS(Tensor().raw(), Error);
  CHECK_THROWS_WITH_AS(ops::add(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), doctest::Contains("broadcast"), Error);
  CHECK_THROWS_WITH_AS(ops::add(Tensor::zeros({2}), Tensor::zeros({2}, DType::f64)), doctest::Contains("dtype"), Error);
}

TEST_CASE("tensor: dtype conversion and clone") {
  auto t = Tensor::from_vector(std::vector<double>{1.5, -2.25, 3}, {3});
  CHECK(t.to(DType::f32).to_vector<float>() == std::vector<float>{1.5f, -2.25f, 3.f});
  CHECK(t.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  auto c = t.clone();
  c.fill_(0);
  CHECK(t.to_vector<double>()[0] == 1.5);
  auto d = Tensor::zeros({3}, DType::f64);
  d.copy_(Tensor::scalar(4, DType::f32));
  CHECK(d.to_vector<double>() == std::vector<double>{4, 4, 4});
}

TEST_CASE("rng: philox is deterministic, seeded and well distributed") {
  manual_seed(7);
  auto a = Tensor::randn({1000}, DType::f64);
  auto b = Tensor::rand({1000}, DType::f64);
  manual_seed(7);
  auto a2 = Tensor::randn({1000}, DType::f64);
  auto b2 = Tensor::rand({1000}, DType::f64);
  CHECK(a.to_vector<double>() == a2.to_vector<double>());
  CHECK(b.to_vector<double>() == b2.to_vector<double>());
  manual_seed(8);
  CHECK(Tensor::randn({1000}, DType::f64).to_vector<double>() != a.to_vector<double>());
  // moments: N(0,1) mean within 0.1, var within 0.15; U[0,1) mean near 0.5 and in range
  auto m = ops::mean(a).item();
  auto v = ops::mean(ops::square(a)).item() - m * m;
  CHECK(std::abs(m) < 0.1);
  CHECK(std::abs(v - 1) < 0.15);
  CHECK(std::abs(ops::mean(b).item() - 0.5) < 0.05);
  CHECK(ops::amin(b).item() >= 0.0);
  CHECK(ops::amax(b).item() < 1.0);
  // Philox4x32-10 known-answer test (Random123 kat_vectors: ctr 0, key 0)
  uint32_t c[4] = {0, 0, 0, 0};
  philox4x32_10(c, 0, 0);
  CHECK(c[0] == 0x6627e8d5u);
  CHECK(c[1] == 0xe169c58du);
  CHECK(c[2] == 0xbc57ac4cu);
  CHECK(c[3] == 0x9b00dbd8u);
}

TEST_CASE("tensor: pin_memory copies into a contiguous tensor with the same values") {
  Tensor a = Tensor::arange(0, 24, 1, DType::f32).reshape({4, 6});
  Tensor view = a.transpose(0, 1).slice(0, 1, 5);  // (4, 4), not contiguous
  REQUIRE_FALSE(view.is_contiguous());
  Tensor p = view.pin_memory();
  CHECK(p.is_contiguous());
  CHECK(p.device().is_cpu());
  CHECK(p.is_pinned() == backend_available(Device::cuda(0)));
  CHECK(p.to_vector<float>() == view.contiguous().to_vector<float>());
  CHECK(p.storage() != a.storage());
  // Pinning an already pinned contiguous tensor is a no-op; plain CPU tensors are never pinned.
  if (p.is_pinned()) CHECK(p.pin_memory().storage() == p.storage());
  CHECK_FALSE(a.is_pinned());
}
