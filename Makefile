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

# The hello sample, offline: build berth, build and import its two images,
# run it attached (logs of both services), then take it down.
demo: build
	samples/hello/images.sh $(CURDIR)/$(BIN)
	$(BIN) images
	cd samples/hello && $(CURDIR)/$(BIN) up
	cd samples/hello && $(CURDIR)/$(BIN) ps -a
	cd samples/hello && $(CURDIR)/$(BIN) down -v

# Benchmarks, printed as a table.
bench: build
	BERTH_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -count 1 -timeout 20m ./runtime/... ./cmd/berth/ | tee bin/bench.txt | $(GO) run ./cmd/benchtable

clean:
	rm -rf bin samples/*/images
