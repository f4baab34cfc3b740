// data/fuzz/fuzz_mnist.cpp: libFuzzer target for the IDX / MNIST reader (plain and gzip).
#include "data/fuzz/fuzz_common.h"
#include "data/mnist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace polyhead;
  try {
    data::parse_idx(data, size, "<memory>");
  } catch (const Error&) {
  }
  std::string path = data::fuzz::write_input("input.idx", data, size);
  try {
    data::read_idx(path);  // zlib decides plain vs gzip from the bytes
  } catch (const Error&) {
  }
  try {
    data::load_mnist_files(path, path);  // an images file is never a labels file: always an Error
  } catch (const Error&) {
  }
  return 0;
}
