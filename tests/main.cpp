// tests/main.cpp: the doctest runner of polyhead_tests. CTest runs it once per source folder.
// The CUDA suite (tests/cuda) exits with 77, which CTest reports as skipped, when no CUDA device
// is present: those tests are never reported as passed without a GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>

#include "engine/accelerator.h"

int main(int argc, char** argv) {
  bool cuda_suite = false;
  for (int i = 1; i < argc; ++i)
    if (std::strstr(argv[i], "tests/cuda")) cuda_suite = true;
  bool gpu = polyhead::init_cuda(false);
  if (cuda_suite && !gpu) {
    std::printf("CUDA tests skipped: %s\n", polyhead::accelerator_summary().c_str());
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
