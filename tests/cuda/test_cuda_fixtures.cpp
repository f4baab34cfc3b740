// tests/cuda/test_cuda_fixtures.cpp: the whole-model PyTorch fixtures (mlp, cnn, transformer) run
// on the GPU in f64: forward, loss, every gradient, and 10 SGD / AdamW steps, at the same
// tolerances as on the CPU (cuBLAS / cuDNN sum in other orders; the measured errors are ulps).
#include <doctest/doctest.h>

#include "engine/cuda/cuda_api.h"
#include "tests/layers/fixture_models.h"

namespace {
const bool kNoGpuForFixtures = !polyhead::cuda::available();
}

TEST_CASE("cuda fixtures: forward, backward and training match PyTorch (f64)" * doctest::skip(kNoGpuForFixtures)) {
  polyhead::cuda::init();
  g_fixture_device = Device::cuda(0);
  for (const char* name : kModels) {
    for (bool flat : {false, true}) {
      check_forward_backward(name, flat);
      check_training(name, Opt::SGD, flat);
      check_training(name, Opt::AdamW, flat);
    }
  }
  g_fixture_device = Device::cpu();
}
