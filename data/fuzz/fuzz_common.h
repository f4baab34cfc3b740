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

// /dev/shm when there is one (memory-backed: many more executions per second), else the temp dir.
inline std::filesystem::path scratch_root() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

inline const std::filesystem::path& scratch() {
  // Never destroyed, so the atexit clean-up can still read it.
  static const std::filesystem::path* dir = [] {
    auto* p = new std::filesystem::path(scratch_root() / ("polyhead_fuzz_" + std::to_string(::getpid())));
    std::filesystem::remove_all(*p);
    std::filesystem::create_directories(*p);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch(), ec);
    });
    return p;
  }();
  return *dir;
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
