// data/text.cpp: byte-level token streams and random next-byte windows.
#include "data/text.h"

#include <cstring>

#include "data/io.h"
#include "data/sampler.h"

namespace polyhead::data {

Tensor read_text_bytes(const std::vector<std::string>& paths) {
  const char* op = "data::read_text_bytes";
  PH_CHECK(!paths.empty(), op, "no files given");
  std::vector<std::vector<uint8_t>> parts;
  size_t total = 0;
  for (auto& p : paths) {
    parts.push_back(read_file(p, op));
    total += parts.back().size();
  }
  if (total == 0) file_error(op, paths[0], paths.size() == 1 ? "the file is empty" : "all the files are empty");
  Tensor t = Tensor::empty({int64_t(total)}, DType::u8);
  uint8_t* o = static_cast<uint8_t*>(t.raw());
  for (auto& b : parts) {
    if (!b.empty()) std::memcpy(o, b.data(), b.size());
    o += b.size();
  }
  return t;
}

Tensor text_to_bytes(const std::string& s) {
  Tensor t = Tensor::empty({int64_t(s.size())}, DType::u8);
  if (!s.empty()) std::memcpy(t.raw(), s.data(), s.size());
  return t;
}

std::string bytes_to_text(const Tensor& tokens) {
  PH_CHECK(tokens.defined() && (tokens.dtype() == DType::u8 || tokens.dtype() == DType::i64), "data::bytes_to_text",
           "expected u8 or i64 tokens");
  std::vector<int64_t> v = tokens.to_vector<int64_t>();
  std::string s(v.size(), '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    PH_CHECK(v[i] >= 0 && v[i] <= 255, "data::bytes_to_text", "token " << v[i] << " at position " << i << " is not a byte");
    s[i] = char(uint8_t(v[i]));
  }
  return s;
}

static void check_stream(const Tensor& stream, int64_t T, const char* op) {
  PH_CHECK(stream.defined() && stream.dtype() == DType::u8 && stream.dim() == 1 && stream.device().is_cpu(), op,
           "the stream must be a 1-D CPU u8 tensor, got " << (stream.defined() ? stream.str() : std::string("undefined")));
  PH_CHECK(T >= 1, op, "context length T must be >= 1, got " << T);
  PH_CHECK(stream.size(0) >= T + 1, op,
           "the stream has " << stream.size(0) << " bytes; windows of T + 1 = " << T + 1 << " bytes need at least that many");
}

static void fill_window(const uint8_t* s, int64_t start, int64_t T, int64_t* x, int64_t* y) {
  for (int64_t t = 0; t < T; ++t) {
    x[t] = s[start + t];
    y[t] = s[start + t + 1];
  }
}

TextWindows::TextWindows(Tensor stream, int64_t T, int64_t windows_per_epoch, uint64_t seed)
    : stream_(stream.defined() && !stream.is_contiguous() ? stream.contiguous() : stream), T_(T), n_(windows_per_epoch),
      seed_(seed) {
  check_stream(stream_, T, "data::TextWindows");
  PH_CHECK(windows_per_epoch >= 1, "data::TextWindows", "windows_per_epoch must be >= 1, got " << windows_per_epoch);
}

int64_t TextWindows::window_start(int64_t i) const {
  check_index(i, "data::TextWindows");
  return int64_t(uniform_index(derive_seed(derive_seed(seed_, epoch_), 0), uint64_t(i), uint64_t(stream_.size(0) - T_)));
}

Example TextWindows::get(int64_t i) const {
  int64_t s = window_start(i);
  Tensor x = Tensor::empty({T_}, DType::i64), y = Tensor::empty({T_}, DType::i64);
  fill_window(static_cast<const uint8_t*>(stream_.raw()), s, T_, x.data<int64_t>(), y.data<int64_t>());
  Example e;
  e["x"] = x;
  e["y0"] = y;
  return e;
}

Batch TextWindows::get_batch(std::span<const int64_t> idx) const {
  const int64_t B = int64_t(idx.size());
  PH_CHECK(B > 0, "data::TextWindows::get_batch", "empty index list");
  Tensor x = Tensor::empty({B, T_}, DType::i64), y = Tensor::empty({B, T_}, DType::i64);
  const uint8_t* s = static_cast<const uint8_t*>(stream_.raw());
  for (int64_t b = 0; b < B; ++b)
    fill_window(s, window_start(idx[size_t(b)]), T_, x.data<int64_t>() + b * T_, y.data<int64_t>() + b * T_);
  Batch out;
  out["x"] = x;
  out["y0"] = y;
  return out;
}

Batch text_batch(const Tensor& stream0, int64_t T, int64_t B, uint64_t seed, uint64_t step) {
  const char* op = "data::text_batch";
  check_stream(stream0, T, op);
  PH_CHECK(B >= 1, op, "batch size must be >= 1, got " << B);
  Tensor stream = stream0.is_contiguous() ? stream0 : stream0.contiguous();
  const uint64_t key = derive_seed(derive_seed(seed, step), 1);
  const uint64_t starts = uint64_t(stream.size(0) - T);
  Tensor x = Tensor::empty({B, T}, DType::i64), y = Tensor::empty({B, T}, DType::i64);
  const uint8_t* s = static_cast<const uint8_t*>(stream.raw());
  for (int64_t b = 0; b < B; ++b)
    fill_window(s, int64_t(uniform_index(key, uint64_t(b), starts)), T, x.data<int64_t>() + b * T, y.data<int64_t>() + b * T);
  Batch out;
  out["x"] = x;
  out["y0"] = y;
  return out;
}

}  // namespace polyhead::data
