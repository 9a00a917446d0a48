# The two entry points: `make demo` and `make test`. Both install what is missing (apt-get),
# configure and build with CMake, then run.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-asan fuzz bench-cpu bench-rvv bench-sim bench-check clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DSATTN_SANITIZE=ON"

# libFuzzer targets for the readers (clang-16, ASan+UBSan, build-fuzz): each runs FUZZ_SECONDS
# (default 20) on its committed corpus fuzz/corpus/NAME; a finding fails. Long runs: fuzz/run.sh 600.
fuzz: deps
	@fuzz/run.sh $(or $(FUZZ_SECONDS),20)

bench-cpu: build
	@$(BUILD)/bin/sattn_bench_cpu --out bench/results/cpu.md

# RVV: scalar / autovec / rvv x VLEN x precision (minutes; qemu); writes bench/results/rvv.md and
# the instruction-count baseline bench/rvv/baseline.json.
bench-rvv: build
	@bench/rvv/run.sh $(BUILD)

# The accelerator RTL: cycles, utilization, roofline, energy; bench/results/sim.md and the
# cycle-count baseline bench/sim/baseline.json.
bench-sim: build
	@bench/sim/run.sh $(BUILD)

# The performance regression check (also a CTest test, so `make test` runs it): 12 canonical
# workloads' RVV instruction counts and accelerator cycle counts against bench/baseline.json
# (fails above +5%). After an intentional change: bench/check.sh --update, and say why in the commit.
bench-check: build
	@bench/check.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
