# The two entry points: `make demo` and `make test`. Both install what is missing (apt-get),
# configure and build with CMake, then run.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-asan fuzz bench-cpu bench-rvv bench-sim bench-check bench-emit bench-scaling \
	bench-roofline bench-reports bench-python bench-fidelity bench-fidelity-windows bench-fidelity-pooled bench-fidelity-pooled-fresh bench-grid bench-quant clean

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

# Each bench-* target below re-measures (minutes; run under nice on a shared machine), writes its
# committed JSON under bench/results/ and regenerates the matching .md from it. `make bench-reports`
# regenerates every bench/results/*.md (and the roofline plots) from the committed JSON alone.

# CPU: GFLOP/s and speedup against density, against the fast dense kernel and the OpenBLAS dense
# attention in the same `sattn bench` sweeps; bench/results/cpu.{json,md}.
bench-cpu: build
	@bench/cpu/run.sh $(BUILD)

# sattn-emit at seq_len 131072 (window, causal, landmark; 3 runs each): bench/results/emit.{json,md}.
bench-emit: build
	@bench/emit/run.sh $(BUILD)

# Cost growth up to seq_len 131072: the CPU kernel (bench/results/scaling-cpu.json) and sattn-emit
# (bench/results/scaling.json), fitted in bench/results/scaling.md (ns per allowed pair, R²).
bench-scaling: build
	@bench/scaling/cpu.sh $(BUILD)
	@bench/scaling/emit.sh $(BUILD) >bench/results/scaling-emit.jsonl.tmp
	@bench/scaling/report.py pack-emit bench/results/scaling-emit.jsonl.tmp >bench/results/scaling.json.tmp
	@mv bench/results/scaling.json.tmp bench/results/scaling.json && rm -f bench/results/scaling-emit.jsonl.tmp
	@bench/scaling/report.py report

# Every accelerator workload under every profile (highperf, lowpower, imc) on that profile's
# roofline: bench/results/roofline.{json,md}, bench/results/roofline-PROFILE.{svg,png}.
bench-roofline: build
	@bench/sim/roofline.sh $(BUILD)

# Fidelity (issue 20): recall and output error of every recall-grid point on the real activations
# (data/real) and synthetic data, and the quality-constrained selector on held-out samples:
# bench/results/fidelity.{json,md} and fidelity-pareto.svg (a few minutes).
bench-fidelity: build
	@bench/fidelity/run.py $(BUILD)

# The cost goal of issue 20 against many held-out windows: captures Q/K/V on every 8th 1024-byte
# window of the held-out text from the checkpoint of data/ (on the CPU; needs .gpu-carry/model/ckpt.pt
# and .gpu-carry/corpus, see data/README.md), measures every grid point on each, and bounds what any
# selector can reach: bench/results/fidelity-windows.json and its section of fidelity.md (~20 min).
bench-fidelity-windows: build
	@bench/fidelity/windows.py $(BUILD)

# The goals of issue 20 as the issue counts them: per (layer, KV-head group, seq) configuration, the
# selector calibrated on n = 1..16 windows (repeated --data) and scored on the held-out windows pooled:
# bench/results/fidelity-pooled.json and its section of fidelity.md. Captures like
# bench-fidelity-windows (needs the checkpoint and the corpus) into $(BUILD)/fidelity-windows, reused.
bench-fidelity-pooled: build
	@bench/fidelity/pooled.py $(BUILD)

# The same study on a second set of windows (every 8th from window 4: none of the set above), the
# untouched test of --recall-bound cv: bench/results/fidelity-pooled-fresh.json and its section of
# fidelity.md. Its own capture cache, $(BUILD)/fidelity-windows-offset4.
bench-fidelity-pooled-fresh: build
	@bench/fidelity/pooled.py $(BUILD) --offset 4 --cache $(BUILD)/fidelity-windows-offset4 \
	  --out bench/results/fidelity-pooled-fresh.json
	@bench/fidelity/report.py

# Quantization schemes (issue 23): accuracy (max-norm, relative L1, cosine) and cost (cpu time, rvv
# instructions, imc energy) of every scheme x precision on Gaussian, Laplace, outlier and the real
# activations: bench/results/quant.{json,md} (a few minutes).
bench-quant: build
	@bench/quant/run.py $(BUILD)
	@bench/quant/rocc.py $(BUILD) && bench/quant/report.py

bench-reports:
	@bench/fidelity/report.py
	@if [ -f bench/results/quant.json ]; then bench/quant/report.py; fi
	@bench/cpu/report.py
	@bench/emit/report.py
	@bench/scaling/report.py report
	@bench/sim/roofline.py
	@bench/sim/report.py report bench/results/sim.jsonl bench/sim/baseline.json bench/results/sim.md -
	@if [ -f bench/results/rvv.json ]; then bench/rvv/report.py report-json bench/results/rvv.json bench/results/rvv.md bench/rvv/baseline.json; \
	else echo "bench/results/rvv.json not committed yet: make bench-rvv writes it (rvv.md left as is)"; fi
	@bench/gpu/report.py
	@if [ -f bench/results/python.json ]; then bench/python/bench.py report; fi
	@bench/grid/report.py

# RVV: scalar / autovec / rvv x VLEN x precision (minutes; qemu); writes bench/results/rvv.md and
# the instruction-count baseline bench/rvv/baseline.json.
bench-rvv: build
	@bench/rvv/run.sh $(BUILD)

# Python: sattn fwd+bwd against torch's masked attention, the Python-call overhead against the C++
# API, peak memory against allowed pairs (minutes); bench/results/python.{json,md}.
bench-python: build
	@nice bench/python/bench.py run $(BUILD)

# The accelerator grid (model): speedup and parallel efficiency against tiles, multicast on/off,
# each schedule, at seq_len 16384 (tens of minutes of CPU); bench/results/grid.{json,md} and the
# grid-*.svg/png plots.
bench-grid: build
	@nice bench/grid/run.py $(BUILD)
	@bench/grid/report.py

# The accelerator RTL: cycles, utilization, roofline, energy; bench/results/sim.md and the
# cycle-count baseline bench/sim/baseline.json.
bench-sim: build
	@bench/sim/run.sh $(BUILD)

# The performance regression check (also a CTest test, so `make test` runs it): 14 canonical
# workloads' RVV instruction counts, accelerator cycle counts and grid model cycle counts against bench/baseline.json
# (fails above +5%). After an intentional change: bench/check.sh --update, and say why in the commit.
bench-check: build
	@bench/check.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
