# berth: run `make demo` to see a sample stack, `make test` to run every test.
GO      ?= go
BIN     := bin/berth
PKGS    := ./...
# Integration tests run real containers and need root: under CI a skip is a
# failure (see runtime/image/imagetest.NeedRoot).
export BERTH_REQUIRE_ROOT ?= $(if $(CI),1,)

.PHONY: all build test unit lint demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/berth

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)

# Every tier: unit tests, the CLI's testscript files, and integration tests
# with real containers (as root).
test: lint
	$(GO) test -race -count=1 -timeout 12m $(PKGS)

# The shop sample, offline: build berth and the sample's image, bring the
# stack up, order through its published port (frontend -> api -> store by
# service name), then take it down. samples/hello runs the same way by hand.
demo: build
	samples/shop/demo.sh $(CURDIR)/$(BIN)

# Benchmarks, printed as a table.
bench: build
	BERTH_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -count 1 -timeout 20m ./runtime/... ./network/ ./tui/ ./cmd/berth/ | tee bin/bench.txt | $(GO) run ./cmd/benchtable

clean:
	rm -rf bin samples/*/images
