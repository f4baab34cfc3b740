// tests/data/test_loader.cpp: datasets, samplers, DataLoader (order, prefetch, errors) and the
// mixture sampler / loader.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <set>

#include "data/loader.h"
#include "engine/backend.h"
#include "engine/threading.h"
#include "tests/data/data_test_util.h"

using namespace polyhead;
using namespace polyhead::data;
using namespace polyhead::data::test;

namespace {
// N examples: "id" = i (i64 scalar), "x" = (2, 3) f32 filled with i.
std::shared_ptr<TensorDataset> ids(int64_t n) {
  std::vector<int64_t> id(static_cast<size_t>(n));
  std::iota(id.begin(), id.end(), int64_t(0));
  std::vector<float> x;
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < 6; ++j) x.push_back(float(i) + 0.1f * float(j));
  return std::make_shared<TensorDataset>(std::map<std::string, Tensor>{
      {"id", Tensor::from_vector(id)}, {"x", Tensor::from_vector(x, {n, 2, 3})}});
}

std::vector<std::vector<int64_t>> pass(DataLoader& dl) {
  std::vector<std::vector<int64_t>> out;
  for (Batch& b : dl) out.push_back(b.at("id").to_vector<int64_t>());
  return out;
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& v) {
  std::vector<int64_t> f;
  for (auto& b : v) f.insert(f.end(), b.begin(), b.end());
  return f;
}

// A dataset without a get_batch override (exercises collate) that fails on one index.
struct Computed : Dataset {
  int64_t n, bad;
  mutable std::atomic<int> calls{0};
  Computed(int64_t n_, int64_t bad_ = -1) : n(n_), bad(bad_) {}
  int64_t size() const override { return n; }
  Example get(int64_t i) const override {
    ++calls;
    PH_CHECK(i != bad, "Computed", "example " << i << " is broken");
    Example e;
    e["id"] = Tensor::full({}, double(i), DType::i64);
    std::vector<float> v;
    for (int j = 0; j < 6; ++j) v.push_back(float(10 * i + j));
    e["x"] = Tensor::from_vector(v, {2, 3}).transpose(0, 1);  // non-contiguous: x[r][c] = 10 i + 3 c + r
    return e;
  }
};
}  // namespace

TEST_CASE("samplers: sequential, random permutations per (seed, epoch), weighted") {
  CHECK(SequentialSampler(4).indices(9) == std::vector<int64_t>{0, 1, 2, 3});
  RandomSampler r(100, 5);
  auto e0 = r.indices(0), e1 = r.indices(1);
  auto sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(100);
  std::iota(iota.begin(), iota.end(), int64_t(0));
  CHECK(sorted == iota);
  CHECK(e0 == RandomSampler(100, 5).indices(0));
  CHECK(e0 != e1);
  CHECK(e0 != RandomSampler(100, 6).indices(0));
  CHECK(e0 != iota);
  CHECK(random_permutation(0, 1).empty());
  CHECK(random_permutation(1, 1) == std::vector<int64_t>{0});

  WeightedSampler w({1.0, 0.0, 3.0}, 4000, 11);
  auto d = w.indices(0);
  CHECK(d.size() == 4000);
  int64_t c[3] = {0, 0, 0};
  for (auto i : d) ++c[i];
  CHECK(c[1] == 0);
  CHECK(double(c[2]) / 4000 == doctest::Approx(0.75).epsilon(0.05));
  CHECK(d == WeightedSampler({1.0, 0.0, 3.0}, 4000, 11).indices(0));
  CHECK(d != w.indices(1));
  CHECK(contains(error_of([] { WeightedSampler({1.0, -1.0}, 3, 0); }), "weight 1 is -1"));
  CHECK(contains(error_of([] { WeightedSampler({0.0, 0.0}, 3, 0); }), "positive"));

  // uniform_index covers its range.
  std::set<uint64_t> seen;
  for (uint64_t j = 0; j < 200; ++j) {
    uint64_t u = uniform_index(42, j, 7);
    CHECK(u < 7);
    seen.insert(u);
  }
  CHECK(seen.size() == 7);
}

TEST_CASE("datasets: TensorDataset, Subset, random_split, collate") {
  auto ds = ids(5);
  Example e = ds->get(3);
  CHECK(e.at("id").item() == 3);
  CHECK(e.at("x").shape() == Shape{2, 3});
  CHECK(contains(error_of([&] { ds->get(5); }), "index 5 out of range"));
  CHECK(contains(error_of([&] { e.at("nope"); }), "no field 'nope'; the example has [id, x]"));
  CHECK(contains(error_of([] {
          TensorDataset({{"a", Tensor::zeros({3})}, {"b", Tensor::zeros({4, 2})}});
        }),
        "has 4 examples"));
  std::vector<int64_t> idx = {4, 0, 4};
  Batch b = ds->get_batch(idx);
  CHECK(b.at("id").to_vector<int64_t>() == idx);
  CHECK(b.at("x").shape() == Shape{3, 2, 3});
  CHECK(b.at("x").to_vector<float>()[6 + 5] == doctest::Approx(0.5f));

  SubsetDataset sub(ds, {2, 4});
  CHECK(sub.size() == 2);
  CHECK(sub.get(1).at("id").item() == 4);
  std::vector<int64_t> one = {1};
  CHECK(sub.get_batch(one).at("id").to_vector<int64_t>() == std::vector<int64_t>{4});
  CHECK(contains(error_of([&] { SubsetDataset(ds, {7}); }), "index 7"));

  auto [a, rest] = random_split(10, 3, 1);
  CHECK(a.size() == 3);
  CHECK(rest.size() == 7);
  std::set<int64_t> all(a.begin(), a.end());
  all.insert(rest.begin(), rest.end());
  CHECK(all.size() == 10);

  std::vector<Example> ex = {ds->get(0), ds->get(1)};
  ex[1]["x"] = Tensor::zeros({3, 2});
  CHECK(contains(error_of([&] { collate(ex); }), "field 'x': example 1 is f32 [3, 2] but example 0 is f32 [2, 3]"));
  ex[1].fields.erase("x");
  CHECK(contains(error_of([&] { collate(ex); }), "example 1 has fields [id]"));
}

TEST_CASE("loader: batch sizes and drop_last") {
  auto ds = ids(10);
  DataLoader a(ds, 3);
  CHECK(a.num_batches() == 4);
  auto p = pass(a);
  REQUIRE(p.size() == 4);
  CHECK(p[0] == std::vector<int64_t>{0, 1, 2});
  CHECK(p[3] == std::vector<int64_t>{9});
  DataLoader d(ds, 3, false, true);
  CHECK(d.num_batches() == 3);
  p = pass(d);
  CHECK(p.size() == 3);
  CHECK(p[2] == std::vector<int64_t>{6, 7, 8});
  DataLoader big(ds, 20, true, true);
  CHECK(pass(big).empty());
  DataLoader big2(ds, 20, true, false);
  CHECK(flat(pass(big2)).size() == 10);
  // Stacked shapes.
  a.start();
  Batch b = *a.next();
  CHECK(b.at("x").shape() == Shape{3, 2, 3});
  CHECK(b.at("id").shape() == Shape{3});
  CHECK(contains(error_of([&] { DataLoader(ds, 0); }), "batch size must be positive"));
}

TEST_CASE("loader: each example once per epoch; order a function of (seed, epoch)") {
  auto ds = ids(103);
  DataLoader l1(ds, 8, true, false, 42), l2(ds, 8, true, false, 42), l3(ds, 8, true, false, 43);
  auto o1 = flat(pass(l1));
  auto sorted = o1;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(103);
  std::iota(iota.begin(), iota.end(), int64_t(0));
  CHECK(sorted == iota);
  CHECK(o1 == flat(pass(l2)));
  CHECK(o1 == flat(pass(l1)));  // a second pass of the same epoch repeats it
  CHECK(o1 != flat(pass(l3)));
  l1.epoch(1);
  auto e1 = flat(pass(l1));
  CHECK(e1 != o1);
  auto s1 = e1;
  std::sort(s1.begin(), s1.end());
  CHECK(s1 == iota);
  l2.epoch(1);
  CHECK(flat(pass(l2)) == e1);
  l1.epoch(0);
  CHECK(flat(pass(l1)) == o1);
  // batch_indices agrees with the pass.
  auto p = pass(l1);
  CHECK(l1.batch_indices(3) == p[3]);
  // The features travel with their ids.
  for (Batch& b : l1) {
    auto id = b.at("id").to_vector<int64_t>();
    auto x = b.at("x").to_vector<float>();
    for (size_t j = 0; j < id.size(); ++j) CHECK(x[j * 6 + 2] == doctest::Approx(float(id[j]) + 0.2f));
  }
}

TEST_CASE("loader: prefetch gives the same batches as no prefetch") {
  for (bool custom : {false, true}) {
    std::shared_ptr<Dataset> ds = custom ? std::shared_ptr<Dataset>(std::make_shared<Computed>(57)) : ids(57);
    DataLoader ref(ds, 5, true, false, 9, 0);
    std::vector<std::vector<float>> want;
    std::vector<std::vector<int64_t>> want_id;
    for (Batch& b : ref) {
      want.push_back(b.at("x").to_vector<float>());
      want_id.push_back(b.at("id").to_vector<int64_t>());
    }
    CHECK(want.size() == 12);
    for (int pf : {1, 2, 3, 20}) {
      DataLoader dl(ds, 5, true, false, 9, pf);
      for (int rep = 0; rep < 2; ++rep) {
        size_t k = 0;
        while (auto b = dl.next()) {
          REQUIRE(k < want.size());
          CHECK(b->at("x").to_vector<float>() == want[k]);
          CHECK(b->at("id").to_vector<int64_t>() == want_id[k]);
          ++k;
        }
        CHECK(k == want.size());
      }
    }
  }
  // Collated non-contiguous fields are laid out correctly.
  auto c = std::make_shared<Computed>(4);
  DataLoader dl(c, 2, false, false, 0, 2);
  Batch b = *dl.next();
  CHECK(b.at("x").shape() == Shape{2, 3, 2});
  auto xv = b.at("x").to_vector<float>();
  CHECK(xv[6 + 1 * 2 + 0] == 11.0f);  // example 1, r = 1, c = 0
  CHECK(xv[6 + 0 * 2 + 1] == 13.0f);  // example 1, r = 0, c = 1
}

TEST_CASE("loader: prefetch on a single thread neither deadlocks nor changes batches") {
  auto ds = ids(40);
  DataLoader ref(ds, 3, true, false, 4, 0);
  auto want = pass(ref);
  set_num_threads(1);
  {
    DataLoader dl(ds, 3, true, false, 4, 3);
    CHECK(pass(dl) == want);
    dl.next();  // leave a pass in flight for the destructor
  }
  set_num_threads(0);
}

TEST_CASE("loader: errors surface at the batch, passes can be abandoned") {
  for (int pf : {0, 2}) {
    auto c = std::make_shared<Computed>(20, 13);
    DataLoader dl(c, 4, false, false, 0, pf);
    int got = 0;
    std::string msg;
    try {
      while (auto b = dl.next()) ++got;
    } catch (const Error& e) {
      msg = e.what();
    }
    CHECK(got == 3);  // batches 0..2 are fine, batch 3 holds example 13
    CHECK(contains(msg, "example 13 is broken"));
    // A new pass starts afresh (and fails at the same place).
    CHECK_THROWS_AS(pass(dl), Error);
  }
  // Abandon a pass with batches in flight; destroy the loader mid-pass.
  auto ds = ids(1000);
  {
    DataLoader dl(ds, 10, true, false, 1, 4);
    dl.next();
    dl.next();
    dl.epoch(3);  // cancels
    CHECK(flat(pass(dl)).size() == 1000);
    dl.next();
  }
  SUBCASE("a custom sampler") {
    auto s = std::make_shared<WeightedSampler>(std::vector<double>{0, 1, 0, 1}, 6, 2);
    DataLoader dl(ids(4), s, 4);
    auto f = flat(pass(dl));
    CHECK(f.size() == 6);
    for (auto i : f) CHECK((i == 1 || i == 3));
  }
}

TEST_CASE("mixture: largest-remainder counts") {
  CHECK(MixtureSampler::allocate(10, {0.5, 0.3, 0.2}) == std::vector<int64_t>{5, 3, 2});
  CHECK(MixtureSampler::allocate(10, {1, 1, 1}) == std::vector<int64_t>{4, 3, 3});
  CHECK(MixtureSampler::allocate(10, {0.15, 0.15, 0.7}) == std::vector<int64_t>{2, 1, 7});
  CHECK(MixtureSampler::allocate(10, {0.14, 0.16, 0.7}) == std::vector<int64_t>{1, 2, 7});
  CHECK(MixtureSampler::allocate(7, {0, 2, 0, 5}) == std::vector<int64_t>{0, 2, 0, 5});
  CHECK(MixtureSampler::allocate(3, {0.001, 1, 1}) == std::vector<int64_t>{0, 2, 1});
  CHECK(MixtureSampler::allocate(0, {1, 1}) == std::vector<int64_t>{0, 0});
  // Property: sums to b, each within 1 of b w_k, zero weights get zero.
  for (uint64_t t = 0; t < 500; ++t) {
    int K = 1 + int(uniform_index(1, t, 7));
    int64_t b = int64_t(uniform_index(2, t, 300));
    std::vector<double> w(static_cast<size_t>(K));
    double sum = 0;
    for (int k = 0; k < K; ++k) sum += w[size_t(k)] = uniform01(3, t * 8 + uint64_t(k)) < 0.2 ? 0.0 : uniform01(4, t * 8 + uint64_t(k));
    if (sum == 0) w[0] = sum = 1;
    auto c = MixtureSampler::allocate(b, w);
    CHECK(std::accumulate(c.begin(), c.end(), int64_t(0)) == b);
    for (int k = 0; k < K; ++k) {
      CHECK(std::abs(double(c[size_t(k)]) - double(b) * w[size_t(k)] / sum) < 1.0);
      if (w[size_t(k)] == 0) CHECK(c[size_t(k)] == 0);
    }
  }
}

TEST_CASE("mixture: per-source orders, weight changes, determinism") {
  MixtureSampler m({7, 100, 5}, 6, {0.5, 0.5, 0.0}, 3);
  CHECK(m.counts() == std::vector<int64_t>{3, 3, 0});
  std::vector<int64_t> src0;
  for (int s = 0; s < 3; ++s) {
    MixtureDraw d = m.next();
    CHECK(d.counts == std::vector<int64_t>{3, 3, 0});
    CHECK(d.indices[2].empty());
    for (auto i : d.indices[1]) CHECK((i >= 0 && i < 100));
    src0.insert(src0.end(), d.indices[0].begin(), d.indices[0].end());
  }
  // Source 0 (7 examples) is drawn without replacement: its first 7 draws are a permutation, then
  // its epoch 1 begins.
  std::vector<int64_t> first7(src0.begin(), src0.begin() + 7);
  std::sort(first7.begin(), first7.end());
  CHECK(first7 == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(m.source_epochs()[0] == 1);
  CHECK(m.step() == 3);

  m.set_weights({0, 1, 3});
  MixtureDraw d = m.next();
  CHECK(d.counts == std::vector<int64_t>{0, 2, 4});  // 1.5 and 4.5: the tied remainder goes to the lower index
  CHECK(d.indices[2].size() == 4);
  CHECK(m.weights()[2] == doctest::Approx(0.75));

  // The same seed and weight sequence give the same draws; reset() replays them.
  auto run = [](MixtureSampler& s) {
    std::vector<int64_t> all;
    for (int t = 0; t < 5; ++t) {
      if (t == 2) s.set_weights({1, 1, 1});
      auto dd = s.next();
      for (auto& v : dd.indices) all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  MixtureSampler x({7, 100, 5}, 6, {0.5, 0.5, 0.0}, 3), y({7, 100, 5}, 6, {0.5, 0.5, 0.0}, 3), z({7, 100, 5}, 6, {0.5, 0.5, 0.0}, 4);
  auto rx = run(x);
  CHECK(rx == run(y));
  CHECK(rx != run(z));
  x.reset();
  x.set_weights({0.5, 0.5, 0.0});
  CHECK(run(x) == rx);

  CHECK(contains(error_of([&] { m.set_weights({1, 1}); }), "2 weights for 3 sources"));
  CHECK(contains(error_of([&] { m.set_weights({1, -1, 1}); }), "weight 1 is -1"));
  CHECK(contains(error_of([&] { m.set_weights({0, 0, 0}); }), "positive"));
  CHECK(contains(error_of([] { MixtureSampler({0, 3}, 2, {1, 1}, 0); }), "source 0 is empty"));
}

TEST_CASE("mixture loader: per-source parts with their own fields") {
  auto a = ids(10);
  auto b = std::make_shared<TensorDataset>(std::map<std::string, Tensor>{
      {"x", Tensor::full({6, 2, 3}, 7.0)}, {"y1", Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5})}});
  MixtureLoader ml({a, b}, 8, {0.75, 0.25}, 5);
  MixtureBatch mb = ml.next();
  CHECK(mb.counts == std::vector<int64_t>{6, 2});
  CHECK(mb.parts[0].at("x").shape() == Shape{6, 2, 3});
  CHECK(mb.parts[1].at("y1").shape() == Shape{2});
  CHECK_FALSE(mb.parts[1].has("id"));
  ml.set_weights({0, 1});
  mb = ml.next();
  CHECK(mb.counts == std::vector<int64_t>{0, 8});
  CHECK(mb.parts[0].empty());
  CHECK(mb.parts[1].at("x").shape() == Shape{8, 2, 3});
  // Source 1 has 6 examples: 2 were used, so this batch finishes its epoch 0 and starts epoch 1.
  CHECK(ml.sampler().source_epochs()[1] == 1);
}

TEST_CASE("loader: pinned staging gives the same batches in the same order") {
  auto ds = ids(23);
  DataLoader plain(ds, 4, true, false, 7), pinned(ds, 4, true, false, 7, /*prefetch=*/3);
  pinned.pin_memory(Device::cuda(0));
  CHECK(pinned.pinned_staging());
  CHECK_FALSE(plain.pinned_staging());
  // Page-locked memory exists only where a CUDA backend is registered; elsewhere the batches stay
  // in ordinary memory with the same values.
  const bool expect_pinned = backend_available(Device::cuda(0));
  int batches = 0;
  for (uint64_t e = 0; e < 2; ++e) {
    plain.epoch(e);
    pinned.epoch(e);
    plain.start();
    pinned.start();
    while (true) {
      auto a = plain.next();
      auto b = pinned.next();
      REQUIRE(a.has_value() == b.has_value());
      if (!a) break;
      ++batches;
      REQUIRE(a->names() == b->names());
      for (const auto& name : a->names()) {
        const Tensor& x = a->at(name);
        const Tensor& y = b->at(name);
        CHECK(y.is_contiguous());
        CHECK(y.is_pinned() == expect_pinned);
        REQUIRE(x.shape() == y.shape());
        REQUIRE(x.dtype() == y.dtype());
        Tensor xc = x.contiguous();
        CHECK(std::memcmp(xc.raw(), y.raw(), size_t(x.numel()) * x.itemsize()) == 0);
      }
    }
  }
  CHECK(batches == 12);
  CHECK(contains(error_of([&] { plain.pin_memory(Device::cpu()); }), "pinned staging is for copies to an accelerator"));
}
