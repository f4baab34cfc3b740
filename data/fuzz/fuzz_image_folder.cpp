// data/fuzz/fuzz_image_folder.cpp: libFuzzer target for the image folder / CSV listing reader.
// The first byte picks the mode: even -> the rest is an image file in a one-class folder (next to
// a valid 2 x 2 image); odd -> the rest is a CSV listing in a folder holding valid images a.pgm,
// b.pgm (2 x 2) and c.pgm (3 x 2).
#include "data/fuzz/fuzz_common.h"
#include "data/image_folder.h"

namespace {
void put_pgm(const std::string& rel, int w, int h) {
  std::string s = "P5\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n" + std::string(size_t(w * h), '\x7f');
  polyhead::data::fuzz::write_input(rel, reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace polyhead;
  if (size == 0) return 0;
  static bool init = [] {
    put_pgm("folder/cls/a.pgm", 2, 2);
    put_pgm("list/a.pgm", 2, 2);
    put_pgm("list/b.pgm", 2, 2);
    put_pgm("list/c.pgm", 3, 2);
    return true;
  }();
  (void)init;
  data::ImageFolderOptions opt;
  opt.max_pixels = 1 << 20;  // keeps decoded images small under the fuzzer's memory limit
  opt.channels = data[0] / 2 % 5;
  if (data[0] % 2 == 0) {
    std::string path = data::fuzz::write_input("folder/cls/b.png", data + 1, size - 1);
    try {
      data::read_image(path, opt.channels, opt.max_pixels);
    } catch (const Error&) {
    }
    try {
      data::load_image_folder((data::fuzz::scratch() / "folder").string(), opt);
    } catch (const Error&) {
    }
  } else {
    std::string path = data::fuzz::write_input("list/list.csv", data + 1, size - 1);
    try {
      data::load_image_list(path, opt);
    } catch (const Error&) {
    }
  }
  return 0;
}
