// data/image_folder.cpp: image folders and CSV image listings via stb_image.
// This is the one translation unit that defines STB_IMAGE_IMPLEMENTATION.
#include "data/image_folder.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

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
#include "stb_image.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace polyhead::data {

namespace fs = std::filesystem;

namespace {
const char* kOp = "data::load_image_folder";

bool is_image_name(const std::string& name) {
  static const char* exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".psd", ".hdr", ".pic", ".pgm", ".ppm", ".pnm"};
  std::string e = fs::path(name).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (auto x : exts)
    if (e == x) return true;
  return false;
}

// Binary PNM (P5 / P6) headers are parsed here exactly as stb_image 2.27 parses them, because
// stb (a) overflows a signed int on a header number of 10+ digits and (b) does not notice pixel
// data cut short (it returns a partly uninitialised image). Other formats are decoded as stb
// does (PNG / zlib report truncation; BMP, TGA and JPEG read missing bytes as zeros).
struct PnmHeader {
  bool is_pnm = false;
  std::string error;       // non-empty: reject before stb sees the file
  size_t data_offset = 0;  // where the pixels start
};

PnmHeader pnm_header(const std::vector<uint8_t>& b) {
  PnmHeader h;
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return h;
  h.is_pnm = true;
  size_t pos = 2;
  auto eof = [&] { return pos >= b.size(); };
  auto get8 = [&]() -> char { return eof() ? char(0) : char(b[pos++]); };
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  char c = get8();
  const char* names[3] = {"width", "height", "maximum value"};
  for (int field = 0; field < 3; ++field) {
    for (;;) {  // whitespace and # comments
      while (!eof() && space(c)) c = get8();
      if (eof() || c != '#') break;
      while (!eof() && c != '\n' && c != '\r') c = get8();
    }
    int digits = 0;
    const size_t start = pos - 1;  // offset of c
    while (!eof() && c >= '0' && c <= '9') {
      if (++digits > 8) {
        h.error = std::string("PNM header: the ") + names[field] + " at offset " + std::to_string(start) + " has more than 8 digits";
        return h;
      }
      c = get8();
    }
  }
  h.data_offset = pos;
  return h;
}

std::string pnm_truncation(const std::vector<uint8_t>& b, const PnmHeader& ph, int w, int h, int c) {
  if (!ph.is_pnm) return {};
  const bool wide = stbi_is_16_bit_from_memory(b.data(), int(b.size()));
  const uint64_t need = uint64_t(w) * uint64_t(h) * uint64_t(c) * (wide ? 2u : 1u);
  const uint64_t have = b.size() > ph.data_offset ? b.size() - ph.data_offset : 0;
  if (have >= need) return {};
  return "truncated PNM: expected " + std::to_string(need) + " bytes of pixel data from offset " +
         std::to_string(ph.data_offset) + ", found " + std::to_string(have);
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
    const PnmHeader ph = pnm_header(bytes);
    if (!ph.error.empty()) {
      d.error = "'" + path + "': " + ph.error;
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
    if (std::string t = pnm_truncation(bytes, ph, w, h, c); !t.empty()) {
      d.error = "'" + path + "': " + t;
      return d;
    }
    int cw = 0, ch = 0, cc = 0;
    uint8_t* px = stbi_load_from_memory(bytes.data(), int(bytes.size()), &cw, &ch, &cc, channels);
    if (!px) {
      d.error = "'" + path + "': cannot decode the image (" + stbi_failure_reason() + ")";
      return d;
    }
    d.w = cw;
    d.h = ch;
    d.c = channels ? channels : cc;
    d.hwc.assign(px, px + size_t(cw) * size_t(ch) * size_t(d.c));
    stbi_image_free(px);
  } catch (const Error& e) {
    d.error = e.what();
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
