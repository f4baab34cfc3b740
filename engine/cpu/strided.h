// engine/cpu/strided.h: iteration over N-d strided operands for the CPU elementwise kernels.
// Dims are coalesced (adjacent dims merged where every operand allows it); the last dim is the
// inner loop; outer rows are split into fixed chunks for oneTBB.
#pragma once
#include <array>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace polyhead::cpu {

template <int NOPS>
struct StridedLoop {
  std::vector<int64_t> shape;                     // coalesced shape
  std::array<std::vector<int64_t>, NOPS> strides; // per operand, in elements

  StridedLoop(const Shape& s, const std::array<const Shape*, NOPS>& st) {
    // drop size-1 dims, merge contiguous runs
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;
      if (!shape.empty()) {
        bool merge = true;
        for (int o = 0; o < NOPS; ++o)
          if (strides[o].back() != (*st[o])[d] * s[d]) { merge = false; break; }
        if (merge) {
          shape.back() *= s[d];
          for (int o = 0; o < NOPS; ++o) strides[o].back() = (*st[o])[d];
          continue;
        }
      }
      shape.push_back(s[d]);
      for (int o = 0; o < NOPS; ++o) strides[o].push_back((*st[o])[d]);
    }
    if (shape.empty()) {
      shape.push_back(1);
      for (int o = 0; o < NOPS; ++o) strides[o].push_back(0);
    }
  }

  // f(offsets of inner row start, inner length, inner strides) for every outer row, in parallel.
  template <class F>
  void run(F&& f) const {
    int nd = int(shape.size());
    int64_t inner = shape[nd - 1];
    int64_t rows = 1;
    for (int d = 0; d < nd - 1; ++d) rows *= shape[d];
    std::array<int64_t, NOPS> istr;
    for (int o = 0; o < NOPS; ++o) istr[o] = strides[o][nd - 1];
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1));
    parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> idx(nd, 0);
      // decompose r0
      int64_t r = r0;
      for (int d = nd - 2; d >= 0; --d) { idx[d] = r % shape[d]; r /= shape[d]; }
      std::array<int64_t, NOPS> off{};
      for (int o = 0; o < NOPS; ++o)
        for (int d = 0; d < nd - 1; ++d) off[o] += idx[d] * strides[o][d];
      for (int64_t row = r0; row < r1; ++row) {
        f(off, inner, istr);
        for (int d = nd - 2; d >= 0; --d) {
          for (int o = 0; o < NOPS; ++o) off[o] += strides[o][d];
          if (++idx[d] < shape[d]) break;
          for (int o = 0; o < NOPS; ++o) off[o] -= strides[o][d] * shape[d];
          idx[d] = 0;
        }
      }
    });
  }
};

}  // namespace polyhead::cpu
