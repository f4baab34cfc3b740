// data/fuzz/fuzz_csv.cpp: libFuzzer target for the CSV parser and the tabular loader.
#include "data/csv.h"
#include "data/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace polyhead;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    data::CsvTable t = data::parse_csv(text, "<memory>");
    if (!t.header.empty()) {
      // The last column as a regression target, then as a class target; the rest are features.
      for (DType dt : {DType::f32, DType::i64}) {
        try {
          data::tabular_from_table(t, {}, {{t.header.back(), dt}});
        } catch (const Error&) {
        }
      }
    }
  } catch (const Error&) {
  }
  try {
    data::load_tabular_csv(data::fuzz::write_input("table.csv", data, size), {}, {{"y", DType::i64}}, ';');
  } catch (const Error&) {
  }
  return 0;
}
