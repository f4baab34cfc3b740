# scripts/device_env.sh: sourced by gpu-check.sh and gpu-perf.sh. On a GPU machine that lacks some
# build packages, they come as .debs in .deps/ (see the shared device notes) and are unpacked into
# /opt/deps, never into /; this exports the paths to them and sets `cmake_deps`, the extra CMake
# flags that point at them (empty without .deps/).
cmake_deps=()
if [[ -d .deps ]]; then
  for f in .deps/*.deb; do dpkg -x "$f" /opt/deps; done
  export CMAKE_PREFIX_PATH=/opt/deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export CPATH=/opt/deps/usr/include${CPATH:+:$CPATH}
  lib=/opt/deps/usr/lib/x86_64-linux-gnu
  export LIBRARY_PATH=$lib:$lib/openblas-pthread${LIBRARY_PATH:+:$LIBRARY_PATH}
  export LD_LIBRARY_PATH=$lib:$lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  cmake_deps=(-DSTB_INCLUDE_DIR=/opt/deps/usr/include/stb -DCBLAS_INCLUDE_DIR=/opt/deps/usr/include/x86_64-linux-gnu/openblas-pthread)
fi
export OPENBLAS_NUM_THREADS=1
