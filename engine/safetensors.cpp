// engine/safetensors.cpp: the safetensors reader and atomic writer (see safetensors.h).
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

namespace polyhead {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; a big-endian host would need byte swapping");

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference reader's limit
constexpr const char* kSave = "save_safetensors";
constexpr const char* kLoad = "load_safetensors";

// Alignment rank of the reference writer's Dtype enum (U8 < I32 < F32 < F64 < I64).
int align_rank(DType t) {
  switch (t) {
    case DType::u8: return 0;
    case DType::i32: return 1;
    case DType::f32: return 2;
    case DType::f64: return 3;
    case DType::i64: return 4;
  }
  return 0;
}

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"I32", DType::i32}, {"I64", DType::i64}, {"U8", DType::u8}};
  for (const auto& [name, dt] : table)
    if (s == name) { out = dt; return true; }
  return false;
}

std::string q_(const std::string& path) { return "'" + path + "'"; }

std::string errno_text(int e) { return std::string(std::strerror(e)) + " (errno " + std::to_string(e) + ")"; }

// ------------------------------------------------------------------------------------------------
// Writing

void write_all(int fd, const void* p, size_t n, const std::string& tmp) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    const ssize_t w = ::write(fd, c, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw Error(kSave, "writing " + q_(tmp) + " failed: " + errno_text(e));
    }
    c += w;
    n -= size_t(w);
  }
}

struct TmpFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TmpFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  PH_CHECK(!path.empty(), kSave, "empty path");
  // Order and header first: nothing touches the disk until every name and tensor is valid.
  std::vector<std::pair<const std::string*, const Tensor*>> order;
  order.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    PH_CHECK(!name.empty(), kSave, q_(path) << ": a tensor has an empty name");
    PH_CHECK(name != "__metadata__", kSave, q_(path) << ": '__metadata__' is reserved and cannot name a tensor");
    PH_CHECK(t.defined(), kSave, q_(path) << ": tensor '" << name << "' is undefined");
    order.emplace_back(&name, &t);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    const int ra = align_rank(a.second->dtype()), rb = align_rank(b.second->dtype());
    if (ra != rb) return ra > rb;
    return *a.first < *b.first;
  });

  std::string header = "{";
  try {
    bool first = true;
    if (!metadata.empty()) {
      json m = json::object();
      for (const auto& [k, v] : metadata) m[k] = v;
      header += "\"__metadata__\":" + m.dump();
      first = false;
    }
    uint64_t offset = 0;
    for (const auto& [name, t] : order) {
      const uint64_t nbytes = uint64_t(t->numel()) * t->itemsize();
      json shape = json::array();
      for (int64_t d : t->shape()) shape.push_back(uint64_t(d));
      if (!first) header += ',';
      first = false;
      header += json(*name).dump() + ":{\"dtype\":\"" + safetensors_dtype_name(t->dtype()) + "\",\"shape\":" +
                shape.dump() + ",\"data_offsets\":[" + std::to_string(offset) + "," +
                std::to_string(offset + nbytes) + "]}";
      offset += nbytes;
    }
  } catch (const json::exception& e) {  // invalid UTF-8 in a name or a metadata string
    throw Error(kSave, q_(path) + ": a tensor name or metadata string is not valid UTF-8 (" + e.what() + ")");
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  PH_CHECK(header.size() <= kMaxHeader, kSave,
           q_(path) << ": the header would be " << header.size() << " bytes, over the 100 MB readers accept");

  TmpFile tmp;
  tmp.path = path + ".tmp." + std::to_string(::getpid());
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tmp.fd < 0) {
    const int e = errno;
    const std::string tried = tmp.path;
    tmp.path.clear();  // nothing created
    throw Error(kSave, "cannot create the temporary file " + q_(tried) + " to write " + q_(path) + ": " + errno_text(e),
                "the directory must exist and be writable");
  }
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  write_all(tmp.fd, len, 8, tmp.path);
  write_all(tmp.fd, header.data(), header.size(), tmp.path);
  for (const auto& [name, t] : order) {
    if (t->numel() == 0) continue;
    Tensor host = t->to(Device::cpu()).contiguous();  // one tensor at a time on the host
    write_all(tmp.fd, host.raw(), size_t(host.numel()) * host.itemsize(), tmp.path);
  }
  if (::fsync(tmp.fd) != 0) {
    const int e = errno;
    throw Error(kSave, "fsync of " + q_(tmp.path) + " failed: " + errno_text(e));
  }
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) {
    const int e = errno;
    throw Error(kSave, "closing " + q_(tmp.path) + " failed: " + errno_text(e));
  }
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    const int e = errno;
    throw Error(kSave, "cannot rename " + q_(tmp.path) + " to " + q_(path) + ": " + errno_text(e),
                e == EISDIR ? "the path names a directory" : "");
  }
  tmp.keep = true;
  // Make the rename durable (best effort: some file systems refuse fsync on directories).
  const int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

// ------------------------------------------------------------------------------------------------
// Reading

namespace {

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void read_at(int fd, void* dst, uint64_t n, uint64_t off, const std::string& path, const std::string& what) {
  char* c = static_cast<char*>(dst);
  while (n > 0) {
    const size_t chunk = size_t(std::min<uint64_t>(n, uint64_t(1) << 30));
    const ssize_t r = ::pread(fd, c, chunk, off_t(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw Error(kLoad, q_(path) + ": reading " + what + " failed: " + errno_text(e));
    }
    if (r == 0)
      throw Error(kLoad, q_(path) + ": unexpected end of file while reading " + what +
                             " (the file changed while being read?)");
    c += r;
    n -= uint64_t(r);
    off += uint64_t(r);
  }
}

uint64_t get_u64(const json& v, const std::string& path, const std::string& where) {
  PH_CHECK(v.is_number_unsigned(), kLoad,
           q_(path) << ": " << where << " must be a non-negative integer, got " << v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& name, const json& info, const std::string& path) {
  const std::string where = "tensor '" + name + "'";
  PH_CHECK(info.is_object(), kLoad,
           q_(path) << ": " << where << ": expected an object {dtype, shape, data_offsets}, got " << info.dump());
  for (const auto& [k, v] : info.items())
    PH_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", kLoad,
             q_(path) << ": " << where << ": unknown field '" << k << "' (expected dtype, shape, data_offsets)");
  for (const char* k : {"dtype", "shape", "data_offsets"})
    PH_CHECK(info.contains(k), kLoad, q_(path) << ": " << where << ": missing field '" << k << "'");
  Entry e;
  e.name = name;
  const json& dt = info["dtype"];
  PH_CHECK(dt.is_string(), kLoad, q_(path) << ": " << where << ": dtype must be a string, got " << dt.dump());
  PH_CHECK(parse_dtype(dt.get<std::string>(), e.dtype), kLoad,
           q_(path) << ": " << where << ": unsupported dtype " << dt.dump() << " (expected F32, F64, I32, I64 or U8)");
  const json& sh = info["shape"];
  PH_CHECK(sh.is_array(), kLoad, q_(path) << ": " << where << ": shape must be an array, got " << sh.dump());
  uint64_t numel = 1, nonzero = 1;
  bool overflow = false;
  for (size_t i = 0; i < sh.size(); ++i) {
    const uint64_t d = get_u64(sh[i], path, where + ": shape[" + std::to_string(i) + "]");
    if (d > uint64_t(INT64_MAX)) overflow = true;
    if (d != 0 && __builtin_mul_overflow(nonzero, d, &nonzero)) overflow = true;
    if (__builtin_mul_overflow(numel, d, &numel)) overflow = true;
    e.shape.push_back(int64_t(d));
  }
  PH_CHECK(!overflow && nonzero <= uint64_t(INT64_MAX), kLoad,
           q_(path) << ": " << where << ": shape " << sh.dump() << " is too large");
  const json& off = info["data_offsets"];
  PH_CHECK(off.is_array() && off.size() == 2, kLoad,
           q_(path) << ": " << where << ": data_offsets must be [begin, end], got " << off.dump());
  e.begin = get_u64(off[0], path, where + ": data_offsets[0]");
  e.end = get_u64(off[1], path, where + ": data_offsets[1]");
  PH_CHECK(e.begin <= e.end, kLoad,
           q_(path) << ": " << where << ": data_offsets " << off.dump() << " end before they begin");
  uint64_t nbytes = 0;
  PH_CHECK(!__builtin_mul_overflow(numel, uint64_t(dtype_size(e.dtype)), &nbytes), kLoad,
           q_(path) << ": " << where << ": shape " << sh.dump() << " is too large");
  PH_CHECK(e.end - e.begin == nbytes, kLoad,
           q_(path) << ": " << where << ": data_offsets " << off.dump() << " span " << (e.end - e.begin)
                        << " bytes but dtype " << dt.get<std::string>() << " and shape " << sh.dump() << " need "
                        << nbytes);
  return e;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    const int e = errno;
    throw Error(kLoad, "cannot open " + q_(path) + ": " + errno_text(e));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    const int e = errno;
    throw Error(kLoad, "cannot stat " + q_(path) + ": " + errno_text(e));
  }
  PH_CHECK(S_ISREG(st.st_mode), kLoad, q_(path) << " is not a regular file");
  const uint64_t size = uint64_t(st.st_size);
  PH_CHECK(size >= 8, kLoad,
           q_(path) << ": the file is " << size << " bytes, shorter than the 8-byte header length field");

  uint8_t len[8];
  read_at(f.fd, len, 8, 0, path, "the header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
  PH_CHECK(n <= kMaxHeader, kLoad,
           q_(path) << ": header length " << n << " is over the 100000000-byte limit (not a safetensors file?)");
  PH_CHECK(n <= size - 8, kLoad,
           q_(path) << ": header length " << n << " runs past the end of the " << size
                        << "-byte file (expected at most " << (size - 8) << "; truncated file?)");
  std::string header(size_t(n), '\0');
  read_at(f.fd, header.data(), n, 8, path, "the header");

  // JSON text never holds a raw NUL (strings escape it); the JSON parser would stop at one.
  const size_t nul = header.find('\0');
  PH_CHECK(nul == std::string::npos, kLoad,
           q_(path) << ": the header is not valid JSON: NUL byte at header offset " << nul
                    << " (the header must be padded with spaces)");
  json h;
  std::set<std::string> seen;
  std::string duplicate;
  try {
    h = json::parse(header, [&](int depth, json::parse_event_t ev, json& parsed) {
      if (depth == 1 && ev == json::parse_event_t::key && parsed.is_string() && duplicate.empty() &&
          !seen.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const json::exception& e) {
    throw Error(kLoad, q_(path) + ": the " + std::to_string(n) + "-byte header is not valid JSON: " + e.what());
  }
  PH_CHECK(h.is_object(), kLoad, q_(path) << ": the header must be a JSON object, got " << h.type_name());
  PH_CHECK(duplicate.empty(), kLoad, q_(path) << ": the header names '" << duplicate << "' twice");

  SafetensorsFile out;
  std::vector<Entry> entries;
  entries.reserve(h.size());
  for (const auto& [name, info] : h.items()) {
    if (name == "__metadata__") {
      PH_CHECK(info.is_object(), kLoad,
               q_(path) << ": __metadata__ must be an object of strings, got " << info.dump());
      for (const auto& [k, v] : info.items()) {
        PH_CHECK(v.is_string(), kLoad,
                 q_(path) << ": __metadata__ '" << k << "' must be a string, got " << v.dump());
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(name, info, path));
  }

  // Offsets must tile the data region exactly: sorted by offset, each tensor starts where the
  // previous one ended, the first at 0 and the last at the end of the file.
  const uint64_t data_size = size - 8 - n;
  for (const auto& e : entries)
    PH_CHECK(e.end <= data_size, kLoad,
             q_(path) << ": tensor '" << e.name << "': data_offsets [" << e.begin << ", " << e.end
                          << "] run past the end of the " << data_size << "-byte data region (truncated file?)");
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const auto& e : entries) {
    PH_CHECK(e.begin >= pos, kLoad,
             q_(path) << ": tensor '" << e.name << "': data_offsets [" << e.begin << ", " << e.end
                          << "] overlap tensor '" << (prev ? *prev : std::string()) << "' (which ends at " << pos
                          << ")");
    PH_CHECK(e.begin == pos, kLoad,
             q_(path) << ": tensor '" << e.name << "': data_offsets [" << e.begin << ", " << e.end
                          << "] leave a gap after " << (prev ? "tensor '" + *prev + "'" : std::string("the header"))
                          << " (expected the data to begin at " << pos << ")");
    pos = e.end;
    prev = &e.name;
  }
  PH_CHECK(pos == data_size, kLoad,
           q_(path) << ": the data region is " << data_size << " bytes but the tensors' data_offsets end at "
                        << pos << " (expected the file to be " << (8 + n + pos) << " bytes, it is " << size << ")");

  for (const auto& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) read_at(f.fd, t.raw(), e.end - e.begin, 8 + n + e.begin, path, "tensor '" + e.name + "'");
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace polyhead
