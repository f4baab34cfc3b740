// engine/safetensors.h: named tensors to and from the safetensors file format.
//
// Layout (https://github.com/huggingface/safetensors):
//   8 bytes   N, little-endian u64: the header length
//   N bytes   JSON header {"__metadata__": {str: str}?, "<name>": {"dtype": "F32", "shape": [2, 3],
//             "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
//   rest      the tensors' raw little-endian bytes, C order; offsets are relative to this region
// Supported dtypes: F32, F64, I32, I64, U8 (the engine's DTypes).
//
// Writing follows the reference writer byte for byte: compact JSON with "__metadata__" first, the
// tensors ordered by descending dtype alignment (I64, F64, F32, I32, U8) and then by name, so every
// tensor's data is aligned to its element size. The write is atomic: the bytes go to
// "<path>.tmp.<pid>" in the same directory, are fsync'ed and renamed over `path`; on any failure the
// temporary file is removed and an existing `path` is left untouched.
//
// Reading validates everything before trusting it (file shorter than 8 bytes, header length past the
// end of the file or over 100 MB, JSON that does not parse or is not an object, duplicate names,
// unknown fields, unsupported dtypes, shapes that are not arrays of non-negative integers,
// data_offsets inconsistent with dtype and shape, offsets that overlap, leave gaps or run past the
// data region, a data region longer than the last offset, non-string metadata) and throws a
// polyhead::Error naming the file, the tensor or field, and what was expected.
#pragma once
#include <map>
#include <string>

#include "engine/tensor.h"

namespace polyhead {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // contiguous, on the CPU
  std::map<std::string, std::string> metadata;
};

// Tensors may live on any device and be any strided view; they are written contiguous.
// Names must be non-empty and must not be "__metadata__".
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

SafetensorsFile load_safetensors(const std::string& path);

// "F32" for DType::f32, ...
const char* safetensors_dtype_name(DType t);

}  // namespace polyhead
