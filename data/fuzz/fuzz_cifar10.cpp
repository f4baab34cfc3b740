// data/fuzz/fuzz_cifar10.cpp: libFuzzer target for the CIFAR-10 binary batch reader.
#include "data/cifar10.h"
#include "data/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace polyhead;
  try {
    data::parse_cifar10_batch(data, size, "<memory>");
  } catch (const Error&) {
  }
  try {
    data::read_cifar10_batch(data::fuzz::write_input("batch.bin", data, size));
  } catch (const Error&) {
  }
  return 0;
}
