# make bench: what litefs_guard costs against stock SQLite (same process,
# interleaved A B A B …) and against Django's stock SQLite backend.
# Prints the table and writes target/bench/results.json (+ results.md,
# django.json). See docs/benchmarks.md. The FUSE rows need root and
# /dev/fuse (litefs-sim); without them they are marked "not run".
#
#   make bench                        everything, ~4 minutes on 2 cores
#   make bench BENCH_ARGS='--only insert,tx10 --reps 15'
#   make bench BENCH_ARGS='--only contention-table --writers 8 --load request'
#                                     part of the contention table (docs/benchmarks.md)
#   bench/target/release/litefs-guard-bench profile insert guarded 20000
#                                     one side of one figure, for perf/callgrind

BENCH_CARGO    ?= cargo
BENCH_MANIFEST := bench/Cargo.toml
BENCH_BIN      := bench/target/release/litefs-guard-bench
BENCH_OUT      ?= target/bench/results.json
BENCH_ARGS     ?=
# What the table says it measured: the working tree's build.
BENCH_LABEL    ?= $(SO) built from $(shell git describe --always --dirty 2>/dev/null || echo "an unknown commit")
# Priority over the machine's other work while measuring (root only; a
# non-root `nice` warns and runs the bench unchanged).
BENCH_NICE     ?= nice -n -10
# rusqlite's bundled SQLite is built with SQLITE_ENABLE_MEMORY_MANAGEMENT,
# which makes all connections of a process share one page-cache pool: the
# guarded and the stock connection would then evict each other's pages and
# one side re-reads its B-tree every transaction (measured: a stock-vs-stock
# "ratio" of 0.50). Debian's libsqlite3 (Python, the CLI) keeps one cache
# per connection; so does the bench's SQLite with this flag (the binary
# refuses to run without it).
BENCH_SQLITE_FLAGS := -USQLITE_ENABLE_MEMORY_MANAGEMENT

.PHONY: bench bench-build

bench-build: build sim-build
	LIBSQLITE3_FLAGS="$(BENCH_SQLITE_FLAGS)" $(BENCH_CARGO) build --release --manifest-path $(BENCH_MANIFEST)

bench: bench-build
	@$(MAKE) --no-print-directory venv || echo "bench: WARNING: make venv failed; the Django rows will not run" >&2
	@mkdir -p $(dir $(BENCH_OUT))
	LITEFS_GUARD_SO=$(abspath $(SO)) LITEFS_SIM_BIN=$(abspath $(SIM_BIN)) \
	  BENCH_LABEL="$(BENCH_LABEL)" \
	  $(BENCH_NICE) $(BENCH_BIN) --out $(BENCH_OUT) --django-python $(abspath build/venv/bin/python) $(BENCH_ARGS)
