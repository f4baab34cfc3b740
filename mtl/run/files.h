// mtl/run/files.h: run folders and atomic text files.
//
// write_text_atomic writes "<path>.tmp.<pid>" and renames it over `path`, so a reader (or a failed
// run) never sees half a file and an existing file is replaced only by a complete one.
// A run folder is "in use" when it holds a config.json or a checkpoint; prepare_run_dir refuses such
// a folder unless overwrite is set, and unique_dir picks "<base>", "<base>-2", "<base>-3", ... so a
// default output location never clobbers an earlier run.
#pragma once
#include <string>
#include <vector>

namespace polyhead::run {

void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);  // throws std::runtime_error naming the file
bool is_run_dir(const std::string& dir);
// Creates dir (and parents). Throws std::runtime_error when it holds a run and !overwrite.
void prepare_run_dir(const std::string& dir, bool overwrite);
// The first of base, base-2, base-3, ... that does not exist.
std::string unique_dir(const std::string& base);
std::string path_join(const std::string& a, const std::string& b);
// Keeps [A-Za-z0-9._-], replaces anything else by '_' (file names from task / method names).
std::string safe_name(const std::string& s);

}  // namespace polyhead::run
