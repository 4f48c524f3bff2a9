# daxwio build, test and demo entry points. Every target works on a fresh
# Debian machine after .ci/run (or the README's set-up line) has installed
# the toolchain and packages.

GO      ?= go
GOFLAGS ?=
export CGO_ENABLED ?= 0

.PHONY: all build test test-race test-short bench demo vet fmt fuzz clean soak setup setup-demo

all: build

# setup: the Debian packages the tests need (only the missing ones), and the
# Go modules. make test and make demo run it first, so each works on a fresh
# machine.
setup:
	bash .ci/install-deps test
	$(GO) mod download

setup-demo:
	bash .ci/install-deps demo
	$(GO) mod download

build: actors
	$(GO) build ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# test: everything CI runs. Sized for a 2-core machine.
test: setup vet actors
	$(GO) test -count=1 -timeout 20m ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) qemu-test

bench: bench-daxfs
	$(GO) test -run '^$$' -bench . -benchtime 1s ./...

# bench-daxfs: the daxfs library side by side with the kernel paths it
# replaces (zero-copy and copying reads vs pread, overlay create/lookup with
# 1 vs 2 processes, 10,000 small files vs os on tmpfs), ratios from one run
# (docs/BENCHMARKS.md). About 3 minutes on an idle 2-core machine; writes
# bench/results/daxfs.json and bench/results/daxfs-*.png.
.PHONY: bench-daxfs
bench-daxfs:
	@mkdir -p bin bench/results
	CGO_ENABLED=0 $(GO) build -o bin/daxfs-bench ./bench/daxfs
	bin/daxfs-bench -out bench/results/daxfs.json -png bench/results $(BENCH_DAXFS_FLAGS)

# demo: the thermal/power placement experiment (docs/SCHEDULER.md): three
# policies of 30 model minutes at 30x, about 3.5 minutes; writes
# demo-report/report.json and PNG plots. Its two wasm actors need only the
# Go toolchain (not wabt); without them it falls back to in-process actors.
demo: setup-demo actors/examples/bin/lz4.wasm actors/examples/bin/crc32c.wasm
	$(GO) build -o bin/wio ./cmd/wio
	./bin/wio demo -out demo-report

clean:
	rm -rf bin demo-report

# actors: every example actor as .wasm under actors/examples/bin (not
# committed). Go actors use the Go toolchain (GOOS=wasip1, c-shared reactor);
# WAT actors and the hostile test modules need wat2wasm (Debian: wabt).
ACTORS_BIN := actors/examples/bin
GO_ACTORS  := lz4 crc32c filter logfmt
WAT_ACTORS := upper
HOSTILE    := $(basename $(notdir $(wildcard actors/testdata/hostile/*.wat)))
TESTWAT    := $(basename $(notdir $(wildcard actors/testdata/wat/*.wat)))
ACTOR_SRC  := $(shell find actors/examples -name '*.go' -not -path '*/bin/*') go.mod

.PHONY: actors actors-soak bench-actors
actors: $(GO_ACTORS:%=$(ACTORS_BIN)/%.wasm) $(WAT_ACTORS:%=$(ACTORS_BIN)/%.wasm) $(HOSTILE:%=$(ACTORS_BIN)/hostile/%.wasm) $(TESTWAT:%=$(ACTORS_BIN)/test/%.wasm)

$(ACTORS_BIN)/%.wasm: $(ACTOR_SRC)
	@mkdir -p $(@D)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./actors/examples/$*/wasm

$(ACTORS_BIN)/upper.wasm: actors/examples/upper/upper.wat
	@mkdir -p $(@D)
	wat2wasm $< -o $@

$(ACTORS_BIN)/hostile/%.wasm: actors/testdata/hostile/%.wat
	@mkdir -p $(@D)
	wat2wasm $< -o $@

$(ACTORS_BIN)/test/%.wasm: actors/testdata/wat/%.wat
	@mkdir -p $(@D)
	wat2wasm $< -o $@

# qemu-test: daxwio across QEMU virtual machines sharing one memory pool
# (docs/TESTBED.md). Needs qemu-system-x86, linux-image-amd64 and
# busybox-static; fails with a list of what is missing rather than passing.
# About 1 min on an idle 2-core machine (5 VM boots: cas, daxfs, fuse, wio), up to ~4 min under
# heavy load; results in bin/qemu-test.json.
.PHONY: qemu-test
qemu-test:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -o bin/ ./qemu/cmd/daxwio-testbed ./qemu/cmd/daxwio-vminit
	bin/daxwio-testbed test --json bin/qemu-test.json

# actors-soak: 1,000,000 requests from client processes with 10,500 random
# migrations, then 90,000 requests with 5 SIGKILLs of the owning daemon,
# checked for exactly-once, per-client order and twin outputs.
actors-soak: actors
	cd actors && $(GO) test -count=1 -run 'MultiProcessExactlyOnce|KillOwnerMidStream' -timeout 60m -v -wio.soak .

# bench-actors: Wasm vs native, call overhead, instantiation and migration
# blackout, side by side in one run, written to bench/results/actors.json.
bench-actors: actors
	cd actors && $(GO) test -count=1 -run 'TestBenchJSON' -timeout 30m -v -wio.benchjson=$(CURDIR)/bench/results/actors.json .

# bench-fuse: daxfs FUSE vs go-fuse loopback over tmpfs (with and without
# FUSE passthrough) vs kernel tmpfs, with fio (Debian: fio, fuse3), in one
# run; needs root. Results in bench/fuse/results/results.{json,md,png}.
# About 5 minutes on a 2-core machine.
.PHONY: bench-fuse fuse-soak
bench-fuse:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -o bin/daxfs ./cmd/daxfs
	CGO_ENABLED=0 $(GO) build -o bin/fuse-loopback ./bench/fuse/loopback
	$(GO) run ./bench/fuse -daxfs bin/daxfs -loopback bin/fuse-loopback -out bench/fuse/results

# fuse-soak: the fsx checker at 100,000 operations on one mount and split
# across two mounts (make test runs a few thousand); needs root.
fuse-soak:
	$(GO) test -count=1 -timeout 30m -run 'TestFsx' -v ./daxfs/fuse -fsx.ops=100000

# soak: the daxfs kill -9 test at 1,000 random kills (make test runs 100),
# and the model simulation under many seeds.
soak:
	cd daxfs && DAXFS_CRASH_TRIALS=1000 $(GO) test -count=1 -timeout 60m -run 'TestCrashKill9' -v .
	cd daxfs && for i in 1 2 3 4 5 6 7 8 9 10; do $(GO) test -count=1 -run 'TestSimulate' . || exit 1; done

# fuzz: each fuzz target of the shared-memory decoders for FUZZTIME.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeHeader -fuzztime $(FUZZTIME) ./cxl
	$(GO) test -run '^$$' -fuzz FuzzDecodeSuperblock -fuzztime $(FUZZTIME) ./daxfs
	$(GO) test -run '^$$' -fuzz FuzzRegion -fuzztime $(FUZZTIME) ./daxfs

# bench-pcache: the shared page cache (daxfs/pcache) — MH-clock hit ratios
# against exact LRU and CLOCK on zipf(0.9) and scan-mixed traces, the hit
# path in ns/op, 1 vs 2 processes on one cache. About 40 s on a 2-core
# machine; results in bench/pcache/results/results.{json,md}.
.PHONY: bench-pcache
bench-pcache:
	$(GO) run ./bench/pcache -out bench/pcache/results
