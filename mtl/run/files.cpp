// mtl/run/files.cpp: see files.h.
#include "mtl/run/files.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace polyhead::run {

namespace fs = std::filesystem;

void write_text_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write '" + tmp + "'");
    f << text;
    f.flush();
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      throw std::runtime_error("write to '" + tmp + "' failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool is_run_dir(const std::string& dir) {
  return fs::exists(path_join(dir, "config.json")) || fs::exists(path_join(dir, "checkpoint.safetensors"));
}

void prepare_run_dir(const std::string& dir, bool overwrite) {
  if (is_run_dir(dir) && !overwrite)
    throw std::runtime_error("'" + dir + "' already holds a run; continue it with --resume " + dir +
                             ", pick another --out, or pass --overwrite");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw std::runtime_error("cannot create folder '" + dir + "': " + ec.message());
}

std::string unique_dir(const std::string& base) {
  if (!fs::exists(base)) return base;
  for (int i = 2;; ++i) {
    std::string d = base + "-" + std::to_string(i);
    if (!fs::exists(d)) return d;
  }
}

std::string path_join(const std::string& a, const std::string& b) { return (fs::path(a) / b).string(); }

std::string safe_name(const std::string& s) {
  std::string o = s;
  for (char& c : o)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) c = '_';
  return o.empty() ? "_" : o;
}

}  // namespace polyhead::run
