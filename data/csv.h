// data/csv.h: CSV files with a header row, and tabular multi-task datasets built from them.
//
// Syntax (RFC 4180): fields separated by the delimiter (',' by default); a field may be quoted
// with '"' (then it may hold delimiters, newlines and "" for a quote); LF or CRLF line ends; a
// UTF-8 byte-order mark is skipped; blank lines are skipped. The first record is the header: its
// names must be non-empty and distinct. Every record must have as many fields as the header.
// Errors name the file and the line (and column where it applies).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace polyhead::data {

struct CsvTable {
  std::string path;                             // for messages
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;                   // 1-based line where each row starts
  // Index of a column by name; Error listing the columns when absent.
  int column(const std::string& name) const;
};

CsvTable read_csv(const std::string& path, char delimiter = ',');
CsvTable parse_csv(std::string_view text, const std::string& name, char delimiter = ',');

// A numeric field: surrounding spaces are ignored; empty, non-numeric and non-finite values are
// an Error naming the file, the line, the column (1-based) and its name.
double csv_number(const CsvTable& t, size_t row, int col);
// An integer field (no fraction, no exponent), same errors.
int64_t csv_integer(const CsvTable& t, size_t row, int col);

struct CsvTarget {
  std::string column;
  DType dtype = DType::f32;  // f32: a regression target; i64: a class index (must be an integer >= 0)
};

struct TabularData {
  Tensor x;                                 // (N, F) f32
  std::vector<std::string> feature_names;   // F
  std::vector<Tensor> targets;              // K tensors (N), f32 or i64
  std::vector<std::string> target_names;    // K
};

// Features: the named columns in that order; empty = every column that is not a target.
TabularData load_tabular_csv(const std::string& path, const std::vector<std::string>& features,
                             const std::vector<CsvTarget>& targets, char delimiter = ',');
TabularData tabular_from_table(const CsvTable& t, const std::vector<std::string>& features,
                               const std::vector<CsvTarget>& targets);

// x and y0 .. y{K-1} (targets in the order given).
std::shared_ptr<TensorDataset> tabular_dataset(const TabularData& d);

}  // namespace polyhead::data
