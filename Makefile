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

.PHONY: all build run test test-race test-poller-long fuzz bench bench-e2e check vet vuln fmt clean package install-test

all: build

build: ## build bin/dtrelay and bin/dtbench
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/dtrelay ./cmd/dtrelay
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/dtbench ./cmd/dtbench

# stdout carries the alerts only: the build's command lines go to stderr.
run: ## the relay on its embedded default: TCP+UDP 127.0.0.1:1514 -> stdout
	@$(MAKE) --no-print-directory build >&2
	@exec $(BIN)/dtrelay run

test: ## unit, golden, corpus, fuzz-seed and end-to-end tests (< 10 min)
	$(GO) test -count=1 -timeout 8m $(PKGS)

test-poller-long: ## issue 13 at full length: 20 s/30 s output outages, 300k breaches in one window
	$(GO) test -count=1 -timeout 10m -run 'TestOutputRefusalLosesNothing|TestDeadOutputDoesNotStallOthers' ./poller/ -args -poller.long
	$(GO) test -count=1 -timeout 10m -run TestPollerBurstOnce -v ./cmd/dtrelay/ -args -poller.burst=300000

test-race: ## the tests under the race detector
	$(GO) test -count=1 -race -timeout 15m $(PKGS)

fuzz: ## every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	  done; done

bench: ## micro-benchmarks (ns/op, MB/s, allocs/op)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

bench-e2e: build ## dtbench standard: issue 16's eight cells, dtrelay vs the best peer (needs bench/install-peers.sh)
	$(BIN)/dtbench standard --out bench/results

vet:
	$(GO) vet $(PKGS)

# Packages: nfpm (a Go tool pinned in deploy/tools.mod, apart from the
# relay's own go.mod) builds the .deb and the .rpm from deploy/nfpm.yaml.
# The version: a v-tag as 1.2.0 (1.2.0+3.gSHA past it), else 0.0.0~gitDATE.SHA.
DIST        := dist
NFPM        := $(GO) tool -modfile=deploy/tools.mod nfpm
ARCH        ?= $(shell $(GO) env GOARCH)
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$${v\#v}" | sed 's/-\([0-9]*\)-g/+\1.g/' || \
	echo "0.0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null).$$(git rev-parse --short HEAD 2>/dev/null || echo dev)")

package: ## dist/dtrelay_*.deb and dist/dtrelay-*.rpm (see deploy/)
	rm -rf $(DIST) && mkdir -p $(DIST)
	CGO_ENABLED=0 GOARCH=$(ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/dtrelay ./cmd/dtrelay
	for p in deb rpm; do \
	  ARCH=$(ARCH) PKG_VERSION='$(PKG_VERSION)' $(NFPM) package --config deploy/nfpm.yaml --packager $$p --target $(DIST)/ || exit 1; \
	done
	@ls -l $(DIST)/*.deb $(DIST)/*.rpm

install-test: ## as root on Debian: install the .deb, run it as the dtrelay user, purge it (deploy/ci-install-test.sh)
	bash deploy/ci-install-test.sh

# govulncheck against an offline vulnerability database: the online one is not
# reachable here, so the database is built from the golang.org/x/vulndb module's
# data/osv with its own cmd/indexdb (pinned, so the verdict is reproducible;
# bump VULNDB to take newer advisories). Exits non-zero on a reachable finding.
GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB      ?= v0.0.0-20261105234957-e22db6528018
VULNDB_DIR  ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dtrelay/vulndb-$(VULNDB)

vuln: $(VULNDB_DIR)/index/db.json ## govulncheck with an offline database (exit 1 on a reachable finding)
	$(GO) run $(GOVULNCHECK) -db file://$(VULNDB_DIR) $(PKGS)

$(VULNDB_DIR)/index/db.json:
	@osv=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -d "$$osv/data/osv" || { echo "cannot find data/osv in golang.org/x/vulndb@$(VULNDB)"; exit 1; }; \
	  rm -rf $(VULNDB_DIR).tmp && \
	  $(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB) -vulns "$$osv/data/osv" -out $(VULNDB_DIR).tmp && \
	  rm -rf $(VULNDB_DIR) && mv $(VULNDB_DIR).tmp $(VULNDB_DIR)

fmt:
	gofmt -w $$(git ls-files '*.go')

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

check: ## gofmt, go vet, staticcheck and the tests
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	$(MAKE) test

clean:
	rm -rf $(BIN) $(DIST)
