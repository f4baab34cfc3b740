// engine/threading.h: the CPU thread count (oneTBB is the only threading runtime).
// Results do not depend on it: CPU kernels partition work by size, never by thread count.
#pragma once

namespace polyhead {
// n <= 0 restores the default (all cores).
void set_num_threads(int n);
int num_threads();
}  // namespace polyhead
