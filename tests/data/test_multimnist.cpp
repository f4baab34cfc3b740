// tests/data/test_multimnist.cpp: MultiMNIST generation from a tiny IDX file whose digits are
// told apart by their brightness, and the synthetic digit glyphs.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "data/multimnist.h"
#include "tests/data/data_test_util.h"

using namespace polyhead;
using namespace polyhead::data;
using namespace polyhead::data::test;

namespace {
// 10 images, each a full 28 x 28 square of brightness 20 (k + 1); label of image k = (3k + 1) % 10.
MnistData tiny_source(TempDir& dir) {
  std::vector<uint8_t> px, lb;
  for (int k = 0; k < 10; ++k) {
    for (int p = 0; p < 28 * 28; ++p) px.push_back(uint8_t(20 * (k + 1)));
    lb.push_back(uint8_t((3 * k + 1) % 10));
  }
  write_bytes(dir / "im.idx", idx_bytes({10, 28, 28}, px));
  write_bytes(dir / "lb.idx", idx_bytes({10}, lb));
  return load_mnist_files(dir / "im.idx", dir / "lb.idx");
}
int label_of_brightness(float v) {
  int k = int(std::lround(v * 255.0f / 20.0f)) - 1;
  REQUIRE((k >= 0 && k < 10));
  return (3 * k + 1) % 10;
}
}  // namespace

TEST_CASE("multimnist: labels go with positions; placement follows the documented rule") {
  TempDir dir;
  MnistData src = tiny_source(dir);
  const int64_t n = 400;
  MultiMnistData d = make_multimnist(src, n, 17);
  CHECK(d.x.shape() == Shape{n, 1, 36, 36});
  CHECK(d.x.dtype() == DType::f32);
  CHECK(d.y0.dtype() == DType::i64);
  auto x = d.x.to_vector<float>();
  auto y0 = d.y0.to_vector<int64_t>(), y1 = d.y1.to_vector<int64_t>();
  std::set<int64_t> shifts[4];
  for (int64_t i = 0; i < n; ++i) {
    const float* im = x.data() + i * 36 * 36;
    auto at = [&](int r, int c) { return im[r * 36 + c]; };
    // (3, 3) is covered by the first image only, (32, 32) by the second only.
    CHECK(label_of_brightness(at(3, 3)) == y0[size_t(i)]);
    CHECK(label_of_brightness(at(32, 32)) == y1[size_t(i)]);
    CHECK(at(3, 3) != at(32, 32));  // two different source images
    // Recover the offsets from the bounding box and rebuild the canvas exactly.
    int rmin = 36, cmin = 36, rmax = -1, cmax = -1;
    for (int r = 0; r < 36; ++r)
      for (int c = 0; c < 36; ++c)
        if (at(r, c) > 0) { rmin = std::min(rmin, r); rmax = std::max(rmax, r); cmin = std::min(cmin, c); cmax = std::max(cmax, c); }
    int a = 4 - rmin, b = 4 - cmin, cc = rmax - 27 - 4, e = cmax - 27 - 4;
    for (int v : {a, b, cc, e}) CHECK((v >= 1 && v <= 4));
    shifts[0].insert(a);
    shifts[1].insert(b);
    shifts[2].insert(cc);
    shifts[3].insert(e);
    float v1 = at(3, 3), v2 = at(32, 32);
    bool exact = true;
    for (int r = 0; r < 36; ++r)
      for (int c = 0; c < 36; ++c) {
        bool in1 = r >= 4 - a && r < 32 - a && c >= 4 - b && c < 32 - b;
        bool in2 = r >= 4 + cc && r < 32 + cc && c >= 4 + e && c < 32 + e;
        float want = std::max(in1 ? v1 : 0.0f, in2 ? v2 : 0.0f);
        exact = exact && at(r, c) == want;
      }
    CHECK(exact);
  }
  for (auto& s : shifts) CHECK(s == std::set<int64_t>{1, 2, 3, 4});

  // Every source image is a first image once per M = 10 examples.
  std::set<float> firsts;
  for (int64_t i = 0; i < 10; ++i) firsts.insert(x[size_t(i * 36 * 36 + 3 * 36 + 3)]);
  CHECK(firsts.size() == 10);

  // Deterministic from the seed; other seeds differ.
  MultiMnistData d2 = make_multimnist(src, n, 17), d3 = make_multimnist(src, n, 18);
  CHECK(d2.x.to_vector<float>() == x);
  CHECK(d2.y0.to_vector<int64_t>() == y0);
  CHECK(d2.y1.to_vector<int64_t>() == y1);
  CHECK(d3.y0.to_vector<int64_t>() != y0);
  // A prefix of a longer run is the shorter run.
  MultiMnistData d4 = make_multimnist(src, 7, 17);
  CHECK(d4.y1.to_vector<int64_t>() == std::vector<int64_t>(y1.begin(), y1.begin() + 7));

  auto ds = multimnist_dataset(d);
  CHECK(ds->get(5).at("y1").item() == double(y1[5]));
  CHECK(kMultiMnistTasks == std::vector<std::string>{"left", "right"});
  MnistData one{Tensor::zeros({1, 28, 28}, DType::u8), Tensor::zeros({1}, DType::u8)};
  CHECK(contains(error_of([&] { make_multimnist(one, 3, 0); }), "at least 2"));
}

TEST_CASE("synthetic digits: deterministic, balanced-ish, and tellable apart") {
  const int64_t n = 3000;
  MnistData s = synthetic_digits(n, 5);
  CHECK(s.images.shape() == Shape{n, 28, 28});
  CHECK(s.images.to_vector<int64_t>() == synthetic_digits(n, 5).images.to_vector<int64_t>());
  CHECK(s.labels.to_vector<int64_t>() != synthetic_digits(n, 6).labels.to_vector<int64_t>());
  auto px = s.images.to_vector<float>();
  auto lb = s.labels.to_vector<int64_t>();
  // Nearest class mean, fitted on the first half, scored on the second.
  const int64_t half = n / 2;
  std::vector<double> mean(10 * 784, 0.0);
  std::vector<int> cnt(10, 0);
  for (int64_t i = 0; i < half; ++i) {
    ++cnt[size_t(lb[size_t(i)])];
    for (int p = 0; p < 784; ++p) mean[size_t(lb[size_t(i)] * 784 + p)] += px[size_t(i * 784 + p)];
  }
  for (int k = 0; k < 10; ++k) {
    CHECK(cnt[size_t(k)] > half / 20);
    for (int p = 0; p < 784; ++p) mean[size_t(k * 784 + p)] /= std::max(cnt[size_t(k)], 1);
  }
  int correct = 0;
  for (int64_t i = half; i < n; ++i) {
    int best = -1;
    double bd = 1e300;
    for (int k = 0; k < 10; ++k) {
      double dd = 0;
      for (int p = 0; p < 784; ++p) {
        double t = px[size_t(i * 784 + p)] - mean[size_t(k * 784 + p)];
        dd += t * t;
      }
      if (dd < bd) { bd = dd; best = k; }
    }
    correct += best == lb[size_t(i)];
  }
  double acc = double(correct) / double(n - half);
  MESSAGE("nearest-class-mean accuracy on synthetic digits: " << acc);
  CHECK(acc > 0.6);

  TempDir dir;
  bool synthetic = false;
  MnistData m = load_mnist_or_synthetic(dir.path.string(), true, 50, 1, &synthetic);
  CHECK(synthetic);
  CHECK(m.images.size(0) == 50);
  MultiMnistData mm = make_multimnist(m, 20, 3);
  CHECK(mm.x.shape() == Shape{20, 1, 36, 36});
}
