// mtl/run/progress.h: a training progress bar on stderr.
//
// On a terminal: one line redrawn in place (at most 10 times a second) with a bar, steps done /
// total, steps/s, examples/s, the ETA and a short status (e.g. the current losses). When the stream
// is not a terminal (a log file, CI): a plain line every `plain_interval_s` seconds and at finish().
// Rates count only the steps of this process (a resumed run does not inherit the old rate).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace polyhead::run {

class Progress {
public:
  // enabled = false: prints nothing. out: stderr unless given.
  Progress(std::string label, int64_t total_steps, int64_t batch_size, bool enabled = true, std::FILE* out = nullptr,
           double plain_interval_s = 10.0);
  // `done` steps are finished (counted over the whole run, resumed steps included).
  void update(int64_t done, const std::string& status = "");
  // A line of its own above the bar (epoch summaries, warnings).
  void message(const std::string& line);
  void finish(const std::string& status = "");
  bool is_tty() const { return tty_; }

private:
  std::string line(int64_t done, const std::string& status) const;
  void clear();

  std::string label_;
  int64_t total_, batch_;
  bool enabled_, tty_ = false, drawn_ = false;
  std::FILE* out_;
  double interval_;
  int64_t first_ = -1, last_done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_, last_update_;  // rates: start_ .. last_update_
};

// "1:02:03" / "4:05" / "12s".
std::string format_duration(double seconds);

}  // namespace polyhead::run
