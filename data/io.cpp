// data/io.cpp: whole-file reading through zlib (plain or gzip) with descriptive errors.
#include "data/io.h"

#include <zlib.h>

#include <algorithm>
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

  // A plain file is read in one call of its size + 1 (to see its end); a gzip stream in chunks
  // that grow with what has been read. After a short read, one small read confirms the end.
  const uint64_t on_disk = uint64_t(fs::file_size(path, ec));
  const bool direct = gzdirect(f) && !ec;
  std::vector<uint8_t> out;
  size_t chunk = direct ? size_t(std::min<uint64_t>(on_disk + 1, uint64_t(1) << 30)) : size_t(1) << 16;
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
    chunk = size_t(n) < chunk ? size_t(4096) : std::clamp<size_t>(out.size(), size_t(1) << 16, size_t(1) << 26);
  }
  int errnum = 0;
  std::string msg = gz_message(f, path, &errnum);
  if (errnum != Z_OK && errnum != Z_STREAM_END)
    file_error(op, path,
               "gzip stream ends early or is corrupt after " + std::to_string(out.size()) +
                   " decompressed bytes: " + msg,
               "the .gz file is truncated or damaged; fetch it again");
  return out;
}

}  // namespace polyhead::data
