# dtrelay — see README.md. `make run` and `make test` are all a newcomer needs.
GO        ?= go
# The pinned toolchain (go1.26.10 fixes the standard-library CVEs of go1.26.8);
# machines start with GOTOOLCHAIN=local, so go.mod's toolchain line alone is not enough.
export GOTOOLCHAIN := go1.26.10
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 30s
BENCHTIME ?= 2s
PKGS      := ./...

.PHONY: all build run test test-race fuzz bench bench-e2e check vet fmt clean

all: build

build: ## build bin/dtrelay and bin/dtbench
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/dtrelay ./cmd/dtrelay
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/dtbench ./cmd/dtbench

run: build ## the relay on its embedded default: TCP+UDP 127.0.0.1:1514 -> stdout
	$(BIN)/dtrelay run

test: ## unit, golden, corpus, fuzz-seed and end-to-end tests (< 10 min)
	$(GO) test -count=1 -timeout 8m $(PKGS)

test-race: ## the tests under the race detector
	$(GO) test -count=1 -race -timeout 15m $(PKGS)

fuzz: ## every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	  done; done

bench: ## micro-benchmarks (ns/op, MB/s, allocs/op)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

bench-e2e: build ## standard dtbench scenarios vs rsyslog and syslog-ng (needs bench/install-peers.sh)
	$(BIN)/dtbench standard --out bench/results

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

check: ## gofmt, go vet and the tests
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet $(PKGS)
	$(MAKE) test

clean:
	rm -rf $(BIN)
