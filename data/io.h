// data/io.h: whole-file reading shared by the dataset readers, and the helpers they use to word
// their errors. Every reader reports a bad file by throwing polyhead::Error whose message names
// the file, where in it (byte offset or line) the problem is, and what was expected there.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/error.h"

namespace polyhead::data {

// The bytes of a file. Plain and gzip-compressed files are both accepted (zlib's gzread passes
// plain files through), so "x.idx" and "x.idx.gz" read the same. Throws Error(op, ...) when the
// file is missing, not a regular file, unreadable, or a corrupt / truncated gzip stream.
// max_bytes bounds the decompressed size (a clear error instead of exhausting memory).
std::vector<uint8_t> read_file(const std::string& path, const char* op, uint64_t max_bytes = uint64_t(1) << 36);

// "0x08" for messages.
std::string hex_byte(uint8_t b);

// Throws Error(op, "'<path>': <what>").
[[noreturn]] void file_error(const char* op, const std::string& path, const std::string& what,
                             const std::string& hint = {});

}  // namespace polyhead::data
