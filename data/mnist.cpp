// data/mnist.cpp: IDX parsing with full validation; MNIST / Fashion-MNIST loading.
#include "data/mnist.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "data/io.h"

namespace polyhead::data {

namespace {

const char* kIdxOp = "data::read_idx";

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

struct IdxType {
  uint8_t code;
  const char* name;
  size_t size;
};
const IdxType kTypes[] = {{0x08, "u8", 1}, {0x09, "i8", 1}, {0x0B, "i16", 2}, {0x0C, "i32", 4}, {0x0D, "f32", 4}, {0x0E, "f64", 8}};

std::string magic_str(const uint8_t* p) {
  return hex_byte(p[0]) + " " + hex_byte(p[1]) + " " + hex_byte(p[2]) + " " + hex_byte(p[3]);
}

}  // namespace

Tensor parse_idx(const uint8_t* data, size_t size, const std::string& name) {
  const char* op = kIdxOp;
  if (size < 4)
    file_error(op, name, "truncated at offset " + std::to_string(size) + ": expected the 4-byte IDX magic number, the file has " +
                             std::to_string(size) + " bytes");
  if (data[0] != 0 || data[1] != 0)
    file_error(op, name,
               "wrong magic at offset 0: expected 0x00 0x00 <type> <dims> (an IDX file), found " + magic_str(data),
               data[0] == 0x1f && data[1] == 0x8b ? "this looks like a damaged gzip file" : "");
  const IdxType* type = nullptr;
  for (auto& t : kTypes)
    if (t.code == data[2]) type = &t;
  if (!type)
    file_error(op, name,
               "unknown element type " + hex_byte(data[2]) +
                   " at offset 2: expected 0x08 (u8), 0x09 (i8), 0x0B (i16), 0x0C (i32), 0x0D (f32) or 0x0E (f64)");
  const int nd = data[3];
  if (nd == 0) file_error(op, name, "0 dimensions at offset 3: expected at least 1");
  const size_t header = 4 + 4 * size_t(nd);
  Shape shape;
  uint64_t count = 1, bound = 1;  // bound: the product of max(size, 1), so zero sizes hide nothing
  for (int d = 0; d < nd; ++d) {
    size_t off = 4 + 4 * size_t(d);
    if (size < off + 4)
      file_error(op, name,
                 "truncated at offset " + std::to_string(off) + ": expected the 4-byte size of dimension " + std::to_string(d) +
                     " of " + std::to_string(nd) + ", the file has " + std::to_string(size) + " bytes");
    uint32_t s = be32(data + off);
    if (s > 0 && bound > (uint64_t(1) << 48) / s)
      file_error(op, name,
                 "dimension sizes up to offset " + std::to_string(off) + " multiply to more than 2^48 (size " +
                     std::to_string(s) + " of dimension " + std::to_string(d) + ")");
    bound *= std::max<uint64_t>(s, 1);
    count *= s;
    shape.push_back(int64_t(s));
  }
  const uint64_t payload = count * type->size;
  const uint64_t have = size - header;
  if (have < payload)
    file_error(op, name,
               "truncated: expected " + std::to_string(payload) + " bytes of " + type->name + " data (shape " + shape_str(shape) +
                   ") from offset " + std::to_string(header) + ", found " + std::to_string(have) + " (the file ends at offset " +
                   std::to_string(size) + ")");
  if (have > payload)
    file_error(op, name,
               std::to_string(have - payload) + " unexpected bytes after the data: expected the file to end at offset " +
                   std::to_string(header + payload) + " (shape " + shape_str(shape) + ", " + type->name + "), it ends at " +
                   std::to_string(size));
  const uint8_t* p = data + header;
  switch (type->code) {
    case 0x08: {
      Tensor t = Tensor::empty(shape, DType::u8);
      if (payload) std::memcpy(t.raw(), p, size_t(payload));
      return t;
    }
    case 0x09: case 0x0B: case 0x0C: {
      Tensor t = Tensor::empty(shape, DType::i32);
      int32_t* o = static_cast<int32_t*>(t.raw());
      for (uint64_t i = 0; i < count; ++i) {
        const uint8_t* q = p + i * type->size;
        o[i] = type->code == 0x09 ? int32_t(int8_t(q[0]))
               : type->code == 0x0B ? int32_t(int16_t(uint16_t((q[0] << 8) | q[1])))
                                    : int32_t(be32(q));
      }
      return t;
    }
    case 0x0D: {
      Tensor t = Tensor::empty(shape, DType::f32);
      float* o = static_cast<float*>(t.raw());
      for (uint64_t i = 0; i < count; ++i) {
        uint32_t u = be32(p + 4 * i);
        std::memcpy(&o[i], &u, 4);
      }
      return t;
    }
    default: {  // 0x0E
      Tensor t = Tensor::empty(shape, DType::f64);
      double* o = static_cast<double*>(t.raw());
      for (uint64_t i = 0; i < count; ++i) {
        uint64_t u = (uint64_t(be32(p + 8 * i)) << 32) | be32(p + 8 * i + 4);
        std::memcpy(&o[i], &u, 8);
      }
      return t;
    }
  }
}

Tensor read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path, kIdxOp);
  return parse_idx(bytes.data(), bytes.size(), path);
}

MnistData load_mnist_files(const std::string& images_path, const std::string& labels_path, int num_classes) {
  const char* op = "data::load_mnist";
  PH_CHECK(num_classes >= 1 && num_classes <= 256, op, "num_classes must be in [1, 256], got " << num_classes);
  MnistData d;
  d.images = read_idx(images_path);
  if (d.images.dtype() != DType::u8 || d.images.dim() != 3)
    file_error(op, images_path,
               "expected an image file with magic 0x00 0x00 0x08 0x03 (u8, 3 dims: N x rows x cols), found " +
                   std::string(dtype_name(d.images.dtype())) + " data of shape " + shape_str(d.images.shape()));
  d.labels = read_idx(labels_path);
  if (d.labels.dtype() != DType::u8 || d.labels.dim() != 1)
    file_error(op, labels_path,
               "expected a label file with magic 0x00 0x00 0x08 0x01 (u8, 1 dim: N), found " +
                   std::string(dtype_name(d.labels.dtype())) + " data of shape " + shape_str(d.labels.shape()));
  if (d.images.size(0) != d.labels.size(0))
    file_error(op, labels_path,
               "has " + std::to_string(d.labels.size(0)) + " labels but '" + images_path + "' has " +
                   std::to_string(d.images.size(0)) + " images");
  const uint8_t* l = static_cast<const uint8_t*>(d.labels.raw());
  for (int64_t i = 0; i < d.labels.size(0); ++i)
    if (l[i] >= num_classes)
      file_error(op, labels_path,
                 "label " + std::to_string(l[i]) + " of example " + std::to_string(i) + " at offset " + std::to_string(8 + i) +
                     " is out of range: expected 0.." + std::to_string(num_classes - 1));
  return d;
}

namespace {
// The first existing spelling of an MNIST file name in dir, or "" (tried is filled for messages).
std::string find_idx(const std::string& dir, const std::string& prefix, const std::string& kind, std::string& tried) {
  namespace fs = std::filesystem;
  for (const char* sep : {"-", "."})
    for (const char* ext : {"", ".gz"}) {
      std::string n = prefix + "-" + kind + sep + (kind == "images" ? "idx3" : "idx1") + "-ubyte" + ext;
      fs::path p = fs::path(dir) / n;
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
      tried += (tried.empty() ? "" : ", ") + n;
    }
  return {};
}
}  // namespace

bool mnist_available(const std::string& dir, bool train) {
  std::string tried;
  const char* prefix = train ? "train" : "t10k";
  return !find_idx(dir, prefix, "images", tried).empty() && !find_idx(dir, prefix, "labels", tried).empty();
}

MnistData load_mnist(const std::string& dir, bool train) {
  const char* prefix = train ? "train" : "t10k";
  std::string paths[2];
  const char* kinds[2] = {"images", "labels"};
  for (int k = 0; k < 2; ++k) {
    std::string tried;
    paths[k] = find_idx(dir, prefix, kinds[k], tried);
    if (paths[k].empty())
      throw Error("data::load_mnist", "no " + std::string(prefix) + " " + kinds[k] + " file in '" + dir + "' (tried " + tried + ")",
                  "run scripts/fetch_mnist.sh (MNIST into data/mnist) or scripts/fetch_fashion_mnist.sh (Fashion-MNIST into data/fashion)");
  }
  return load_mnist_files(paths[0], paths[1]);
}

std::shared_ptr<TensorDataset> mnist_dataset(const MnistData& d) {
  PH_CHECK(d.images.defined() && d.images.dim() == 3, "data::mnist_dataset", "images must be (N, H, W) u8");
  Tensor x = u8_to_unit_float(d.images).reshape({d.images.size(0), 1, d.images.size(1), d.images.size(2)});
  return std::make_shared<TensorDataset>(std::map<std::string, Tensor>{{"x", x}, {"y0", to_i64(d.labels)}});
}

}  // namespace polyhead::data
