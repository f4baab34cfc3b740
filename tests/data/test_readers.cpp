// tests/data/test_readers.cpp: MNIST/IDX, CIFAR-10, CSV, image folder and text readers on small
// files written here, including corrupt and truncated ones.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/cifar10.h"
#include "data/csv.h"
#include "data/image_folder.h"
#include "data/io.h"
#include "data/mnist.h"
#include "data/text.h"
#include "tests/data/data_test_util.h"

using namespace polyhead;
using namespace polyhead::data;
using namespace polyhead::data::test;

namespace {
// 3 images of 2 x 4, pixel (i, r, c) = 10 i + 4 r + c; labels 7, 0, 9.
std::vector<uint8_t> small_images() {
  std::vector<uint8_t> px;
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 4; ++c) px.push_back(uint8_t(10 * i + 4 * r + c));
  return idx_bytes({3, 2, 4}, px);
}
std::vector<uint8_t> small_labels() { return idx_bytes({3}, {7, 0, 9}); }
}  // namespace

TEST_CASE("idx: images and labels round-trip, plain and gzip") {
  TempDir dir;
  for (bool gz : {false, true}) {
    std::string im = dir / (gz ? "im.idx.gz" : "im.idx"), lb = dir / (gz ? "lb.idx.gz" : "lb.idx");
    if (gz) {
      write_gz(im, small_images());
      write_gz(lb, small_labels());
    } else {
      write_bytes(im, small_images());
      write_bytes(lb, small_labels());
    }
    MnistData d = load_mnist_files(im, lb);
    CHECK(d.images.shape() == Shape{3, 2, 4});
    CHECK(d.images.dtype() == DType::u8);
    auto v = d.images.to_vector<int64_t>();
    for (int i = 0; i < 3; ++i)
      for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 4; ++c) CHECK(v[size_t(i * 8 + r * 4 + c)] == 10 * i + 4 * r + c);
    CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 0, 9});

    auto ds = mnist_dataset(d);
    CHECK(ds->size() == 3);
    Example e = ds->get(2);
    CHECK(e.at("x").shape() == Shape{1, 2, 4});
    CHECK(e.at("x").dtype() == DType::f32);
    CHECK(e.at("x").to_vector<float>()[5] == doctest::Approx((20.0 + 4 + 1) / 255.0));
    CHECK(e.at("y0").dtype() == DType::i64);
    CHECK(e.at("y0").item() == 9);
  }
}

TEST_CASE("idx: other element types") {
  TempDir dir;
  // i32 big-endian: -2, 70000
  std::vector<uint8_t> p = {0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x01, 0x11, 0x70};
  write_bytes(dir / "a", idx_bytes({2}, p, 0x0C));
  Tensor t = read_idx(dir / "a");
  CHECK(t.dtype() == DType::i32);
  CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{-2, 70000});
  // f32 1.5 = 0x3FC00000
  write_bytes(dir / "b", idx_bytes({1, 1}, {0x3F, 0xC0, 0, 0}, 0x0D));
  Tensor f = read_idx(dir / "b");
  CHECK(f.dtype() == DType::f32);
  CHECK(f.shape() == Shape{1, 1});
  CHECK(f.item() == 1.5);
  // i16 -3 = 0xFFFD, i8 -1
  CHECK(read_idx((write_bytes(dir / "c", idx_bytes({1}, {0xFF, 0xFD}, 0x0B)), dir / "c")).item() == -3);
  CHECK(read_idx((write_bytes(dir / "d", idx_bytes({1}, {0xFF}, 0x09)), dir / "d")).item() == -1);
}

TEST_CASE("idx: every cut point of a small file is an Error, never a crash") {
  TempDir dir;
  for (auto full : {small_images(), small_labels()}) {
    for (size_t cut = 0; cut < full.size(); ++cut) {
      std::vector<uint8_t> part(full.begin(), full.begin() + long(cut));
      std::string path = dir / ("cut_" + std::to_string(cut));
      write_bytes(path, part);
      std::string msg = error_of([&] { read_idx(path); });
      CHECK_MESSAGE(!msg.empty(), "cut at " << cut);
      CHECK_MESSAGE(contains(msg, path), msg);
      CHECK_MESSAGE(contains(msg, "offset"), msg);
      // The same bytes gzipped, and a gzip file cut anywhere.
      write_gz(path + ".gz", part);
      CHECK(!error_of([&] { read_idx(path + ".gz"); }).empty());
    }
  }
  write_gz(dir / "full.gz", small_images());
  auto gz = read_bytes(dir / "full.gz");
  for (size_t cut = 0; cut < gz.size(); ++cut) {
    std::string path = dir / ("gzcut_" + std::to_string(cut) + ".gz");
    write_bytes(path, std::vector<uint8_t>(gz.begin(), gz.begin() + long(cut)));
    std::string msg = error_of([&] { read_idx(path); });
    CHECK_MESSAGE(!msg.empty(), "gzip cut at " << cut);
    CHECK(contains(msg, path));
  }
}

TEST_CASE("idx: bad headers and contents are named precisely") {
  TempDir dir;
  auto bytes = small_images();
  std::string p = dir / "bad";

  auto b = bytes;
  b[0] = 0x12;
  write_bytes(p, b);
  std::string m = error_of([&] { read_idx(p); });
  CHECK(contains(m, "wrong magic at offset 0"));
  CHECK(contains(m, "0x12"));
  CHECK(contains(m, p));

  b = bytes;
  b[2] = 0x07;
  write_bytes(p, b);
  CHECK(contains(error_of([&] { read_idx(p); }), "unknown element type 0x07 at offset 2"));

  b = bytes;
  b[3] = 0;
  write_bytes(p, b);
  CHECK(contains(error_of([&] { read_idx(p); }), "0 dimensions at offset 3"));

  b = bytes;
  b.push_back(1);
  write_bytes(p, b);
  m = error_of([&] { read_idx(p); });
  CHECK(contains(m, "1 unexpected bytes"));
  CHECK(contains(m, "offset 40"));

  // Huge dimensions in a tiny file: an error, no giant allocation.
  write_bytes(p, idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF}, {1, 2, 3}));
  CHECK(!error_of([&] { read_idx(p); }).empty());
  write_bytes(p, idx_bytes({0, 0xFFFFFFFF, 0xFFFFFFFF}, {}));  // zero elements, absurd sizes
  CHECK(contains(error_of([&] { read_idx(p); }), "more than 2^48"));
  write_bytes(p, idx_bytes({60000, 28, 28}, {1, 2, 3}));
  m = error_of([&] { read_idx(p); });
  CHECK(contains(m, "truncated"));
  CHECK(contains(m, "47040000 bytes"));

  // The labels file given as the images file, and the reverse.
  write_bytes(dir / "im", bytes);
  write_bytes(dir / "lb", small_labels());
  CHECK(contains(error_of([&] { load_mnist_files(dir / "lb", dir / "lb"); }), "expected an image file"));
  CHECK(contains(error_of([&] { load_mnist_files(dir / "im", dir / "im"); }), "expected a label file"));
  // A label out of range names the example and its offset.
  write_bytes(dir / "lb2", idx_bytes({3}, {1, 10, 2}));
  m = error_of([&] { load_mnist_files(dir / "im", dir / "lb2"); });
  CHECK(contains(m, "label 10 of example 1 at offset 9"));
  // Count mismatch.
  write_bytes(dir / "lb3", idx_bytes({2}, {1, 2}));
  CHECK(contains(error_of([&] { load_mnist_files(dir / "im", dir / "lb3"); }), "has 2 labels"));
  // Missing file, folder instead of file, corrupt gzip.
  CHECK(contains(error_of([&] { read_idx(dir / "nope"); }), "file not found"));
  CHECK(contains(error_of([&] { read_idx(dir.path.string()); }), "not a regular file"));
  write_gz(dir / "c.gz", bytes);
  auto gz = read_bytes(dir / "c.gz");
  for (size_t i = 12; i < gz.size() - 8; ++i) gz[i] ^= 0x5A;
  write_bytes(dir / "c.gz", gz);
  CHECK(!error_of([&] { read_idx(dir / "c.gz"); }).empty());
}

TEST_CASE("mnist: folder layout and its spellings") {
  TempDir dir;
  CHECK_FALSE(mnist_available(dir.path.string(), true));
  std::string m = error_of([&] { load_mnist(dir.path.string(), true); });
  CHECK(contains(m, "train-images-idx3-ubyte"));
  CHECK(contains(m, "fetch_mnist.sh"));
  write_bytes(dir / "train-images-idx3-ubyte", small_images());
  write_gz(dir / "train-labels.idx1-ubyte.gz", small_labels());
  CHECK(mnist_available(dir.path.string(), true));
  CHECK_FALSE(mnist_available(dir.path.string(), false));
  MnistData d = load_mnist(dir.path.string(), true);
  CHECK(d.labels.size(0) == 3);
}

#ifdef POLYHEAD_TEST_DATA
TEST_CASE("mnist: the real files when fetched (scripts/fetch_mnist.sh)") {
  std::string dir = std::string(POLYHEAD_TEST_DATA) + "/../../data/mnist";
  if (!mnist_available(dir, true) || !mnist_available(dir, false)) {
    MESSAGE("data/mnist absent: skipped (run scripts/fetch_mnist.sh)");
    return;
  }
  MnistData tr = load_mnist(dir, true), te = load_mnist(dir, false);
  CHECK(tr.images.shape() == Shape{60000, 28, 28});
  CHECK(te.images.shape() == Shape{10000, 28, 28});
  CHECK(tr.labels.to_vector<int64_t>()[0] == 5);  // the famous first training digit
  CHECK(te.labels.to_vector<int64_t>()[0] == 7);
  auto ds = mnist_dataset(te);
  CHECK(ds->get(0).at("x").shape() == Shape{1, 28, 28});
}

TEST_CASE("fashion-mnist: the converted files when fetched (scripts/fetch_fashion_mnist.sh)") {
  std::string dir = std::string(POLYHEAD_TEST_DATA) + "/../../data/fashion";
  if (!mnist_available(dir, true) || !mnist_available(dir, false)) {
    MESSAGE("data/fashion absent: skipped (run scripts/fetch_fashion_mnist.sh)");
    return;
  }
  MnistData tr = load_mnist(dir, true), te = load_mnist(dir, false);
  CHECK(tr.images.shape() == Shape{60000, 28, 28});
  CHECK(te.images.shape() == Shape{10000, 28, 28});
  std::vector<int64_t> count(10, 0);
  for (int64_t l : tr.labels.to_vector<int64_t>()) ++count[size_t(l)];
  CHECK(count == std::vector<int64_t>(10, 6000));
  CHECK(te.labels.to_vector<int64_t>()[13] == 3);  // classes interleaved: example 10 j + c has label c
}
#endif

// ---------- CIFAR-10 ----------
namespace {
std::vector<uint8_t> cifar_bytes(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> b;
  for (size_t i = 0; i < labels.size(); ++i) {
    b.push_back(labels[i]);
    for (int j = 0; j < 3072; ++j) b.push_back(uint8_t((j * 7 + i * 31) & 0xFF));
  }
  return b;
}
}  // namespace

TEST_CASE("cifar10: records, layout, errors") {
  TempDir dir;
  write_bytes(dir / "b.bin", cifar_bytes({3, 9, 0}));
  Cifar10Data d = read_cifar10_batch(dir / "b.bin");
  CHECK(d.images.shape() == Shape{3, 3, 32, 32});
  CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{3, 9, 0});
  auto v = d.images.to_vector<int64_t>();
  // example 1, green channel (1), row 2, col 5 = byte 1024 + 2 * 32 + 5 of the record's pixels
  int j = 1024 + 2 * 32 + 5;
  CHECK(v[size_t(1 * 3072 + j)] == ((j * 7 + 31) & 0xFF));
  auto ds = cifar10_dataset(d);
  CHECK(ds->get(0).at("x").shape() == Shape{3, 32, 32});

  // Every cut point is an error (from memory: 6146 cuts) and a few through the file path.
  auto full = cifar_bytes({1, 2});
  for (size_t cut = 0; cut < full.size(); ++cut) {
    if (cut == 3073) continue;  // one whole record: valid
    CHECK_THROWS_AS(parse_cifar10_batch(full.data(), cut, "mem"), Error);
  }
  write_bytes(dir / "t.bin", std::vector<uint8_t>(full.begin(), full.begin() + 5000));
  std::string m = error_of([&] { read_cifar10_batch(dir / "t.bin"); });
  CHECK(contains(m, "truncated record 1 at offset 3073"));
  CHECK(contains(m, dir / "t.bin"));
  write_bytes(dir / "l.bin", cifar_bytes({1, 12}));
  CHECK(contains(error_of([&] { read_cifar10_batch(dir / "l.bin"); }), "record 1 at offset 3073: label byte 12"));
  write_bytes(dir / "e.bin", {});
  CHECK(contains(error_of([&] { read_cifar10_batch(dir / "e.bin"); }), "empty file"));
}

TEST_CASE("cifar10: the train split concatenates data_batch_1..5") {
  TempDir dir;
  for (int i = 1; i <= 5; ++i)
    write_bytes(dir / ("cifar-10-batches-bin/data_batch_" + std::to_string(i) + ".bin"), cifar_bytes({uint8_t(i), uint8_t(i - 1)}));
  Cifar10Data d = load_cifar10(dir.path.string(), true);
  CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 2, 1, 3, 2, 4, 3, 5, 4});
  CHECK(d.images.size(0) == 10);
  CHECK(contains(error_of([&] { load_cifar10(dir.path.string(), false); }), "test_batch.bin"));
}

// ---------- CSV ----------
TEST_CASE("csv: RFC 4180 parsing with line numbers") {
  std::string text =
      "\xEF\xBB\xBF"
      "a,b,\"c d\"\r\n"
      "1,\"x, y\",3\r\n"
      "\n"
      "4,\"multi\nline \"\"q\"\"\",6\n"
      "7,,9";
  CsvTable t = parse_csv(text, "mem.csv");
  CHECK(t.header == std::vector<std::string>{"a", "b", "c d"});
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[0][1] == "x, y");
  CHECK(t.rows[1][1] == "multi\nline \"q\"");
  CHECK(t.rows[2][1] == "");
  CHECK(t.lines == std::vector<int64_t>{2, 4, 6});
  CHECK(t.column("c d") == 2);
  CHECK(contains(error_of([&] { t.column("zz"); }), "no column 'zz'; the header has: a, b, c d"));

  CHECK(contains(error_of([&] { parse_csv("a,b\n1,2\n3\n", "f.csv"); }), "'f.csv': line 3: expected 2 fields (as in the header), found 1"));
  CHECK(contains(error_of([&] { parse_csv("a,b\n1,\"2\n", "f.csv"); }), "line 2: field 2: the quote opened here is never closed"));
  CHECK(contains(error_of([&] { parse_csv("a,b\n1,2\"x\n", "f.csv"); }), "line 2: field 2"));
  CHECK(contains(error_of([&] { parse_csv("a,b\n\"1\"x,2\n", "f.csv"); }), "after a closing quote"));
  CHECK(contains(error_of([&] { parse_csv("a,a\n", "f.csv"); }), "appears twice"));
  CHECK(contains(error_of([&] { parse_csv("a,,b\n", "f.csv"); }), "header column 2 has an empty name"));
  CHECK(contains(error_of([&] { parse_csv("", "f.csv"); }), "no header"));
  CHECK(parse_csv("a;b\n1;2\n", "f", ';').rows[0][1] == "2");
}

TEST_CASE("csv: tabular multi-task data, bad numbers name line and column") {
  TempDir dir;
  write_text(dir / "t.csv",
             "id,f1,f2,price,kind\n"
             "0, 1.5,2,10.25,1\n"
             "1,-3,4e1,11,0\n"
             "2,+5,.5,-1,2\n");
  TabularData d = load_tabular_csv(dir / "t.csv", {"f2", "f1"}, {{"price", DType::f32}, {"kind", DType::i64}});
  CHECK(d.x.shape() == Shape{3, 2});
  CHECK(d.x.to_vector<float>() == std::vector<float>{2, 1.5f, 40, -3, 0.5f, 5});
  CHECK(d.feature_names == std::vector<std::string>{"f2", "f1"});
  CHECK(d.targets[0].to_vector<float>() == std::vector<float>{10.25f, 11, -1});
  CHECK(d.targets[1].dtype() == DType::i64);
  CHECK(d.targets[1].to_vector<int64_t>() == std::vector<int64_t>{1, 0, 2});
  auto ds = tabular_dataset(d);
  CHECK(ds->get(1).at("y1").item() == 0);
  CHECK(ds->get(1).at("y0").item() == 11);

  // Empty feature list: every non-target column, in file order.
  TabularData all = load_tabular_csv(dir / "t.csv", {}, {{"kind", DType::i64}});
  CHECK(all.feature_names == std::vector<std::string>{"id", "f1", "f2", "price"});

  write_text(dir / "bad.csv", "f1,y\n1,2\n3,abc\n");
  std::string m = error_of([&] { load_tabular_csv(dir / "bad.csv", {"f1"}, {{"y"}}); });
  CHECK(contains(m, dir / "bad.csv"));
  CHECK(contains(m, "line 3, column 2 ('y'): expected a number, found 'abc'"));
  write_text(dir / "bad.csv", "f1,y\n1,2\n ,3\n");
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "bad.csv", {"f1"}, {{"y"}}); }), "line 3, column 1 ('f1'): empty value"));
  write_text(dir / "bad.csv", "f1,y\n1,2\nnan,3\n");
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "bad.csv", {"f1"}, {{"y"}}); }), "finite"));
  write_text(dir / "bad.csv", "f1,y\n1,2.5\n");
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "bad.csv", {"f1"}, {{"y", DType::i64}}); }),
                 "line 2, column 2 ('y'): expected an integer, found '2.5'"));
  write_text(dir / "bad.csv", "f1,y\n1,-2\n");
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "bad.csv", {"f1"}, {{"y", DType::i64}}); }), "negative"));
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "bad.csv", {"y"}, {{"y"}}); }), "both a feature and a target"));
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "bad.csv", {"nope"}, {{"y"}}); }), "no column 'nope'"));
  write_text(dir / "empty.csv", "f1,y\n");
  CHECK(contains(error_of([&] { load_tabular_csv(dir / "empty.csv", {}, {{"y"}}); }), "no data rows"));
}

// ---------- image folder ----------
namespace {
// A w x h grey image whose pixel (r, c) is base + 10 r + c.
std::vector<uint8_t> grey(int w, int h, int base) {
  std::vector<uint8_t> px;
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) px.push_back(uint8_t(base + 10 * r + c));
  return pnm_bytes(w, h, 1, px);
}
}  // namespace

TEST_CASE("image folder: classes, order, CHW layout") {
  TempDir dir;
  write_bytes(dir / "root/dog/b.pgm", grey(3, 2, 100));
  write_bytes(dir / "root/dog/a.pgm", grey(3, 2, 50));
  write_bytes(dir / "root/cat/z.pgm", grey(3, 2, 0));
  write_text(dir / "root/cat/notes.txt", "not an image");
  write_bytes(dir / "root/cat/.hidden.pgm", grey(9, 9, 0));
  write_text(dir / "root/labels.txt", "ignored");
  ImageSet s = load_image_folder(dir / "root");
  CHECK(s.classes == std::vector<std::string>{"cat", "dog"});
  CHECK(s.images.shape() == Shape{3, 1, 2, 3});
  CHECK(s.targets[0].to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1});
  CHECK(std::filesystem::path(s.files[1]).filename() == "a.pgm");
  auto v = s.images.to_vector<int64_t>();
  CHECK(v[6 + 1 * 3 + 2] == 50 + 10 + 2);  // image 1 (dog/a), row 1, col 2

  // RGB: planes are R, G, B.
  std::vector<uint8_t> rgb;
  for (int p = 0; p < 6; ++p) rgb.insert(rgb.end(), {uint8_t(p), uint8_t(100 + p), uint8_t(200 + p)});
  write_bytes(dir / "rgb/only/x.ppm", pnm_bytes(3, 2, 3, rgb));
  ImageSet c = load_image_folder(dir / "rgb");
  CHECK(c.images.shape() == Shape{1, 3, 2, 3});
  auto cv = c.images.to_vector<int64_t>();
  CHECK(cv[0] == 0);
  CHECK(cv[6 + 4] == 104);
  CHECK(cv[12 + 5] == 205);
  // Forced grey -> 3 channels replicates.
  ImageFolderOptions o3;
  o3.channels = 3;
  CHECK(load_image_folder(dir / "root", o3).images.shape() == Shape{3, 3, 2, 3});
  auto ds = image_dataset(s);
  CHECK(ds->get(2).at("x").to_vector<float>()[0] == doctest::Approx(100 / 255.0));

  // 16-bit PNM (maxval > 255) converted to 3 channels: stb 2.27 overran its buffer here (a
  // fuzzer find); values are the high bytes.
  std::string h16 = "P5\n2 2\n65535\n";
  std::vector<uint8_t> p16(h16.begin(), h16.end());
  for (uint8_t v : {0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0}) p16.push_back(v);
  write_bytes(dir / "w16.pgm", p16);
  Tensor t16 = read_image(dir / "w16.pgm", 3);
  CHECK(t16.shape() == Shape{3, 2, 2});
  CHECK(t16.to_vector<int64_t>() == std::vector<int64_t>{0x12, 0x56, 0x9A, 0xDE, 0x12, 0x56, 0x9A, 0xDE, 0x12, 0x56, 0x9A, 0xDE});
  // PNM details: comments, a small maxval is scaled, bad samples and headers are errors.
  std::string hc = "P5 # comment\n# more\n2 1\n15\n";
  std::vector<uint8_t> pc(hc.begin(), hc.end());
  pc.insert(pc.end(), {15, 5});
  write_bytes(dir / "c15.pgm", pc);
  CHECK(read_image(dir / "c15.pgm").to_vector<int64_t>() == std::vector<int64_t>{255, 85});
  pc.back() = 16;
  write_bytes(dir / "c15.pgm", pc);
  CHECK(contains(error_of([&] { read_image(dir / "c15.pgm"); }), "PNM sample 16 at offset 28 exceeds the maximum value 15"));
  auto bad_header = [&](const std::string& h) {
    write_bytes(dir / "h.pgm", std::vector<uint8_t>(h.begin(), h.end()));
    return error_of([&] { read_image(dir / "h.pgm"); });
  };
  CHECK(contains(bad_header("P5\n0 2\n255\n"), "the image is 0 x 2 pixels"));
  CHECK(contains(bad_header("P5\n2 2\n70000\n"), "maximum value 70000 out of range"));
  CHECK(contains(bad_header("P5\n2 x\n255\n"), "expected the height (a decimal number) at offset 5"));
  CHECK(contains(bad_header("P5\n1 1\n255"), "expected one whitespace byte after the maximum value at offset 10"));
  // A JPEG whose Huffman table declares more than 256 codes (stb 2.27 overflowed on it; a fuzzer find).
  write_bytes(dir / "dht.jpg",
              {0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xFF, 0xC4, 0x25, 0x00, 0x00, 0x00, 0x00, 0x0D, 0x0D, 0x22, 0x0D, 0x00, 0x22, 0x0D,
               0x22, 0x0D, 0x16, 0x0D, 0x8D, 0x0D, 0x32, 0x23, 0x8D, 0x0D, 0x00, 0x00, 0x00, 0x00, 0xFA, 0x7D, 0x00, 0x00, 0x00,
               0xFF, 0xFF, 0x0D, 0x22, 0x0D, 0x22, 0xFB, 0x0D, 0x22, 0x8B, 0x22, 0xFF, 0xFF, 0xFF, 0xFF, 0x30, 0x6B, 0x24, 0x00,
               0xED, 0xFF, 0xFF, 0x09, 0x7E});
  CHECK(contains(error_of([&] { read_image(dir / "dht.jpg"); }), "JPEG: the Huffman table at offset 9 declares 406 codes"));
  // The same with fill bytes before SOI, a table after other segments, and one after SOS.
  auto dht_error = [&](std::vector<uint8_t> b) {
    write_bytes(dir / "dht2.jpg", b);
    return error_of([&] { read_image(dir / "dht2.jpg"); });
  };
  std::vector<uint8_t> table = {0x00};
  for (int i = 0; i < 16; ++i) table.push_back(20);  // 320 codes
  std::vector<uint8_t> j1 = {0xFF, 0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xC4, 0xFF, 0xC4, 0x01, 0x53};
  j1.insert(j1.end(), table.begin(), table.end());
  CHECK(contains(dht_error(j1), "at offset 13 declares 320 codes"));
  std::vector<uint8_t> j2 = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xC4, 0x01, 0x53};
  j2.insert(j2.end(), table.begin(), table.end());
  CHECK(contains(dht_error(j2), "at offset 12 declares 320 codes"));
  // Colour to grey uses stb's weights; a missing alpha is 255.
  write_bytes(dir / "one.ppm", pnm_bytes(1, 1, 3, {200, 100, 50}));
  CHECK(read_image(dir / "one.ppm", 1).item() == (200 * 77 + 100 * 150 + 50 * 29) >> 8);
  CHECK(read_image(dir / "one.ppm", 4).to_vector<int64_t>() == std::vector<int64_t>{200, 100, 50, 255});
  CHECK(read_image(dir / "one.ppm", 2).to_vector<int64_t>()[1] == 255);
}

TEST_CASE("image folder: PNG through stb_image") {
  TempDir dir;
  std::vector<uint8_t> rgba;
  for (int p = 0; p < 6; ++p) rgba.insert(rgba.end(), {uint8_t(10 + p), uint8_t(20 + p), uint8_t(30 + p), uint8_t(40 + p)});
  write_bytes(dir / "p/a/x.PNG", png_bytes(3, 2, 4, rgba));
  std::vector<uint8_t> grey = {1, 2, 3, 4, 5, 6};
  write_bytes(dir / "p/b/y.png", png_bytes(3, 2, 1, grey));
  ImageSet s = load_image_folder(dir / "p");  // channels from the first image: RGBA
  CHECK(s.images.shape() == Shape{2, 4, 2, 3});
  auto v = s.images.to_vector<int64_t>();
  CHECK(v[0] == 10);
  CHECK(v[6 + 5] == 25);        // G plane, pixel 5
  CHECK(v[18 + 2] == 42);       // alpha plane
  CHECK(v[24 + 4] == 5);        // the grey image replicated into R
  CHECK(v[24 + 18 + 4] == 255); // with an opaque alpha
  ImageFolderOptions o1;
  o1.channels = 1;
  CHECK(load_image_folder(dir / "p", o1).images.to_vector<int64_t>()[6 + 3] == 4);
  // A PNG cut short is an error naming it.
  auto png = png_bytes(3, 2, 1, grey);
  write_bytes(dir / "q/a/cut.png", std::vector<uint8_t>(png.begin(), png.begin() + long(png.size()) - 20));
  std::string m = error_of([&] { load_image_folder(dir / "q"); });
  CHECK(contains(m, "cut.png"));
}

TEST_CASE("image folder: size mismatch, corrupt image, empty class") {
  TempDir dir;
  write_bytes(dir / "a/c0/1.pgm", grey(3, 2, 0));
  write_bytes(dir / "a/c1/2.pgm", grey(4, 2, 0));
  std::string m = error_of([&] { load_image_folder(dir / "a"); });
  CHECK(contains(m, "2.pgm' is 4 x 2"));
  CHECK(contains(m, "is 3 x 2"));
  CHECK(contains(m, "same size"));

  write_bytes(dir / "b/c0/1.pgm", grey(3, 2, 0));
  write_text(dir / "b/c0/2.png", "this is not a png");
  m = error_of([&] { load_image_folder(dir / "b"); });
  CHECK(contains(m, "2.png"));
  CHECK(contains(m, "not a decodable image"));

  write_bytes(dir / "c/c0/1.pgm", grey(3, 2, 0));
  std::filesystem::create_directories(dir / "c/c1");
  CHECK(contains(error_of([&] { load_image_folder(dir / "c"); }), "holds no image files"));
  CHECK(contains(error_of([&] { load_image_folder(dir / "nothing"); }), "not a folder"));
  std::filesystem::create_directories(dir / "d");
  CHECK(contains(error_of([&] { load_image_folder(dir / "d"); }), "no class subfolders"));
  // A PNM header number too long for stb's int parsing.
  std::string big = "P5\n1111111111 2\n255\n";
  write_bytes(dir / "f/c/1.pgm", std::vector<uint8_t>(big.begin(), big.end()));
  CHECK(contains(error_of([&] { load_image_folder(dir / "f"); }), "the width at offset 3 has more than 8 digits"));
  // Truncated image data.
  auto g = grey(3, 2, 0);
  g.resize(g.size() - 2);
  write_bytes(dir / "e/c/1.pgm", g);
  CHECK(contains(error_of([&] { load_image_folder(dir / "e"); }), "1.pgm"));
}

TEST_CASE("image list CSV: several targets, line-precise errors") {
  TempDir dir;
  write_bytes(dir / "img/a.pgm", grey(2, 2, 0));
  write_bytes(dir / "img/b.pgm", grey(2, 2, 40));
  write_text(dir / "list.csv", "file,digit,parity\nimg/b.pgm,3,1\nimg/a.pgm,4,0\n");
  ImageSet s = load_image_list(dir / "list.csv");
  CHECK(s.target_names == std::vector<std::string>{"digit", "parity"});
  CHECK(s.targets[0].to_vector<int64_t>() == std::vector<int64_t>{3, 4});
  CHECK(s.targets[1].to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(s.images.to_vector<int64_t>()[0] == 40);
  auto ds = image_dataset(s);
  CHECK(ds->get(0).at("y1").item() == 1);

  write_text(dir / "l2.csv", "file,digit\nimg/a.pgm,3\nimg/b.pgm,x\n");
  CHECK(contains(error_of([&] { load_image_list(dir / "l2.csv"); }), "line 3, column 2 ('digit'): expected an integer, found 'x'"));
  write_text(dir / "l3.csv", "file,digit\nimg/a.pgm,3\nimg/missing.pgm,1\n");
  std::string m = error_of([&] { load_image_list(dir / "l3.csv"); });
  CHECK(contains(m, "line 3"));
  CHECK(contains(m, "missing.pgm"));
  CHECK(contains(m, "file not found"));
  write_text(dir / "l4.csv", "file\nimg/a.pgm\n");
  CHECK(contains(error_of([&] { load_image_list(dir / "l4.csv"); }), "at least one target column"));
}

// ---------- text ----------
TEST_CASE("text: byte streams and next-byte windows") {
  TempDir dir;
  write_text(dir / "a.txt", "hello ");
  write_gz(dir / "b.txt.gz", std::vector<uint8_t>{'w', 'o', 'r', 'l', 'd'});
  Tensor s = read_text_bytes({dir / "a.txt", dir / "b.txt.gz"});
  CHECK(s.dtype() == DType::u8);
  CHECK(bytes_to_text(s) == "hello world");
  write_text(dir / "empty.txt", "");
  CHECK(contains(error_of([&] { read_text_bytes({dir / "empty.txt"}); }), "empty"));
  CHECK(contains(error_of([&] { read_text_bytes({dir / "none.txt"}); }), "file not found"));

  std::string text;
  for (int i = 0; i < 200; ++i) text += char('a' + i % 26);
  Tensor stream = text_to_bytes(text);
  TextWindows w(stream, 8, 50, 7);
  CHECK(w.size() == 50);
  std::vector<int64_t> starts0;
  for (int64_t i = 0; i < 50; ++i) {
    int64_t st = w.window_start(i);
    CHECK(st >= 0);
    CHECK(st + 8 < 200);
    starts0.push_back(st);
    Example e = w.get(i);
    auto x = e.at("x").to_vector<int64_t>(), y = e.at("y0").to_vector<int64_t>();
    REQUIRE(x.size() == 8);
    for (int t = 0; t < 8; ++t) {
      CHECK(x[size_t(t)] == uint8_t(text[size_t(st + t)]));
      CHECK(y[size_t(t)] == uint8_t(text[size_t(st + t + 1)]));
    }
  }
  TextWindows w2(stream, 8, 50, 7);
  for (int64_t i = 0; i < 50; ++i) CHECK(w2.window_start(i) == starts0[size_t(i)]);
  w2.set_epoch(1);
  int differ = 0;
  for (int64_t i = 0; i < 50; ++i) differ += w2.window_start(i) != starts0[size_t(i)];
  CHECK(differ > 40);
  // The batch path equals the per-example path.
  std::vector<int64_t> idx = {3, 3, 49, 0};
  Batch b = w.get_batch(idx);
  CHECK(b.at("x").shape() == Shape{4, 8});
  for (size_t j = 0; j < idx.size(); ++j)
    CHECK(b.at("y0").select(0, int64_t(j)).to_vector<int64_t>() == w.get(idx[j]).at("y0").to_vector<int64_t>());
  // The last byte can be a target: with L = T + 1 the only window is the whole stream.
  TextWindows tiny(text_to_bytes("abc"), 2, 3, 1);
  CHECK(bytes_to_text(tiny.get(2).at("y0")) == "bc");
  CHECK(contains(error_of([&] { TextWindows(text_to_bytes("ab"), 2, 1, 0); }), "need at least"));

  Batch t1 = text_batch(stream, 5, 4, 3, 10), t2 = text_batch(stream, 5, 4, 3, 10), t3 = text_batch(stream, 5, 4, 3, 11);
  CHECK(t1.at("x").to_vector<int64_t>() == t2.at("x").to_vector<int64_t>());
  CHECK(t1.at("x").to_vector<int64_t>() != t3.at("x").to_vector<int64_t>());
  auto tx = t1.at("x").to_vector<int64_t>(), ty = t1.at("y0").to_vector<int64_t>();
  for (int bi = 0; bi < 4; ++bi)
    for (int t = 0; t + 1 < 5; ++t) CHECK(ty[size_t(bi * 5 + t)] == tx[size_t(bi * 5 + t + 1)]);
}
