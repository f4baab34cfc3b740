// data/csv.cpp: an RFC 4180 CSV parser with line-precise errors, and tabular datasets.
#include "data/csv.h"

#include <charconv>
#include <cmath>
#include <set>

#include "data/io.h"

namespace polyhead::data {

namespace {
const char* kOp = "data::read_csv";

[[noreturn]] void line_error(const std::string& name, int64_t line, const std::string& what) {
  file_error(kOp, name, "line " + std::to_string(line) + ": " + what);
}

std::string shown(std::string_view v) {
  std::string s(v.substr(0, 40));
  if (v.size() > 40) s += "...";
  return "'" + s + "'";
}
}  // namespace

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return int(i);
  std::string cols;
  for (auto& h : header) cols += (cols.empty() ? "" : ", ") + h;
  file_error("data::CsvTable::column", path, "no column '" + name + "'; the header has: " + cols);
}

CsvTable parse_csv(std::string_view text, const std::string& name, char delim) {
  PH_CHECK(delim != '"' && delim != '\n' && delim != '\r', kOp, "invalid delimiter");
  CsvTable t;
  t.path = name;
  size_t i = 0;
  const size_t n = text.size();
  if (n >= 3 && uint8_t(text[0]) == 0xEF && uint8_t(text[1]) == 0xBB && uint8_t(text[2]) == 0xBF) i = 3;
  int64_t line = 1;
  bool have_header = false;
  while (i < n) {
    // One record.
    const int64_t start_line = line;
    std::vector<std::string> rec;
    std::string field;
    bool record_done = false;
    bool blank = true;  // nothing but a line end so far
    while (!record_done) {
      field.clear();
      if (i < n && text[i] == '"') {  // quoted field
        blank = false;
        const int64_t qline = line;
        const size_t qcol = rec.size() + 1;
        ++i;
        for (;;) {
          if (i >= n)
            line_error(name, qline, "field " + std::to_string(qcol) + ": the quote opened here is never closed");
          char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') { field += '"'; ++i; continue; }
            break;
          }
          if (c == '\n') ++line;
          field += c;
        }
        if (i < n && text[i] != delim && text[i] != '\n' && text[i] != '\r')
          line_error(name, line,
                     "field " + std::to_string(qcol) + ": unexpected " + shown(text.substr(i, 1)) +
                         " after a closing quote (expected the delimiter or the end of the line)");
      } else {
        while (i < n && text[i] != delim && text[i] != '\n' && text[i] != '\r') {
          if (text[i] == '"')
            line_error(name, line,
                       "field " + std::to_string(rec.size() + 1) +
                           ": a '\"' inside an unquoted field (quote the whole field and double the quote)");
          field += text[i++];
          blank = false;
        }
      }
      rec.push_back(field);
      if (i < n && text[i] == delim) {
        ++i;
        blank = false;
        continue;
      }
      // End of record: CRLF, LF, CR or end of text.
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') ++i;
      ++line;
      record_done = true;
    }
    if (blank) continue;
    if (!have_header) {
      std::set<std::string> seen;
      for (size_t c = 0; c < rec.size(); ++c) {
        if (rec[c].empty()) line_error(name, start_line, "header column " + std::to_string(c + 1) + " has an empty name");
        if (!seen.insert(rec[c]).second) line_error(name, start_line, "header column name '" + rec[c] + "' appears twice");
      }
      t.header = std::move(rec);
      have_header = true;
      continue;
    }
    if (rec.size() != t.header.size())
      line_error(name, start_line,
                 "expected " + std::to_string(t.header.size()) + " fields (as in the header), found " + std::to_string(rec.size()));
    t.rows.push_back(std::move(rec));
    t.lines.push_back(start_line);
  }
  if (!have_header) file_error(kOp, name, "no header line: the file is empty");
  return t;
}

CsvTable read_csv(const std::string& path, char delimiter) {
  std::vector<uint8_t> bytes = read_file(path, kOp);
  return parse_csv(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path, delimiter);
}

namespace {
std::string_view trimmed(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
  return std::string_view(s).substr(a, b - a);
}
[[noreturn]] void cell_error(const CsvTable& t, size_t row, int col, const std::string& what) {
  file_error("data::csv", t.path,
             "line " + std::to_string(t.lines[row]) + ", column " + std::to_string(col + 1) + " ('" + t.header[size_t(col)] +
                 "'): " + what);
}
}  // namespace

double csv_number(const CsvTable& t, size_t row, int col) {
  const std::string& raw = t.rows[row][size_t(col)];
  std::string_view v = trimmed(raw);
  if (v.empty()) cell_error(t, row, col, "empty value: expected a number (missing values are not supported)");
  if (v.size() > 1 && v[0] == '+' && v[1] != '-') v.remove_prefix(1);
  double x = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec == std::errc::result_out_of_range) cell_error(t, row, col, "value " + shown(raw) + " is out of range for a number");
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || v.empty())
    cell_error(t, row, col, "expected a number, found " + shown(raw));
  if (!std::isfinite(x)) cell_error(t, row, col, "expected a finite number, found " + shown(raw));
  return x;
}

int64_t csv_integer(const CsvTable& t, size_t row, int col) {
  const std::string& raw = t.rows[row][size_t(col)];
  std::string_view v = trimmed(raw);
  if (v.empty()) cell_error(t, row, col, "empty value: expected an integer (missing values are not supported)");
  if (v.size() > 1 && v[0] == '+' && v[1] != '-') v.remove_prefix(1);
  int64_t x = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec == std::errc::result_out_of_range) cell_error(t, row, col, "integer " + shown(raw) + " is out of range");
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || v.empty())
    cell_error(t, row, col, "expected an integer, found " + shown(raw));
  return x;
}

TabularData tabular_from_table(const CsvTable& t, const std::vector<std::string>& features,
                               const std::vector<CsvTarget>& targets) {
  const char* op = "data::load_tabular_csv";
  PH_CHECK(!targets.empty(), op, "no target columns given");
  std::vector<int> tcols;
  std::set<int> used;
  for (auto& tg : targets) {
    PH_CHECK(tg.dtype == DType::f32 || tg.dtype == DType::i64, op,
             "target '" << tg.column << "': dtype must be f32 (regression) or i64 (class index), got " << dtype_name(tg.dtype));
    int c = t.column(tg.column);
    PH_CHECK(used.insert(c).second, op, "target column '" << tg.column << "' is listed twice");
    tcols.push_back(c);
  }
  std::vector<int> fcols;
  TabularData d;
  if (features.empty()) {
    for (int c = 0; c < int(t.header.size()); ++c)
      if (!used.count(c)) { fcols.push_back(c); d.feature_names.push_back(t.header[size_t(c)]); }
  } else {
    std::set<int> fseen;
    for (auto& f : features) {
      int c = t.column(f);
      PH_CHECK(!used.count(c), op, "column '" << f << "' is both a feature and a target");
      PH_CHECK(fseen.insert(c).second, op, "feature column '" << f << "' is listed twice");
      fcols.push_back(c);
      d.feature_names.push_back(f);
    }
  }
  PH_CHECK(!fcols.empty(), op, "'" << t.path << "': no feature columns");
  PH_CHECK(!t.rows.empty(), op, "'" << t.path << "': no data rows after the header");
  const int64_t N = int64_t(t.rows.size()), F = int64_t(fcols.size());
  d.x = Tensor::empty({N, F}, DType::f32);
  float* x = static_cast<float*>(d.x.raw());
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < F; ++j) x[r * F + j] = float(csv_number(t, size_t(r), fcols[size_t(j)]));
  for (size_t k = 0; k < targets.size(); ++k) {
    Tensor y = Tensor::empty({N}, targets[k].dtype);
    for (int64_t r = 0; r < N; ++r) {
      if (targets[k].dtype == DType::f32) {
        y.data<float>()[r] = float(csv_number(t, size_t(r), tcols[k]));
      } else {
        int64_t v = csv_integer(t, size_t(r), tcols[k]);
        if (v < 0) cell_error(t, size_t(r), tcols[k], "class index " + std::to_string(v) + " is negative");
        y.data<int64_t>()[r] = v;
      }
    }
    d.targets.push_back(y);
    d.target_names.push_back(targets[k].column);
  }
  return d;
}

TabularData load_tabular_csv(const std::string& path, const std::vector<std::string>& features,
                             const std::vector<CsvTarget>& targets, char delimiter) {
  return tabular_from_table(read_csv(path, delimiter), features, targets);
}

std::shared_ptr<TensorDataset> tabular_dataset(const TabularData& d) {
  std::map<std::string, Tensor> m{{"x", d.x}};
  for (size_t k = 0; k < d.targets.size(); ++k) m.emplace(target_name(int(k)), d.targets[k]);
  return std::make_shared<TensorDataset>(m);
}

}  // namespace polyhead::data
