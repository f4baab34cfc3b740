# cmake/Dependencies.cmake: find every dependency and print one status line for each.
find_package(TBB REQUIRED)
message(STATUS "polyhead: oneTBB ${TBB_VERSION} (TBB::tbb)")

# CBLAS: OpenBLAS (Debian libopenblas-dev). We call openblas_set_num_threads(1) at start-up so BLAS
# stays single-threaded inside oneTBB tasks.
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas openblas-pthread openblas-serial)
find_library(OPENBLAS_LIB NAMES openblas PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial)
if(NOT OPENBLAS_LIB OR NOT CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "polyhead: OpenBLAS not found. HINT: apt-get install libopenblas-dev")
endif()
set(POLYHEAD_BLAS_LIBS ${OPENBLAS_LIB})
include_directories(SYSTEM ${CBLAS_INCLUDE_DIR})
message(STATUS "polyhead: BLAS ${OPENBLAS_LIB} (cblas.h in ${CBLAS_INCLUDE_DIR})")

find_package(nlohmann_json 3 REQUIRED)
message(STATUS "polyhead: nlohmann_json ${nlohmann_json_VERSION} (safetensors headers, golden files, configs)")

find_package(ZLIB REQUIRED)
message(STATUS "polyhead: zlib ${ZLIB_VERSION_STRING} (.gz datasets)")

find_package(CLI11 REQUIRED)
message(STATUS "polyhead: CLI11 ${CLI11_VERSION} (command-line parsing)")

find_package(doctest REQUIRED)
message(STATUS "polyhead: doctest ${doctest_VERSION}")

find_path(STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
if(NOT STB_INCLUDE_DIR)
  message(FATAL_ERROR "polyhead: stb not found. HINT: apt-get install libstb-dev")
endif()
message(STATUS "polyhead: stb ${STB_INCLUDE_DIR} (image I/O, PNG plots)")

# CUDA: AUTO builds the CUDA target when nvcc is found; at run time a missing GPU only skips the
# CUDA tests (reported as skipped).
set(POLYHEAD_WITH_CUDA OFF)
if(NOT POLYHEAD_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND EXISTS ${CMAKE_SOURCE_DIR}/engine/cuda/CMakeLists.txt)
    set(POLYHEAD_WITH_CUDA ON)
  elseif(POLYHEAD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "polyhead: POLYHEAD_CUDA=ON but no CUDA compiler (or no engine/cuda sources). HINT: install the CUDA toolkit or configure with -DPOLYHEAD_CUDA=OFF")
  endif()
endif()
if(POLYHEAD_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "polyhead: CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES} (backend built)")
elseif(CMAKE_CUDA_COMPILER)
  message(STATUS "polyhead: CUDA compiler found, backend sources not present yet (CPU only)")
else()
  message(STATUS "polyhead: CUDA off (POLYHEAD_CUDA=${POLYHEAD_CUDA}; CPU only)")
endif()
