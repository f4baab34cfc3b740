// data/cifar10.cpp: CIFAR-10 binary batches.
#include "data/cifar10.h"

#include <cstring>
#include <filesystem>

#include "data/io.h"

namespace polyhead::data {

namespace {
const char* kOp = "data::read_cifar10";
constexpr size_t kPixels = 3 * 32 * 32, kRecord = 1 + kPixels;
}  // namespace

Cifar10Data parse_cifar10_batch(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) file_error(kOp, name, "empty file: expected 3073-byte records (1 label byte + 3072 pixel bytes)");
  if (size % kRecord != 0) {
    size_t last = size / kRecord;
    file_error(kOp, name,
               "truncated record " + std::to_string(last) + " at offset " + std::to_string(last * kRecord) + ": expected " +
                   std::to_string(kRecord) + " bytes (1 label byte + 3072 pixel bytes), found " +
                   std::to_string(size - last * kRecord) + " (the file has " + std::to_string(size) +
                   " bytes, not a multiple of 3073)");
  }
  const int64_t n = int64_t(size / kRecord);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t l = data[size_t(i) * kRecord];
    if (l > 9)
      file_error(kOp, name,
                 "record " + std::to_string(i) + " at offset " + std::to_string(size_t(i) * kRecord) + ": label byte " +
                     std::to_string(l) + " out of range, expected 0..9");
  }
  Cifar10Data d;
  d.images = Tensor::empty({n, 3, 32, 32}, DType::u8);
  d.labels = Tensor::empty({n}, DType::u8);
  uint8_t* im = static_cast<uint8_t*>(d.images.raw());
  uint8_t* lb = static_cast<uint8_t*>(d.labels.raw());
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = data + size_t(i) * kRecord;
    lb[i] = r[0];
    std::memcpy(im + size_t(i) * kPixels, r + 1, kPixels);
  }
  return d;
}

Cifar10Data read_cifar10_batch(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path, kOp);
  return parse_cifar10_batch(bytes.data(), bytes.size(), path);
}

Cifar10Data load_cifar10(const std::string& dir, bool train) {
  namespace fs = std::filesystem;
  fs::path base(dir);
  std::error_code ec;
  if (fs::is_directory(base / "cifar-10-batches-bin", ec)) base /= "cifar-10-batches-bin";
  std::vector<std::string> names;
  if (train)
    for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  else
    names.push_back("test_batch.bin");
  std::vector<Cifar10Data> parts;
  int64_t total = 0;
  for (auto& n : names) {
    fs::path p = base / n;
    if (!fs::exists(p, ec) && fs::exists(fs::path(p.string() + ".gz"), ec)) p = p.string() + ".gz";
    if (!fs::exists(p, ec))
      throw Error("data::load_cifar10", "'" + p.string() + "' not found",
                  "download the CIFAR-10 binary version (cifar-10-binary.tar.gz) and extract it there");
    parts.push_back(read_cifar10_batch(p.string()));
    total += parts.back().labels.size(0);
  }
  if (parts.size() == 1) return parts[0];
  Cifar10Data d{Tensor::empty({total, 3, 32, 32}, DType::u8), Tensor::empty({total}, DType::u8)};
  uint8_t* im = static_cast<uint8_t*>(d.images.raw());
  uint8_t* lb = static_cast<uint8_t*>(d.labels.raw());
  for (auto& p : parts) {
    size_t n = size_t(p.labels.size(0));
    std::memcpy(im, p.images.raw(), n * kPixels);
    std::memcpy(lb, p.labels.raw(), n);
    im += n * kPixels;
    lb += n;
  }
  return d;
}

std::shared_ptr<TensorDataset> cifar10_dataset(const Cifar10Data& d) {
  return std::make_shared<TensorDataset>(
      std::map<std::string, Tensor>{{"x", u8_to_unit_float(d.images)}, {"y0", to_i64(d.labels)}});
}

}  // namespace polyhead::data
