// data/fuzz/fuzz_common.h: helpers shared by the libFuzzer targets of the data readers.
// Each target writes the input to a file in a per-process scratch folder (so the readers' file,
// gzip and path handling run too) and treats polyhead::Error as the expected outcome of bad input.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace polyhead::data::fuzz {

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto p = std::filesystem::temp_directory_path() / ("polyhead_fuzz_" + std::to_string(::getpid()));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("polyhead_fuzz_" + std::to_string(::getpid())), ec);
    });
    return p;
  }();
  return dir;
}

inline std::string write_input(const std::string& rel, const uint8_t* data, size_t size) {
  std::filesystem::path p = scratch() / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  f.close();
  return p.string();
}

}  // namespace polyhead::data::fuzz
