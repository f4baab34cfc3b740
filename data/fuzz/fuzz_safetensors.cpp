// data/fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors reader (weights and
// checkpoints): every input either loads or throws polyhead::Error.
#include "data/fuzz/fuzz_common.h"
#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace polyhead;
  std::string path = data::fuzz::write_input("input.safetensors", data, size);
  try {
    auto f = load_safetensors(path);
    for (auto& [name, t] : f.tensors) (void)t.numel();
  } catch (const Error&) {
  }
  return 0;
}
