# Makefile: a thin wrapper over CMake. See README.md.
#   make            configure + build (Release) into build/
#   make test       build and run the test suite (ctest)
#   make bench      run the benchmarks (B1, B2; B3 with a GPU) and the PyTorch anchor when available
#   make demo       fetch MNIST if needed, build, run the multi-task comparison (`polyhead compare`)
#   make asan       build with Address/UB sanitizers into build-asan/ and run the tests
#   make fuzz       build the libFuzzer targets with clang into build-fuzz/ and run each briefly
#   make gpu-check  on a GPU machine: build with CUDA, run all tests (CUDA ones included) and benchmarks
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build test bench demo demo-full asan fuzz gpu-check clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure

bench: build
	scripts/bench.sh $(BUILD)

demo: build
	scripts/fetch_mnist.sh || echo "demo: real MNIST unavailable, the demo uses a synthetic stand-in"
	$(BUILD)/polyhead compare --config demos/multimnist_compare.json

demo-full: build
	scripts/fetch_mnist.sh
	$(BUILD)/polyhead compare --config demos/multimnist_compare.json --full

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOLYHEAD_ASAN=ON -DPOLYHEAD_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure

fuzz:
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

gpu-check:
	scripts/gpu-check.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
