// mtl/mixing/text_domains.cpp: see text_domains.h.
#include "mtl/mixing/text_domains.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/error.h"

namespace polyhead::mtl::mixing {

namespace fs = std::filesystem;

namespace {

// Appends the file's bytes to out, up to `cap` bytes in total.
void append_file(const fs::path& p, std::string& out, int64_t cap) {
  if (int64_t(out.size()) >= cap) return;
  std::ifstream f(p, std::ios::binary);
  PH_CHECK(f.good(), "mixing::text_domains", "cannot read " << p.string());
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!s.empty() && s.back() != '\n') s.push_back('\n');
  const size_t room = size_t(cap) - out.size();
  out.append(s, 0, std::min(room, s.size()));
}

TextDomain make_domain(const std::string& name, const std::string& bytes, int64_t files, const DomainOptions& o) {
  const char* op = "mixing::text_domains";
  PH_CHECK(o.val_fraction > 0 && o.val_fraction < 1, op, "val_fraction must be in (0, 1), got " << o.val_fraction);
  PH_CHECK(int64_t(bytes.size()) >= o.min_bytes, op,
           "domain '" << name << "' has " << bytes.size() << " bytes; at least " << o.min_bytes << " are needed");
  const int64_t L = int64_t(bytes.size());
  const int64_t nval = std::max<int64_t>(1, int64_t(double(L) * o.val_fraction));
  TextDomain d;
  d.name = name;
  d.files = files;
  d.train = Tensor::empty({L - nval}, DType::u8);
  d.val = Tensor::empty({nval}, DType::u8);
  std::memcpy(d.train.raw(), bytes.data(), size_t(L - nval));
  std::memcpy(d.val.raw(), bytes.data() + (L - nval), size_t(nval));
  return d;
}

bool has_files(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.file_size() > 0) return true;
  return false;
}

std::vector<fs::path> sorted_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool corpus_available(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && has_files(e.path())) ++n;
  return n >= 2;
}

std::vector<TextDomain> load_corpus_domains(const std::string& dir, const DomainOptions& o,
                                            const std::vector<std::string>& only) {
  const char* op = "mixing::load_corpus_domains";
  PH_CHECK_HINT(corpus_available(dir), op, "'" << dir << "' does not hold two or more domain folders with files",
                "run scripts/fetch_text_corpus.sh (man pages in 7 languages) or point --corpus at such a folder");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && has_files(e.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (!only.empty()) {
    for (const auto& n : only) {
      std::string all;
      for (const auto& m : names) {
        if (!all.empty()) all += ", ";
        all += m;
      }
      PH_CHECK(std::find(names.begin(), names.end(), n) != names.end(), op,
               "domain '" << n << "' is not in " << dir << " (available: " << all << ")");
    }
    names = only;
  }
  PH_CHECK(names.size() >= 2, op, "need at least two domains, got " << names.size());
  std::vector<TextDomain> out;
  for (const auto& n : names) {
    std::string bytes;
    int64_t files = 0;
    for (const auto& p : sorted_files(fs::path(dir) / n)) {
      if (int64_t(bytes.size()) >= o.max_bytes) break;
      append_file(p, bytes, o.max_bytes);
      ++files;
    }
    out.push_back(make_domain(n, bytes, files, o));
  }
  return out;
}

std::vector<TextDomain> load_repository_domains(const std::string& root, const DomainOptions& o) {
  const char* op = "mixing::load_repository_domains";
  const fs::path r(root);
  PH_CHECK_HINT(fs::is_directory(r / "engine") && fs::is_directory(r / "mtl") && fs::exists(r / "CMakeLists.txt"), op,
                "'" << root << "' is not the Polyhead repository (no engine/, mtl/, CMakeLists.txt)",
                "run from the repository root or pass --root");
  const std::vector<std::string> names{"cpp", "markdown", "build", "python"};
  std::vector<std::vector<fs::path>> files(names.size());
  auto skip_dir = [&](const fs::path& p) {
    const std::string n = p.filename().string();
    if (n.empty() || n[0] == '.' || n.rfind("build", 0) == 0) return true;
    const std::string rel = fs::relative(p, r).generic_string();
    return rel == "data/corpus" || rel == "data/mnist" || rel == "data/fashion" || rel == "data/cifar10" ||
           rel == "data/cifar-10-batches-bin" || rel == "runs" || rel.rfind("data/fuzz/corpus", 0) == 0;
  };
  for (auto it = fs::recursive_directory_iterator(r); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory()) {
      if (skip_dir(it->path())) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    const fs::path& p = it->path();
    const std::string fn = p.filename().string(), ext = p.extension().string();
    const std::string rel = fs::relative(p, r).generic_string();
    int d = -1;
    if (ext == ".cpp" || ext == ".h" || ext == ".cu" || ext == ".cuh") d = 0;
    else if (ext == ".md") d = 1;
    else if (ext == ".sh" || ext == ".cmake" || fn == "CMakeLists.txt" || fn == "Makefile" ||
             (ext == ".json" && rel.rfind("demos/", 0) == 0))
      d = 2;
    else if (ext == ".py") d = 3;
    if (d >= 0) files[size_t(d)].push_back(p);
  }
  std::vector<TextDomain> out;
  for (size_t d = 0; d < names.size(); ++d) {
    std::sort(files[d].begin(), files[d].end());
    std::string bytes;
    for (const auto& p : files[d]) append_file(p, bytes, o.max_bytes);
    out.push_back(make_domain(names[d], bytes, int64_t(files[d].size()), o));
  }
  return out;
}

Windows fixed_windows(const Tensor& val, int64_t T, int64_t n) {
  const char* op = "mixing::fixed_windows";
  PH_CHECK(val.dtype() == DType::u8 && val.dim() == 1, op, "expected a (L) u8 stream, got " << val.str());
  PH_CHECK(T >= 1 && n >= 1, op, "T = " << T << " and n = " << n << " must be >= 1");
  const int64_t L = val.size(0);
  PH_CHECK(L >= T + 1, op, "validation stream of " << L << " bytes is shorter than a window of " << T + 1);
  Tensor s = val.contiguous();
  const uint8_t* p = static_cast<const uint8_t*>(s.raw());
  Windows w{Tensor::empty({n, T}, DType::i64), Tensor::empty({n, T}, DType::i64)};
  int64_t* x = w.x.data<int64_t>();
  int64_t* y = w.y.data<int64_t>();
  const int64_t span = L - T - 1;  // last valid start
  for (int64_t i = 0; i < n; ++i) {
    const int64_t start = n == 1 ? 0 : span * i / (n - 1);
    for (int64_t t = 0; t < T; ++t) {
      x[i * T + t] = p[start + t];
      y[i * T + t] = p[start + t + 1];
    }
  }
  return w;
}

}  // namespace polyhead::mtl::mixing
