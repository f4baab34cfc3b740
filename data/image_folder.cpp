// data/image_folder.cpp: image folders and CSV image listings: PNG / JPEG / BMP via stb_image
// (this is the one translation unit that defines STB_IMAGE_IMPLEMENTATION), binary PNM by our own code.
#include "data/image_folder.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <memory>

#include "data/csv.h"
#include "data/io.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // files are read through data::read_file (errors name the file)
// Only the formats image datasets use; fewer decoders, less of stb 2.27's fuzzing surface.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#include "stb_image.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace polyhead::data {

namespace fs = std::filesystem;

namespace {
const char* kOp = "data::load_image_folder";

bool is_image_name(const std::string& name) {
  static const char* exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm"};
  std::string e = fs::path(name).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (auto x : exts)
    if (e == x) return true;
  return false;
}

// Binary PNM (P5 grey, P6 RGB) is decoded here rather than by stb_image 2.27, which overflows
// an int on long header numbers, returns partly uninitialised pixels when the data is cut short,
// reads 16-bit samples in the wrong byte order and overruns its buffer converting them (the last
// two found by data/fuzz/fuzz_image_folder). Header: magic, width, height, maxval (each after
// whitespace and # comments), one whitespace byte, then width * height * channels samples of 1
// byte (maxval < 256) or 2 big-endian bytes; samples are scaled to 0..255 as
// round(255 * v / maxval). Bytes after the image are ignored.
struct Pnm {
  bool is_pnm = false;
  std::string error;  // non-empty: the file is a bad PNM
  int w = 0, h = 0, c = 0;
  std::vector<uint8_t> hwc;
};

Pnm decode_pnm(const std::vector<uint8_t>& b, int64_t max_pixels) {
  Pnm r;
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return r;
  r.is_pnm = true;
  r.c = b[1] == '5' ? 1 : 3;
  size_t pos = 2;
  auto space = [](uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  const char* names[3] = {"width", "height", "maximum value"};
  uint32_t v[3] = {0, 0, 0};
  for (int f = 0; f < 3; ++f) {
    for (;;) {  // whitespace and # comments
      while (pos < b.size() && space(b[pos])) ++pos;
      if (pos < b.size() && b[pos] == '#') {
        while (pos < b.size() && b[pos] != '\n' && b[pos] != '\r') ++pos;
        continue;
      }
      break;
    }
    const size_t start = pos;
    while (pos < b.size() && b[pos] >= '0' && b[pos] <= '9') {
      if (pos - start >= 8) {
        r.error = std::string("PNM header: the ") + names[f] + " at offset " + std::to_string(start) + " has more than 8 digits";
        return r;
      }
      v[f] = v[f] * 10 + uint32_t(b[pos++] - '0');
    }
    if (pos == start) {
      r.error = std::string("PNM header: expected the ") + names[f] + " (a decimal number) at offset " + std::to_string(pos);
      return r;
    }
  }
  if (pos >= b.size() || !space(b[pos])) {
    r.error = "PNM header: expected one whitespace byte after the maximum value at offset " + std::to_string(pos);
    return r;
  }
  ++pos;
  if (v[0] == 0 || v[1] == 0) {
    r.error = "PNM header: the image is " + std::to_string(v[0]) + " x " + std::to_string(v[1]) + " pixels";
    return r;
  }
  if (v[2] == 0 || v[2] > 65535) {
    r.error = "PNM header: maximum value " + std::to_string(v[2]) + " out of range, expected 1..65535";
    return r;
  }
  if (int64_t(v[0]) * int64_t(v[1]) > max_pixels) {
    r.error = std::to_string(v[0]) + " x " + std::to_string(v[1]) + " pixels, more than the limit of " + std::to_string(max_pixels);
    return r;
  }
  r.w = int(v[0]);
  r.h = int(v[1]);
  const uint32_t maxval = v[2];
  const size_t bps = maxval > 255 ? 2 : 1;
  const size_t n = size_t(r.w) * size_t(r.h) * size_t(r.c);
  const size_t have = b.size() - pos;
  if (have < n * bps) {
    r.error = "truncated PNM: expected " + std::to_string(n * bps) + " bytes of pixel data from offset " + std::to_string(pos) +
              ", found " + std::to_string(have);
    return r;
  }
  r.hwc.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t s = bps == 1 ? b[pos + i] : (uint32_t(b[pos + 2 * i]) << 8 | b[pos + 2 * i + 1]);
    if (s > maxval) {
      r.error = "PNM sample " + std::to_string(s) + " at offset " + std::to_string(pos + i * bps) + " exceeds the maximum value " +
                std::to_string(maxval);
      r.hwc.clear();
      return r;
    }
    r.hwc[i] = maxval == 255 ? uint8_t(s) : uint8_t((s * 255 + maxval / 2) / maxval);
  }
  return r;
}

// stb_image 2.27 writes past a Huffman table's 257-entry array when a JPEG DHT segment declares
// more than 256 codes (found by data/fuzz/fuzz_image_folder), so DHT segments are checked first,
// read the way stb reads them (tables follow one another while the segment length lasts; bytes
// past the end of the file read as 0). Up to the first SOS the markers are walked as stb walks
// them (bytes between markers skipped, each segment skipped by its length); after it every
// FF C4 in the file is checked, since stb may meet one anywhere in the scans.
std::string jpeg_dht_check(const std::vector<uint8_t>& b) {
  const size_t n = b.size();
  auto at = [&](size_t i) -> int { return i < n ? b[i] : 0; };
  size_t pos = 0;
  if (at(0) != 0xFF) return {};
  while (pos < n && b[pos] == 0xFF) ++pos;
  if (at(pos) != 0xD8) return {};  // not a JPEG for stb
  ++pos;
  auto check_dht = [&](size_t m) -> std::string {  // m: offset of the FF of FF C4
    int64_t L = int64_t(at(m + 2) << 8 | at(m + 3)) - 2;
    size_t q = m + 4;
    while (L > 0 && q < n) {
      const int tc = at(q) >> 4, th = at(q) & 15;
      if (tc > 1 || th > 3) break;  // stb rejects the file here
      int count = 0;
      for (int i = 0; i < 16; ++i) count += at(q + 1 + size_t(i));
      if (count > 256)
        return "JPEG: the Huffman table at offset " + std::to_string(q) + " declares " + std::to_string(count) +
               " codes, at most 256 are possible";
      q += 17 + size_t(count);
      L -= 17 + count;
    }
    return {};
  };
  while (pos < n) {  // markers before the first scan
    if (b[pos++] != 0xFF) continue;
    while (pos < n && b[pos] == 0xFF) ++pos;
    if (pos >= n) break;
    const size_t m = pos - 1;  // the FF before the marker byte
    const int marker = b[pos++];
    if (marker == 0xD9) return {};  // EOI
    if (marker == 0xDA) break;       // SOS: the scans begin
    if (marker == 0xC4)
      if (std::string e = check_dht(m); !e.empty()) return e;
    pos += size_t(at(pos) << 8 | at(pos + 1));  // the segment, its length field included
  }
  for (size_t i = pos; i + 1 < n; ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xC4)
      if (std::string e = check_dht(i); !e.empty()) return e;
  return {};
}

// Interleaved pixels from `from` to `to` channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA), with
// stb_image's rules: grey is replicated, a missing alpha is 255, grey from colour is
// (77 r + 150 g + 29 b) >> 8.
std::vector<uint8_t> convert_channels(const uint8_t* px, size_t n, int from, int to) {
  std::vector<uint8_t> out(n * size_t(to));
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = px + i * size_t(from);
    uint8_t r, g, b, a = from == 2 ? p[1] : from == 4 ? p[3] : 255;
    if (from <= 2) {
      r = g = b = p[0];
    } else {
      r = p[0];
      g = p[1];
      b = p[2];
    }
    const uint8_t y = from <= 2 ? p[0] : uint8_t((r * 77 + g * 150 + b * 29) >> 8);
    uint8_t* o = out.data() + i * size_t(to);
    switch (to) {
      case 1: o[0] = y; break;
      case 2: o[0] = y; o[1] = a; break;
      case 3: o[0] = r; o[1] = g; o[2] = b; break;
      default: o[0] = r; o[1] = g; o[2] = b; o[3] = a; break;
    }
  }
  return out;
}

struct Decoded {
  int w = 0, h = 0, c = 0;
  std::vector<uint8_t> hwc;  // interleaved as decoded
  std::string error;         // non-empty: the decode failed
};

// Decodes with `channels` (0 = as stored). Never throws; errors are returned.
Decoded decode(const std::string& path, int channels, int64_t max_pixels) {
  Decoded d;
  try {
    std::vector<uint8_t> bytes = read_file(path, kOp, uint64_t(1) << 32);
    if (bytes.size() > size_t(INT32_MAX)) { d.error = "'" + path + "': larger than 2 GiB"; return d; }
    Pnm pnm = decode_pnm(bytes, max_pixels);
    if (pnm.is_pnm) {
      if (!pnm.error.empty()) { d.error = "'" + path + "': " + pnm.error; return d; }
      d.w = pnm.w;
      d.h = pnm.h;
      d.c = channels ? channels : pnm.c;
      d.hwc = convert_channels(pnm.hwc.data(), size_t(pnm.w) * size_t(pnm.h), pnm.c, d.c);
      return d;
    }
    if (std::string e = jpeg_dht_check(bytes); !e.empty()) {
      d.error = "'" + path + "': " + e;
      return d;
    }
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &c)) {
      d.error = "'" + path + "': not a decodable image (" + stbi_failure_reason() + ")";
      return d;
    }
    if (w <= 0 || h <= 0 || int64_t(w) * int64_t(h) > max_pixels) {
      d.error = "'" + path + "': " + std::to_string(w) + " x " + std::to_string(h) + " pixels, more than the limit of " +
                std::to_string(max_pixels);
      return d;
    }
    // Decoded in the file's own channel count (req_comp 0) and converted by convert_channels,
    // which keeps stb's own conversion paths out of the way.
    int cw = 0, ch = 0, cc = 0;
    uint8_t* px = stbi_load_from_memory(bytes.data(), int(bytes.size()), &cw, &ch, &cc, 0);
    if (!px) {
      d.error = "'" + path + "': cannot decode the image (" + stbi_failure_reason() + ")";
      return d;
    }
    std::unique_ptr<uint8_t, void (*)(void*)> own(px, stbi_image_free);
    if (cc < 1 || cc > 4) {
      d.error = "'" + path + "': decoded with " + std::to_string(cc) + " channels, expected 1 to 4";
      return d;
    }
    d.w = cw;
    d.h = ch;
    d.c = channels ? channels : cc;
    d.hwc = convert_channels(px, size_t(cw) * size_t(ch), cc, d.c);
  } catch (const Error& e) {
    d.error = e.what();
  } catch (const std::bad_alloc&) {
    d.error = "'" + path + "': out of memory decoding the image";
  }
  return d;
}

// Decodes all files (in parallel) into (N, C, H, W); the first failure in file order is reported.
Tensor decode_all(const std::vector<std::string>& files, const std::vector<std::string>& where,
                  const ImageFolderOptions& opt) {
  PH_CHECK(opt.channels >= 0 && opt.channels <= 4, kOp, "channels must be 0..4, got " << opt.channels);
  PH_CHECK(!files.empty(), kOp, "no images");
  const size_t N = files.size();
  // The first image fixes the channel count (when not forced) and the size.
  Decoded first = decode(files[0], opt.channels, opt.max_pixels);
  if (!first.error.empty()) throw Error(kOp, where[0] + first.error);
  const int C = first.c, H = first.h, W = first.w;
  Tensor out = Tensor::empty({int64_t(N), C, H, W}, DType::u8);
  uint8_t* o = static_cast<uint8_t*>(out.raw());
  const size_t plane = size_t(H) * size_t(W), img = plane * size_t(C);
  std::vector<std::string> errors(N);
  auto place = [&](size_t i, const Decoded& d) {
    if (!d.error.empty()) { errors[i] = where[i] + d.error; return; }
    if (d.w != W || d.h != H) {
      errors[i] = where[i] + "'" + files[i] + "' is " + std::to_string(d.w) + " x " + std::to_string(d.h) + " but '" + files[0] +
                  "' (the first image) is " + std::to_string(W) + " x " + std::to_string(H) +
                  "; all images must have the same size (this reader does not resize)";
      return;
    }
    uint8_t* dst = o + i * img;
    for (size_t p = 0; p < plane; ++p)
      for (int c = 0; c < C; ++c) dst[size_t(c) * plane + p] = d.hwc[p * size_t(C) + size_t(c)];
  };
  place(0, first);
  tbb::parallel_for(tbb::blocked_range<size_t>(1, N), [&](const tbb::blocked_range<size_t>& r) {
    for (size_t i = r.begin(); i < r.end(); ++i) place(i, decode(files[i], C, opt.max_pixels));
  });
  for (size_t i = 0; i < N; ++i)
    if (!errors[i].empty()) throw Error(kOp, errors[i]);
  return out;
}

std::vector<fs::directory_entry> sorted_entries(const fs::path& dir) {
  std::vector<fs::directory_entry> v;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) v.push_back(*it);
  if (ec) file_error(kOp, dir.string(), "cannot list the folder: " + ec.message());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.path().filename().string() < b.path().filename().string(); });
  return v;
}
}  // namespace

Tensor read_image(const std::string& path, int channels, int64_t max_pixels) {
  PH_CHECK(channels >= 0 && channels <= 4, "data::read_image", "channels must be 0..4, got " << channels);
  Decoded d = decode(path, channels, max_pixels);
  if (!d.error.empty()) throw Error("data::read_image", d.error);
  Tensor out = Tensor::empty({d.c, d.h, d.w}, DType::u8);
  uint8_t* o = static_cast<uint8_t*>(out.raw());
  const size_t plane = size_t(d.h) * size_t(d.w);
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < d.c; ++c) o[size_t(c) * plane + p] = d.hwc[p * size_t(d.c) + size_t(c)];
  return out;
}

ImageSet load_image_folder(const std::string& root, const ImageFolderOptions& opt) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) file_error(kOp, root, "not a folder (expected root/<class>/<image files>)");
  ImageSet s;
  std::vector<int64_t> labels;
  for (auto& e : sorted_entries(root)) {
    std::string cname = e.path().filename().string();
    if (cname.empty() || cname[0] == '.' || !e.is_directory(ec)) continue;
    int64_t label = int64_t(s.classes.size());
    size_t before = s.files.size();
    for (auto& f : sorted_entries(e.path())) {
      std::string fname = f.path().filename().string();
      if (fname.empty() || fname[0] == '.' || !is_image_name(fname) || f.is_directory(ec)) continue;
      s.files.push_back(f.path().string());
      labels.push_back(label);
    }
    if (s.files.size() == before)
      file_error(kOp, e.path().string(), "class folder holds no image files (.png, .jpg, .bmp, .pgm, ...)");
    s.classes.push_back(cname);
  }
  if (s.classes.empty()) file_error(kOp, root, "no class subfolders (expected root/<class>/<image files>)");
  std::vector<std::string> where(s.files.size());
  s.images = decode_all(s.files, where, opt);
  s.target_names = {"class"};
  s.targets = {Tensor::from_vector(labels)};
  return s;
}

ImageSet load_image_list(const std::string& csv_path, const ImageFolderOptions& opt) {
  const char* op = "data::load_image_list";
  CsvTable t = read_csv(csv_path);
  if (t.header.size() < 2)
    file_error(op, csv_path, "line 1: expected a header 'file,<target>,...' with at least one target column, found " +
                                 std::to_string(t.header.size()) + " column(s)");
  if (t.rows.empty()) file_error(op, csv_path, "no rows after the header");
  const fs::path base = fs::path(csv_path).parent_path();
  ImageSet s;
  const size_t N = t.rows.size(), K = t.header.size() - 1;
  std::vector<std::vector<int64_t>> labels(K, std::vector<int64_t>(N));
  std::vector<std::string> where(N);
  for (size_t r = 0; r < N; ++r) {
    const std::string& rel = t.rows[r][0];
    if (rel.empty()) file_error(op, csv_path, "line " + std::to_string(t.lines[r]) + ", column 1: empty file name");
    fs::path p(rel);
    if (p.is_relative()) p = base / p;
    s.files.push_back(p.string());
    where[r] = "'" + csv_path + "' line " + std::to_string(t.lines[r]) + ": ";
    for (size_t k = 0; k < K; ++k) {
      int64_t v = csv_integer(t, r, int(k + 1));
      if (v < 0)
        file_error(op, csv_path, "line " + std::to_string(t.lines[r]) + ", column " + std::to_string(k + 2) + " ('" +
                                     t.header[k + 1] + "'): label " + std::to_string(v) + " is negative");
      labels[k][r] = v;
    }
  }
  s.images = decode_all(s.files, where, opt);
  for (size_t k = 0; k < K; ++k) {
    s.target_names.push_back(t.header[k + 1]);
    s.targets.push_back(Tensor::from_vector(labels[k]));
  }
  return s;
}

std::shared_ptr<TensorDataset> image_dataset(const ImageSet& s) {
  std::map<std::string, Tensor> m{{"x", u8_to_unit_float(s.images)}};
  for (size_t k = 0; k < s.targets.size(); ++k) m.emplace(target_name(int(k)), s.targets[k]);
  return std::make_shared<TensorDataset>(m);
}

}  // namespace polyhead::data
