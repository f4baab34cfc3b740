// data/text.h: byte-level text for next-byte prediction (vocabulary: the 256 byte values).
//
// The token stream is the bytes of the files, concatenated in the order given (gzip accepted).
// TextWindows draws windows of T + 1 consecutive bytes: in epoch e, window i starts at
//   s = uniform_index(derive_seed(derive_seed(seed, e), 0), i, L - T)   (so s + T < L)
// and gives x = stream[s .. s+T-1], y0 = stream[s+1 .. s+T] (i64, shape (T)).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace polyhead::data {

// (L) u8: the bytes of the files, concatenated. An empty result is an Error.
Tensor read_text_bytes(const std::vector<std::string>& paths);
// (L) u8 from a string.
Tensor text_to_bytes(const std::string& s);
// The bytes of a u8 or i64 token tensor as a string (values must be 0..255).
std::string bytes_to_text(const Tensor& tokens);

class TextWindows : public Dataset {
public:
  // stream: (L) u8 with L >= T + 1. windows_per_epoch: the dataset's size.
  TextWindows(Tensor stream, int64_t T, int64_t windows_per_epoch, uint64_t seed);
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override;
  Batch get_batch(std::span<const int64_t> idx) const override;
  void set_epoch(uint64_t epoch) override { epoch_ = epoch; }
  int64_t window_start(int64_t i) const;  // in the current epoch
  int64_t context() const { return T_; }
  const Tensor& stream() const { return stream_; }

private:
  Tensor stream_;
  int64_t T_, n_;
  uint64_t seed_, epoch_ = 0;
};

// B random windows for training step `step` without a loader: x, y0 of shape (B, T) i64.
// Window b starts at uniform_index(derive_seed(derive_seed(seed, step), 1), b, L - T).
Batch text_batch(const Tensor& stream, int64_t T, int64_t B, uint64_t seed, uint64_t step);

}  // namespace polyhead::data
