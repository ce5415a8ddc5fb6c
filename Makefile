# Two commands on a fresh machine: `make run` (build and start the proxy with
# the example config) and `make test` (every test). Both install the system
# packages the build needs (libczmq-dev) through scripts/deps.sh.
GO      ?= go
BIN     := bin
PKGS    := ./...
FUZZTIME ?= 30s
CONFIG  ?= configs/pushpin.conf

.PHONY: all deps deps-pushpin build run test test-unit test-e2e fuzz bench bench-full bench-go vet lint fmt clean

all: build

deps:
	@scripts/deps.sh

# The interop tests and side-by-side benchmarks need Debian's pushpin 1.36.
deps-pushpin:
	@scripts/deps.sh --pushpin

build: deps
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/pushpin --config=$(CONFIG) --merge-output

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# golangci-lint (.golangci.yml), pinned here and installed into bin/tools;
# reinstalled when the pin or the Go toolchain changes (a linter built with
# an older Go refuses a newer go.mod).
LINT_VERSION := v2.15.0
LINT := $(BIN)/tools/golangci-lint
lint: deps
	@$(LINT) version 2>/dev/null | grep -q "version $(LINT_VERSION:v%=%) built with $$($(GO) env GOVERSION) " || \
	  { echo "installing golangci-lint $(LINT_VERSION) into $(BIN)/tools"; \
	    GOBIN=$(CURDIR)/$(BIN)/tools $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VERSION); }
	$(LINT) run $(PKGS)

# Unit tests (with fuzz seed corpora) and the e2e tests against bin/, all with -race.
test: deps-pushpin build vet lint
	E2E_NO_BUILD=1 $(GO) test -race -count=1 -timeout 20m $(PKGS)

test-unit: deps
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /runner/e2e)

test-e2e: deps-pushpin build
	E2E_NO_BUILD=1 $(GO) test -race -count=1 -v ./runner/e2e/

# Run every fuzz target for FUZZTIME each.
fuzz: deps
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run=XXX -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Side-by-side load benchmark against Pushpin 1.36 (scripts/bench/README.md):
# `make bench` is the quick run (2,000 subscribers, WebSocket scenarios
# included, ~3-4 min), `make bench-full` the issues' figures (10,000 and
# 19,500 fan-out, 10,000 WebSocket sessions, 100,000 held, ~15 min).
# Extra flags go last and win, e.g. make bench BENCHFLAGS="-target=ours".
BENCHFLAGS ?=
BENCH_QUICK := -subs=2000 -msgs=20 -duration=3s
BENCH_FULL  := -scenarios=passthrough,connect,memory,fanout,channels,ws-open,ws-memory,ws-rate,scale,floor -subs=10000 -msgs=10 \
	-fanout=stream:10000,sse:10000,ws:10000,stream:19500 -scale=100000 -scale-msgs=3 -duration=5s
bench: deps-pushpin build
	$(GO) run ./scripts/bench $(BENCH_QUICK) $(BENCHFLAGS)

bench-full: deps-pushpin build
	$(GO) run ./scripts/bench $(BENCH_FULL) $(BENCHFLAGS)

# The Go micro-benchmarks (tnetstring, zhttp, zmq, fan-out, ...).
bench-go: deps
	$(GO) test -run=XXX -bench=. -benchmem $$($(GO) list ./... | grep -v /runner/e2e)

clean:
	rm -rf $(BIN)
