// mtl/mixing/text_domains.h: text domains for data-mixing experiments (byte-level language
// modelling), each split into a training stream and a held-out validation stream.
//
// Two sources:
//   corpus folder   every sub-folder of DIR holding regular files is one domain (its name = the
//                   folder name); its files are concatenated in sorted path order
//                   (scripts/fetch_text_corpus.sh writes data/corpus/<lang>/man.txt this way).
//   repository      a fallback that needs no download: four domains made of this project's own
//                   files under ROOT: "cpp" (*.cpp *.h *.cu), "markdown" (*.md), "build" (*.sh,
//                   *.cmake, CMakeLists.txt, Makefile, *.json under demos/) and "python" (*.py);
//                   build folders (build*), .git, data/ downloads and hidden folders are skipped.
// Each domain's bytes are capped at max_bytes (taken from the start); the last val_fraction of the
// bytes becomes the validation stream. Validation windows are fixed: `windows` windows of T + 1
// bytes at evenly spaced starts over the validation stream (no randomness), so every strategy is
// evaluated on exactly the same tokens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace polyhead::mtl::mixing {

struct TextDomain {
  std::string name;
  Tensor train, val;  // (L) u8 byte streams
  int64_t files = 0;  // how many files went into it
};

struct DomainOptions {
  int64_t max_bytes = 4'000'000;
  double val_fraction = 0.1;
  int64_t min_bytes = 4096;  // a domain with fewer bytes is an error (it cannot be split usefully)
};

// Domains from a corpus folder (sorted by name; `only` non-empty keeps those names, in that order).
// Throws when DIR has fewer than two usable domains or a name in `only` is missing.
std::vector<TextDomain> load_corpus_domains(const std::string& dir, const DomainOptions& o,
                                            const std::vector<std::string>& only = {});
// The four repository domains under root. Throws when root does not look like the repository.
std::vector<TextDomain> load_repository_domains(const std::string& root, const DomainOptions& o);
// Whether dir holds at least two sub-folders with files (a usable corpus).
bool corpus_available(const std::string& dir);

// Fixed validation windows of domain stream `val`: x, y (n, T) i64, starts evenly spaced.
struct Windows {
  Tensor x, y;
};
Windows fixed_windows(const Tensor& val, int64_t T, int64_t n);

}  // namespace polyhead::mtl::mixing
