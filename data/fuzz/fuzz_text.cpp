// data/fuzz/fuzz_text.cpp: libFuzzer target for the byte-level text reader and its windows.
#include "data/fuzz/fuzz_common.h"
#include "data/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace polyhead;
  try {
    Tensor s = data::read_text_bytes({data::fuzz::write_input("text.txt", data, size)});
    const int64_t T = 1 + (size ? data[0] % 16 : 0);
    data::TextWindows w(s, T, 8, size);
    w.set_epoch(size % 3);
    std::vector<int64_t> idx = {0, 7, 3};
    data::Batch b = w.get_batch(idx);
    data::Example e = w.get(5);
    data::text_batch(s, T, 4, 1, size);
    data::bytes_to_text(b.at("x"));
  } catch (const Error&) {
  }
  return 0;
}
