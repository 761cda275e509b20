# coldbench: the two commands a fresh machine needs are `make demo` and
# `make test` (see README.md). Run as root.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

.PHONY: demo test test-deps fuzz build node-up node-down unit bench-overhead

build:
	$(GO) build -o bin/coldbench ./cmd/coldbench

node-up:
	scripts/node-up.sh

node-down:
	scripts/node-down.sh

test-deps:
	scripts/test-deps.sh

# The main job on the embedded default: node backend, runc + crun, N = 1 and 4.
demo: node-up
	bin/coldbench run --platform node --runtimes runc,crun --scales 1,4 --iterations 6 --warmups 1

# Every test, integration tests included, against the real containerd.
test: node-up test-deps
	$(GO) vet ./...
	CI=$${CI:-true} $(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Bounded fuzzing of the two decoders of user input (experiment file, records).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 20s ./pkg/bench
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime 20s ./pkg/results

unit:
	$(GO) test -short ./...

bench-overhead: node-up
	$(GO) run ./bench/overhead -iterations 15
