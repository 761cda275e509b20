# coldbench: the two commands a fresh machine needs are `make demo` and
# `make test` (see README.md). Run as root.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

.PHONY: demo test test-deps fuzz build node-up node-down unit bench-overhead lab-build lab-up lab-down lab-status

# Version and commit stamped into the binary (bench.Tool(): every results
# header, --version); scripts/node-up.sh stamps the same way.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/coldbench/coldbench/pkg/bench.Version=$(VERSION) -X github.com/coldbench/coldbench/pkg/bench.Commit=$(COMMIT)

# Static and -trimpath, like scripts/node-up.sh: the compiled packages are one
# cache entry for both (only the link, which carries -X, differs per commit).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/coldbench ./cmd/coldbench

node-up:
	scripts/node-up.sh

node-down:
	scripts/node-down.sh

test-deps:
	scripts/test-deps.sh

# The main job on the embedded default: node backend, runc + crun + gVisor
# (runsc), N = 1 and 4.
demo: node-up
	bin/coldbench run --platform node --runtimes runc,crun,runsc --scales 1,4 --iterations 6 --warmups 1

# Every test, integration tests included, against the real containerd, and
# the e2e tests (test/e2e) against the lab, brought up first when it is not
# (built first when needed: ~30-45 min once, then cached). -timeout 80m: the
# e2e package alone took 49.5 min in CI on this 2-core machine (a real step
# of N = 100 on the lab and the node agent's tests included), and up to a
# third more when the machine is loaded. gotestsum (a tool of go.mod) prints
# one line per package and the output of failed tests only, keeps every
# event in results/test.json, and the tests slower than 60 s are listed at
# the end: where CI's time goes.
test: node-up test-deps
	$(GO) vet ./...
	lab/status.sh >/dev/null 2>&1 || { lab/build.sh && lab/up.sh; }
	mkdir -p results
	rc=0; CI=$${CI:-true} $(GO) tool gotestsum --format pkgname-and-test-fails --jsonfile results/test.json \
		-- -race -count=1 -timeout 80m ./... || rc=$$?; \
	echo "tests slower than 60 s (from results/test.json):"; \
	$(GO) tool gotestsum tool slowest --jsonfile results/test.json --threshold 60s; \
	exit $$rc
	$(MAKE) fuzz

# Bounded fuzzing of the decoders of user input (experiment file, records)
# and of the CLI's list flags (--scales, --runtimes, ...). Budgets are counts
# of executions, not durations: with a duration, Go's fuzz coordinator (before
# Go 1.27, golang/go#75804) can report "context deadline exceeded" as a
# failure when a starved worker misses the deadline, which a loaded machine
# does (seen in CI). The counts are about what the durations used to reach at
# this machine's rates under load (a few thousand per second; FuzzRead ~17k).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 50000x ./pkg/bench
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime 300000x ./pkg/results
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime 40000x ./pkg/results
	$(GO) test -run '^$$' -fuzz '^FuzzIntList$$' -fuzztime 20000x ./internal/cli
	$(GO) test -run '^$$' -fuzz '^FuzzNameList$$' -fuzztime 20000x ./internal/cli

unit:
	$(GO) test -short ./...

bench-overhead: node-up
	$(GO) run ./bench/overhead -iterations 15

# The lab (lab/): single-node Kubernetes + Knative Serving + CoreDNS + Traefik,
# built from the Go module proxy into /var/cache/coldbench/lab (override with
# COLDBENCH_LAB_CACHE). First build ~30 min, then cached.
lab-build:
	lab/build.sh

# Build (when needed) and bring up, then the total time of both.
lab-up:
	@t0=$$(date +%s); lab/build.sh && lab/up.sh && echo "lab build + up: $$(( $$(date +%s) - t0 )) s"

lab-down:
	lab/down.sh

lab-status:
	lab/status.sh
