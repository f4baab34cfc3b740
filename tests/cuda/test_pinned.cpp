// tests/cuda/test_pinned.cpp: pinned staging on the GPU. Tensor::pin_memory() gives page-locked
// memory; to(cuda) from it returns before the copy completes and keeps the source alive until it
// has, so dropping the host tensor at once is safe; a pinned DataLoader's batches reach the device
// with the same values as unpinned ones. Skipped without a GPU.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using namespace polyhead;

namespace {
const bool kNoGpuForPinned = !polyhead::cuda::available();

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::cpu()).contiguous(), y = b.to(Device::cpu()).contiguous();
  return x.shape() == y.shape() && x.dtype() == y.dtype() &&
         std::memcmp(x.raw(), y.raw(), size_t(x.numel()) * x.itemsize()) == 0;
}
}  // namespace

TEST_CASE("pinned: page-locked host tensors copy to the device asynchronously and stay alive" * doctest::skip(kNoGpuForPinned)) {
  const Device gpu = Device::cuda(0);
  manual_seed(11);
  std::vector<Tensor> expected, on_device;
  for (int i = 0; i < 40; ++i) {
    Tensor h = Tensor::randn({257, 129}, DType::f32);
    expected.push_back(h);
    Tensor p = h.pin_memory(gpu);
    REQUIRE(p.is_pinned());
    on_device.push_back(p.to(gpu));
    // p goes out of scope here, with its copy possibly still in flight.
  }
  backend_for(gpu).synchronize();
  for (size_t i = 0; i < expected.size(); ++i) CHECK(same_bits(expected[i], on_device[i]));
  // A device tensor cannot be pinned.
  CHECK_THROWS_AS(on_device[0].pin_memory(gpu), Error);
}

TEST_CASE("pinned: a pinned DataLoader's batches reach the device unchanged" * doctest::skip(kNoGpuForPinned)) {
  const Device gpu = Device::cuda(0);
  manual_seed(12);
  auto ds = std::make_shared<data::TensorDataset>(std::map<std::string, Tensor>{
      {"x", Tensor::randn({100, 3, 8, 8}, DType::f32)}, {"y0", Tensor::arange(0, 100, 1, DType::i64)}});
  data::DataLoader plain(ds, 16, true, false, 5), pinned(ds, 16, true, false, 5, 4);
  pinned.pin_memory(gpu);
  int n = 0;
  while (true) {
    auto a = plain.next();
    auto b = pinned.next();
    REQUIRE(a.has_value() == b.has_value());
    if (!a) break;
    for (const auto& name : a->names()) {
      CHECK(b->at(name).is_pinned());
      CHECK(same_bits(a->at(name), b->at(name).to(gpu)));
    }
    ++n;
  }
  CHECK(n == 7);
}
