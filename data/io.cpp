// data/io.cpp: whole-file reading through zlib (plain or gzip) with descriptive errors.
#include "data/io.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace polyhead::data {

namespace {
// gzerror's text without its "<path>: " prefix.
std::string gz_message(gzFile f, const std::string& path, int* errnum) {
  std::string m = gzerror(f, errnum);
  if (m.rfind(path + ": ", 0) == 0) m.erase(0, path.size() + 2);
  return m;
}
}  // namespace

void file_error(const char* op, const std::string& path, const std::string& what, const std::string& hint) {
  throw Error(op, "'" + path + "': " + what, hint);
}

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", unsigned(b));
  return buf;
}

std::vector<uint8_t> read_file(const std::string& path, const char* op, uint64_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) file_error(op, path, "file not found");
  if (!fs::is_regular_file(st)) file_error(op, path, "not a regular file");

  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) file_error(op, path, std::string("cannot open: ") + (errno ? std::strerror(errno) : "out of memory"));
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, gzclose_r);
  gzbuffer(f, 1 << 17);

  std::vector<uint8_t> out;
  const size_t chunk = size_t(1) << 20;
  for (;;) {
    size_t have = out.size();
    out.resize(have + chunk);
    int n = gzread(f, out.data() + have, unsigned(chunk));
    if (n < 0) {
      int errnum = 0;
      std::string msg = gz_message(f, path, &errnum);
      out.resize(have);
      file_error(op, path,
                 "read error at (decompressed) offset " + std::to_string(have) + ": " +
                     (errnum == Z_ERRNO ? std::strerror(errno) : msg),
                 gzdirect(f) ? std::string() : "the gzip stream is corrupt; fetch the file again");
    }
    out.resize(have + size_t(n));
    if (uint64_t(out.size()) > max_bytes)
      file_error(op, path, "larger than the limit of " + std::to_string(max_bytes) + " bytes (after decompression)");
    if (n == 0) break;
  }
  int errnum = 0;
  std::string msg = gz_message(f, path, &errnum);
  if (errnum != Z_OK && errnum != Z_STREAM_END)
    file_error(op, path,
               "gzip stream ends early or is corrupt after " + std::to_string(out.size()) +
                   " decompressed bytes: " + msg,
               "the .gz file is truncated or damaged; fetch it again");
  out.shrink_to_fit();
  return out;
}

}  // namespace polyhead::data
