# berth: run `make demo` to see a sample stack, `make test` to run every test.
GO      ?= go
BIN     := bin/berth
PKGS    := ./...
# Integration tests run real containers and need root: under CI a skip is a
# failure (see runtime/image/imagetest.NeedRoot).
export BERTH_REQUIRE_ROOT ?= $(if $(CI),1,)

.PHONY: all build test unit lint fuzz demo bench clean

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
	$(MAKE) fuzz

# Native fuzz targets over what reads untrusted bytes (image layers and
# archives, seccomp profiles, log and state files): each runs its checked-in
# seeds, then FUZZTIME of new inputs. Go fuzzes one target per run.
FUZZ := ./runtime/seccomp:FuzzLoadProfile ./runtime:FuzzReadLogs ./runtime:FuzzReadState \
	./runtime/image:FuzzUnpack ./runtime/image:FuzzLoadArchive
FUZZTIME ?= 10s
fuzz:
	@for f in $(FUZZ); do \
		pkg=$${f%%:*}; name=$${f##*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

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
