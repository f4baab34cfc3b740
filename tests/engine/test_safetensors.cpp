// tests/engine/test_safetensors.cpp: safetensors round trips, the reference writer's byte layout,
// hand-made files, every corruption the reader must reject, truncation at every cut point, and the
// atomic write (an existing file survives a failed write).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "engine/tensor.h"

using namespace polyhead;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path dir;
  TempDir() {
    dir = fs::temp_directory_path() / ("polyhead_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
  static int& counter() {
    static int c = 0;
    return c;
  }
  // Names in the directory (to check that no temporary file is left behind).
  std::vector<std::string> listing() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(uint8_t(n >> (8 * i)));
  return s;
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// A file from a header (not padded unless the caller pads it) and a data region.
std::string make_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw(), cb.raw(), size_t(ca.numel()) * ca.itemsize()) == 0;
}

// Loading `bytes` must throw a polyhead::Error whose message contains every one of `parts`.
void expect_rejected(const TempDir& td, const std::string& bytes, std::initializer_list<const char*> parts) {
  const std::string path = td / "bad.safetensors";
  write_bytes(path, bytes);
  std::string msg;
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  REQUIRE(!msg.empty());
  CHECK(msg.find(path) != std::string::npos);  // names the file
  for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
}

const std::string kF32Entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, 0-d and empty tensors, metadata") {
  TempDir td;
  std::map<std::string, Tensor> in;
  in["f32"] = Tensor::from_vector(std::vector<float>{1.5f, -2.25f, std::numeric_limits<float>::infinity(),
                                                     std::numeric_limits<float>::quiet_NaN(), -0.0f, 3.0e-39f},
                                  {2, 3});
  in["f64"] = Tensor::from_vector(std::vector<double>{1e300, -1e-300, 0.1}, {3, 1});
  in["i32"] = Tensor::from_vector(std::vector<int32_t>{INT32_MIN, -1, 0, INT32_MAX}, {4});
  in["i64"] = Tensor::from_vector(std::vector<int64_t>{INT64_MIN, -7, INT64_MAX}, {1, 3});
  in["u8"] = Tensor::from_vector(std::vector<uint8_t>{0, 1, 127, 128, 255}, {5});
  in["scalar"] = Tensor::scalar(42.5, DType::f64);
  in["scalar_i"] = Tensor::scalar(-3, DType::i64);
  in["empty"] = Tensor::zeros({0}, DType::f32);
  in["empty2d"] = Tensor::zeros({3, 0}, DType::i32);
  in["empty_u8"] = Tensor::zeros({0, 2}, DType::u8);
  // A strided (non-contiguous) view is written in C order.
  in["transposed"] = Tensor::arange(0, 6, 1, DType::f32).reshape({2, 3}).t();
  std::map<std::string, std::string> meta{{"format", "pt"}, {"epoch", "3"}, {"quote\"and\\slash", "é ü \n"}};

  const std::string path = td / "all.safetensors";
  save_safetensors(path, in, meta);
  CHECK(td.listing() == std::vector<std::string>{"all.safetensors"});
  SafetensorsFile out = load_safetensors(path);
  CHECK(out.metadata == meta);
  REQUIRE(out.tensors.size() == in.size());
  for (const auto& [name, t] : in) {
    INFO(name);
    REQUIRE(out.tensors.count(name));
    const Tensor& r = out.tensors.at(name);
    CHECK(r.device().is_cpu());
    CHECK(r.is_contiguous());
    CHECK(same_bits(r, t));
  }
  CHECK(out.tensors.at("scalar").dim() == 0);
  CHECK(out.tensors.at("scalar").item() == 42.5);
  CHECK(out.tensors.at("transposed").to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(out.tensors.at("empty2d").shape() == Shape{3, 0});

  // No tensors at all, no metadata.
  save_safetensors(path, {});
  SafetensorsFile none = load_safetensors(path);
  CHECK(none.tensors.empty());
  CHECK(none.metadata.empty());
}

TEST_CASE("safetensors: the reference writer's bytes") {
  TempDir td;
  const std::string path = td / "ref.safetensors";

  // One F32 tensor: compact JSON, padded with spaces to a multiple of 8, then the raw data.
  std::vector<float> v{0, 1, 2, 3, 4, 5};
  save_safetensors(path, {{"attn.0", Tensor::from_vector(v, {1, 2, 3})}});
  std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  CHECK(header.size() % 8 == 0);
  CHECK(read_bytes(path) == le64(header.size()) + header + raw_bytes(v));

  // Nothing: "{}" and six spaces.
  save_safetensors(path, {});
  CHECK(read_bytes(path) == le64(8) + std::string("{}      "));

  // Metadata only: "__metadata__" first.
  save_safetensors(path, {}, {{"framework", "pt"}});
  CHECK(read_bytes(path) == le64(40) + std::string(R"({"__metadata__":{"framework":"pt"}})") + "     ");

  // Several dtypes: ordered by descending alignment (I64, F64, F32, I32, U8), then by name, so each
  // tensor's data is aligned to its element size.
  std::vector<int64_t> b{7, -8};
  std::vector<double> d{0.5};
  std::vector<float> a{1.5f}, a2{2.5f};
  std::vector<int32_t> e{9};
  std::vector<uint8_t> c{1, 2, 3};
  save_safetensors(path, {{"c", Tensor::from_vector(c)},
                          {"a2", Tensor::from_vector(a2)},
                          {"e", Tensor::from_vector(e)},
                          {"b", Tensor::from_vector(b)},
                          {"a", Tensor::from_vector(a)},
                          {"d", Tensor::from_vector(d)}},
                   {{"k", "v"}});
  header = R"({"__metadata__":{"k":"v"},)"
           R"("b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
           R"("d":{"dtype":"F64","shape":[1],"data_offsets":[16,24]},)"
           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[24,28]},)"
           R"("a2":{"dtype":"F32","shape":[1],"data_offsets":[28,32]},)"
           R"("e":{"dtype":"I32","shape":[1],"data_offsets":[32,36]},)"
           R"("c":{"dtype":"U8","shape":[3],"data_offsets":[36,39]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  CHECK(read_bytes(path) ==
        le64(header.size()) + header + raw_bytes(b) + raw_bytes(d) + raw_bytes(a) + raw_bytes(a2) + raw_bytes(e) + raw_bytes(c));
}

TEST_CASE("safetensors: reads a hand-made file in the Python writer's layout") {
  TempDir td;
  // What safetensors.torch.save_file({"weight": torch.tensor([[1., 2.], [3., 4.]]),
  //   "bias": torch.tensor([0.5, -0.5], dtype=torch.float64), "idx": torch.tensor([3], dtype=torch.int64)},
  //   metadata={"format": "pt"}) lays out: I64 and F64 first (sorted by name), then F32.
  std::vector<double> bias{0.5, -0.5};
  std::vector<int64_t> idx{3};
  std::vector<float> w{1, 2, 3, 4};
  std::string header = R"({"__metadata__":{"format":"pt"},)"
                       R"("idx":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                       R"("bias":{"dtype":"F64","shape":[2],"data_offsets":[8,24]},)"
                       R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[24,40]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string path = td / "py.safetensors";
  write_bytes(path, make_file(header, raw_bytes(idx) + raw_bytes(bias) + raw_bytes(w)));
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.tensors.at("weight").shape() == Shape{2, 2});
  CHECK(f.tensors.at("weight").to_vector<float>() == w);
  CHECK(f.tensors.at("bias").dtype() == DType::f64);
  CHECK(f.tensors.at("bias").to_vector<double>() == bias);
  CHECK(f.tensors.at("idx").to_vector<int64_t>() == idx);

  // Any key order, whitespace, no padding, offsets not in key order, an empty tensor, 0-d tensor.
  std::vector<int32_t> s{-5};
  header = "{ \"z\" : {\"data_offsets\": [4, 12], \"shape\": [2], \"dtype\": \"F32\"},\n"
           "  \"e\": {\"shape\": [0, 4], \"dtype\": \"F64\", \"data_offsets\": [4, 4]},\n"
           "  \"s\": {\"dtype\": \"I32\", \"shape\": [], \"data_offsets\": [0, 4]} }";
  write_bytes(path, make_file(header, raw_bytes(s) + raw_bytes(std::vector<float>{7, 8})));
  f = load_safetensors(path);
  CHECK(f.metadata.empty());
  CHECK(f.tensors.at("z").to_vector<float>() == std::vector<float>{7, 8});
  CHECK(f.tensors.at("e").shape() == Shape{0, 4});
  CHECK(f.tensors.at("s").dim() == 0);
  CHECK(f.tensors.at("s").item() == -5);
}

TEST_CASE("safetensors: every corruption is a polyhead::Error naming the file and the problem") {
  TempDir td;
  const std::string data8(8, '\0');
  auto one = [&](const std::string& entry, const std::string& data) { return make_file("{" + entry + "}", data); };

  SUBCASE("too short") {
    expect_rejected(td, "", {"0 bytes", "8-byte"});
    expect_rejected(td, std::string(7, '\0'), {"7 bytes"});
  }
  SUBCASE("header length") {
    expect_rejected(td, le64(100) + "{}", {"header length 100", "past the end"});
    expect_rejected(td, le64(uint64_t(1) << 40) + "{}", {"100000000"});
    expect_rejected(td, le64(~uint64_t(0)) + "{}", {"100000000"});
  }
  SUBCASE("invalid JSON") {
    expect_rejected(td, make_file("{\"w\": ", ""), {"not valid JSON"});
    expect_rejected(td, make_file("not json", ""), {"not valid JSON"});
    expect_rejected(td, make_file(std::string("{}\0\0", 4), ""), {"not valid JSON"});
    expect_rejected(td, make_file("{\"\xff\": 1}", ""), {"not valid JSON"});  // not UTF-8
    expect_rejected(td, make_file("[1, 2]", ""), {"JSON object"});
  }
  SUBCASE("duplicate name") {
    expect_rejected(td, make_file("{" + kF32Entry + "," + kF32Entry + "}", data8), {"'w' twice"});
  }
  SUBCASE("entry structure") {
    expect_rejected(td, one(R"("w":[1])", data8), {"tensor 'w'", "expected an object"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2]})", data8), {"tensor 'w'", "missing field 'data_offsets'"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})", data8),
                    {"tensor 'w'", "unknown field 'x'"});
  }
  SUBCASE("dtype") {
    expect_rejected(td, one(R"("w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]})", data8),
                    {"tensor 'w'", "unsupported dtype \"F16\"", "F32, F64, I32, I64 or U8"});
    expect_rejected(td, one(R"("w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]})", data8), {"unsupported dtype"});
    expect_rejected(td, one(R"("w":{"dtype":4,"shape":[2],"data_offsets":[0,8]})", data8), {"dtype must be a string"});
  }
  SUBCASE("shape") {
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", data8),
                    {"tensor 'w'", "shape[0]", "non-negative integer"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})", data8), {"shape[0]"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":2,"data_offsets":[0,8]})", data8), {"shape must be an array"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})", data8),
                    {"too large"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]})", ""),
                    {"too large"});
  }
  SUBCASE("offsets inconsistent with dtype and shape") {
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", std::string(12, '\0')),
                    {"tensor 'w'", "span 12 bytes", "need 16"});
    expect_rejected(td, one(R"("w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]})", data8), {"need 16"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0]})", data8), {"[begin, end]"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})", data8), {"end before"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]})", data8), {"data_offsets[1]"});
  }
  SUBCASE("offsets out of range") {
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", data8),
                    {"tensor 'w'", "past the end", "8-byte data region"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551600,18446744073709551608]})",
                            data8),
                    {"past the end"});
  }
  SUBCASE("overlap and gap") {
    expect_rejected(td,
                    make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              std::string(12, '\0')),
                    {"tensor 'b'", "overlap tensor 'a'"});
    expect_rejected(td,
                    make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                              std::string(20, '\0')),
                    {"tensor 'b'", "gap"});
    expect_rejected(td, one(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})", std::string(12, '\0')),
                    {"gap after the header"});
  }
  SUBCASE("data region longer than the last offset") {
    expect_rejected(td, one(kF32Entry, std::string(9, '\0')), {"data region is 9 bytes", "end at 8"});
    expect_rejected(td, make_file("{}", "x"), {"data region is 1 bytes", "end at 0"});
  }
  SUBCASE("metadata") {
    expect_rejected(td, make_file(R"({"__metadata__":{"epoch":3}})", ""), {"__metadata__ 'epoch'", "must be a string"});
    expect_rejected(td, make_file(R"({"__metadata__":"x"})", ""), {"__metadata__ must be an object"});
  }
  SUBCASE("not a file") {
    CHECK_THROWS_AS(load_safetensors(td / "missing.safetensors"), Error);
    CHECK_THROWS_WITH_AS(load_safetensors(td.dir.string()), doctest::Contains("not a regular file"), Error);
  }
}

TEST_CASE("safetensors: a truncated or damaged file is an error at every cut point, never a crash") {
  TempDir td;
  const std::string good = td / "good.safetensors";
  save_safetensors(good,
                   {{"a", Tensor::arange(0, 10, 1, DType::f64)},
                    {"b", Tensor::from_vector(std::vector<int32_t>{1, 2, 3})},
                    {"c", Tensor::scalar(2, DType::u8)}},
                   {{"m", "x"}});
  const std::string bytes = read_bytes(good);
  REQUIRE(load_safetensors(good).tensors.size() == 3);
  const std::string cut = td / "cut.safetensors";
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(cut, bytes.substr(0, n));
    INFO("cut at " << n << " of " << bytes.size());
    CHECK_THROWS_AS(load_safetensors(cut), Error);
  }
  // One byte too many is as wrong as one too few.
  write_bytes(cut, bytes + std::string(1, '\0'));
  CHECK_THROWS_AS(load_safetensors(cut), Error);

  // Damage every header byte in a few ways: the load either succeeds or throws polyhead::Error.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  int errors = 0, loads = 0;
  for (size_t pos = 0; pos < 8 + n; ++pos) {
    for (char c : {'\0', '"', '9', '[', '}', 'x', char(0x80)}) {
      std::string bad = bytes;
      bad[pos] = c;
      write_bytes(cut, bad);
      try {
        load_safetensors(cut);
        ++loads;
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  CHECK(errors > 0);
  CHECK(errors + loads == int(8 + n) * 7);
}

TEST_CASE("safetensors: writes are atomic") {
  TempDir td;
  const std::string path = td / "model.safetensors";
  save_safetensors(path, {{"w", Tensor::ones({4})}}, {{"v", "1"}});
  const std::string before = read_bytes(path);

  SUBCASE("invalid input: nothing is written") {
    CHECK_THROWS_AS(save_safetensors(path, {{"w", Tensor()}}), Error);
    CHECK_THROWS_AS(save_safetensors(path, {{"__metadata__", Tensor::ones({1})}}), Error);
    CHECK_THROWS_AS(save_safetensors(path, {{"", Tensor::ones({1})}}), Error);
    CHECK_THROWS_AS(save_safetensors(path, {{"\xff", Tensor::ones({1})}}), Error);
  }
  SUBCASE("the directory does not exist") {
    CHECK_THROWS_WITH_AS(save_safetensors(td / "nope/model.safetensors", {{"w", Tensor::zeros({4})}}),
                         doctest::Contains("cannot create"), Error);
  }
  SUBCASE("the path is a directory") {
    fs::create_directory(td / "adir");
    CHECK_THROWS_WITH_AS(save_safetensors(td / "adir", {{"w", Tensor::zeros({4})}}), doctest::Contains("rename"),
                         Error);
    CHECK(fs::is_directory(td / "adir"));
    CHECK(fs::is_empty(td / "adir"));
  }
  SUBCASE("a write fails half-way (file size limit)") {
    // RLIMIT_FSIZE makes write() fail with EFBIG even for root; SIGXFSZ is ignored meanwhile.
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto* prev = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    bool threw = false;
    std::string msg;
    try {
      save_safetensors(path, {{"w", Tensor::zeros({100000})}});
    } catch (const Error& e) {
      threw = true;
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, prev);
    CHECK(threw);
    CHECK(msg.find("writing") != std::string::npos);
  }
  // In every case: the old file is intact and no temporary file is left.
  CHECK(read_bytes(path) == before);
  CHECK(load_safetensors(path).tensors.at("w").to_vector<float>() == std::vector<float>{1, 1, 1, 1});
  for (const auto& name : td.listing()) CHECK(name.find(".tmp.") == std::string::npos);

  // A successful write replaces the file.
  save_safetensors(path, {{"w", Tensor::zeros({2})}});
  CHECK(load_safetensors(path).tensors.at("w").numel() == 2);
  for (const auto& name : td.listing()) CHECK(name.find(".tmp.") == std::string::npos);
}
