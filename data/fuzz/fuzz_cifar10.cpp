// data/fuzz/fuzz_cifar10.cpp: libFuzzer target for the CIFAR-10 binary batch reader.
// Besides the raw input, it builds a batch of 1..3 well-formed records whose label bytes come
// from the input and cuts it at an input-chosen point, so the label and truncation checks are
// reached without the fuzzer having to grow inputs past 3073 bytes.
#include <vector>

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
  if (size >= 6) {
    const size_t n = 1 + data[0] % 3, rec = 3073;
    std::vector<uint8_t> buf(n * rec);
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i * 31 + data[5]);
    for (size_t k = 0; k < n; ++k) buf[k * rec] = data[1 + k];
    size_t cut = (size_t(data[4]) << 8 | data[5]) % (buf.size() + 1);
    if (data[4] & 0x80) cut = buf.size();  // often keep it whole
    try {
      data::parse_cifar10_batch(buf.data(), cut, "<records>");
    } catch (const Error&) {
    }
  }
  return 0;
}
