// tests/data/data_test_util.h: temporary folders and file writers for the data tests.
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/error.h"

namespace polyhead::data::test {

// A fresh folder under the system temp dir, removed (with its contents) at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("polyhead_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  REQUIRE(f.good());
}
inline void write_text(const std::string& path, const std::string& s) {
  write_bytes(path, std::vector<uint8_t>(s.begin(), s.end()));
}
inline void write_gz(const std::string& path, const std::vector<uint8_t>& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(gzwrite(f, b.data(), unsigned(b.size())) == int(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}
inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// An IDX file: type 0x08 (u8) with the given dims and payload.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload,
                                      uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims) {
    b.push_back(uint8_t(d >> 24));
    b.push_back(uint8_t(d >> 16));
    b.push_back(uint8_t(d >> 8));
    b.push_back(uint8_t(d));
  }
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// A binary PGM (channels 1) or PPM (channels 3) image; pixels interleaved, row-major.
inline std::vector<uint8_t> pnm_bytes(int w, int h, int channels, const std::vector<uint8_t>& px) {
  std::string head = std::string(channels == 1 ? "P5" : "P6") + "\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  std::vector<uint8_t> b(head.begin(), head.end());
  b.insert(b.end(), px.begin(), px.end());
  return b;
}

// An 8-bit PNG (channels 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA); pixels interleaved, row-major.
inline std::vector<uint8_t> png_bytes(int w, int h, int channels, const std::vector<uint8_t>& px) {
  auto be32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
  };
  auto chunk = [&](std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
    be32(out, uint32_t(data.size()));
    std::vector<uint8_t> td(type, type + 4);
    td.insert(td.end(), data.begin(), data.end());
    out.insert(out.end(), td.begin(), td.end());
    be32(out, uint32_t(crc32(0, td.data(), uInt(td.size()))));
  };
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  be32(ihdr, uint32_t(w));
  be32(ihdr, uint32_t(h));
  const uint8_t color[5] = {0, 0, 4, 2, 6};
  ihdr.insert(ihdr.end(), {8, color[channels], 0, 0, 0});
  chunk(out, "IHDR", ihdr);
  std::vector<uint8_t> raw;  // filter byte 0 before each row
  for (int r = 0; r < h; ++r) {
    raw.push_back(0);
    raw.insert(raw.end(), px.begin() + long(r) * w * channels, px.begin() + long(r + 1) * w * channels);
  }
  uLongf len = compressBound(uLong(raw.size()));
  std::vector<uint8_t> z(len);
  REQUIRE(compress(z.data(), &len, raw.data(), uLong(raw.size())) == Z_OK);
  z.resize(len);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", {});
  return out;
}

// The message of the polyhead::Error thrown by f ("" when none is thrown).
template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const polyhead::Error& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace polyhead::data::test
