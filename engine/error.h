// engine/error.h: polyhead::Error, the one exception type of the library.
// It carries the op that failed, the shapes / dtypes / devices involved and, where the fix is
// known, a hint. Library code reports failures only by throwing it (never abort/exit).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace polyhead {

class Error : public std::runtime_error {
public:
  Error(std::string op, std::string what, std::string hint = {})
      : std::runtime_error(format(op, what, hint)), op_(std::move(op)), hint_(std::move(hint)) {}
  const std::string& op() const { return op_; }
  const std::string& hint() const { return hint_; }

private:
  static std::string format(const std::string& op, const std::string& what, const std::string& hint) {
    std::string s = op.empty() ? what : op + ": " + what;
    if (!hint.empty()) s += "\nHINT: " + hint;
    return s;
  }
  std::string op_, hint_;
};

// "[2, 3, 4]" for messages.
inline std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

}  // namespace polyhead

// PH_CHECK(cond, op, msg-stream-expression[, hint]): throw polyhead::Error when cond is false.
#define PH_CHECK(cond, op, msg)                                  \
  do {                                                           \
    if (!(cond)) {                                               \
      std::ostringstream ph_os_;                                 \
      ph_os_ << msg;                                             \
      throw ::polyhead::Error((op), ph_os_.str());               \
    }                                                            \
  } while (0)
#define PH_CHECK_HINT(cond, op, msg, hint)                       \
  do {                                                           \
    if (!(cond)) {                                               \
      std::ostringstream ph_os_;                                 \
      ph_os_ << msg;                                             \
      throw ::polyhead::Error((op), ph_os_.str(), (hint));       \
    }                                                            \
  } while (0)
