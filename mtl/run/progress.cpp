// mtl/run/progress.cpp: see progress.h.
#include "mtl/run/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace polyhead::run {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = long(std::lround(s));
  char b[32];
  if (t < 60) std::snprintf(b, sizeof(b), "%lds", t);
  else if (t < 3600) std::snprintf(b, sizeof(b), "%ld:%02ld", t / 60, t % 60);
  else std::snprintf(b, sizeof(b), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return b;
}

Progress::Progress(std::string label, int64_t total_steps, int64_t batch_size, bool enabled, std::FILE* out,
                   double plain_interval_s)
    : label_(std::move(label)), total_(std::max<int64_t>(total_steps, 1)), batch_(batch_size), enabled_(enabled),
      out_(out ? out : stderr), interval_(plain_interval_s) {
  tty_ = ::isatty(::fileno(out_)) != 0;
  start_ = last_draw_ = last_update_ = std::chrono::steady_clock::now();
}

std::string Progress::line(int64_t done, const std::string& status) const {
  double el = std::chrono::duration<double>(last_update_ - start_).count();
  int64_t ran = first_ >= 0 ? done - first_ : 0;
  double rate = el > 0 && ran > 0 ? double(ran) / el : 0;
  double eta = rate > 0 ? double(total_ - done) / rate : NAN;
  char b[256];
  std::string bar;
  if (tty_) {
    const int w = 24;
    int fill = int(double(w) * double(std::min(done, total_)) / double(total_));
    bar.reserve(size_t(w) + 3);
    bar += '[';
    bar.append(size_t(fill), '#');
    bar.append(size_t(w - fill), '.');
    bar += "] ";
  }
  if (rate > 0)
    std::snprintf(b, sizeof(b), "%s %s%lld/%lld  %.1f steps/s  %.0f ex/s  ETA %s", label_.c_str(), bar.c_str(),
                  (long long)done, (long long)total_, rate, rate * double(batch_), format_duration(eta).c_str());
  else
    std::snprintf(b, sizeof(b), "%s %s%lld/%lld  - steps/s  - ex/s  ETA ?", label_.c_str(), bar.c_str(), (long long)done,
                  (long long)total_);
  std::string s = b;
  if (!status.empty()) s += "  " + status;
  return s;
}

void Progress::clear() {
  if (tty_ && drawn_) std::fputs("\r\x1b[K", out_);
  drawn_ = false;
}

void Progress::update(int64_t done, const std::string& status) {
  if (!enabled_) return;
  if (first_ < 0) {
    first_ = done;  // the rate counts from here (the first step's start is unknown)
    start_ = std::chrono::steady_clock::now();
  }
  last_done_ = done;
  auto now = std::chrono::steady_clock::now();
  last_update_ = now;
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (tty_) {
    if (since < 0.1 && done < total_ && drawn_) return;
    std::fprintf(out_, "\r\x1b[K%s", line(done, status).c_str());
    drawn_ = true;
  } else {
    if (since < interval_) return;
    std::fprintf(out_, "%s\n", line(done, status).c_str());
  }
  std::fflush(out_);
  last_draw_ = now;
}

void Progress::message(const std::string& l) {
  if (!enabled_) return;
  clear();
  std::fprintf(out_, "%s\n", l.c_str());
  std::fflush(out_);
}

void Progress::finish(const std::string& status) {
  if (!enabled_) return;
  clear();
  std::fprintf(out_, "%s\n", line(last_done_, status).c_str());
  std::fflush(out_);
}

}  // namespace polyhead::run
