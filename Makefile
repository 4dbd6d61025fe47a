# SecureVision Events. Quick start: `make run`, `make test`.
SHELL := /bin/bash
GO    ?= go
# go.mod names the toolchain (go1.26.10: go1.26.8 has 13 known standard
# library vulnerabilities, net/http among them, that govulncheck reports).
# This machine's Go defaults to GOTOOLCHAIN=local, which ignores that line;
# auto fetches it from the module proxy once, or keeps a newer local Go.
export GOTOOLCHAIN := auto
BIN   := bin/securevision
# Vision (gocv + Tesseract) is built in when OpenCV 4 is installed
# (`make deps`); without it the server builds and runs, and `make test`
# says which vision tests it could not run.
HAVE_OPENCV := $(shell pkg-config --exists opencv4 2>/dev/null && echo yes)
TAGS := $(if $(HAVE_OPENCV),-tags gocv,)
PKGS_NOVISION = $$($(GO) list ./... | grep -v /ingest/vision)

.PHONY: all build run test test-all test-deps test-vision lint bench deps fuzz crash-test soak mini-soak lint-extra vulndb clean cluster-demo

all: build

build:
	$(GO) build $(TAGS) -o $(BIN) ./cmd/securevision

# Serves the embedded store at ./data/events on 127.0.0.1:8000.
run: build
	SECUREVISION__EVENTS__DB_URL=$${SECUREVISION__EVENTS__DB_URL:-pebble://data/events} ./$(BIN) serve

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(if $(HAVE_OPENCV),$(GO) vet -tags gocv ./ingest/vision/... ./cmd/...,)

# make test first installs what the tests use when it is missing (see
# test-deps), then runs them in a new make, which sees OpenCV if it was
# just installed.
test: test-deps
	@$(MAKE) --no-print-directory test-all

test-all: lint test-vision
	$(GO) test -race -timeout 15m $(PKGS_NOVISION)

test-vision:
ifeq ($(HAVE_OPENCV),yes)
	$(GO) test -tags gocv -timeout 15m ./ingest/vision/... ./cmd/securevision/
else
	@echo "NOTE: OpenCV 4 not found (pkg-config opencv4): vision tests NOT RUN:"
	@echo "      ingest/vision (face detection, recognition, plate OCR, video sources)."
	@echo "      Run 'make deps' (Debian, as root) to install OpenCV and Tesseract."
	$(GO) test ./ingest/vision/...
endif

bench:
	$(GO) run ./bench/cmd/benchall -out BENCHMARKS.md

# System packages: OpenCV + Tesseract for vision, Chromium for the docs and
# dashboard browser tests, Prometheus for the scrape test, wrk for HTTP load,
# Mosquitto (and its command-line clients) for the MQTT tests.
DEB_PKGS := pkg-config libopencv-dev opencv-data opencv-doc libtesseract-dev tesseract-ocr-eng \
	fonts-dejavu-core chromium prometheus wrk python3-requests python3-websockets \
	mosquitto mosquitto-clients
# test-deps runs deps when a package of DEB_PKGS (or axios, which the
# original service's JavaScript client in httpd/testdata/seed needs) is
# missing and it can (root, apt-get); otherwise it says which tests will
# skip, and why, and goes on.
test-deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done | tr '\n' ' '); \
	if [ ! -d httpd/testdata/seed/node_modules/axios ] && command -v npm >/dev/null; then missing="$$missing(npm: axios)"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make test: installing what the tests use: $$missing"; $(MAKE) --no-print-directory deps; \
	else \
	  echo "NOTE: missing: $$missing"; \
	  echo "      make test cannot install them (it needs root and apt-get: run 'sudo make deps')."; \
	  echo "      Tests that need them are SKIPPED and say so: vision (OpenCV, Tesseract), browser (chromium),"; \
	  echo "      Prometheus scrape (prometheus), load (wrk), seed clients (python3-requests, python3-websockets, axios)."; \
	fi

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps installs Debian packages: run it as root (sudo make deps)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS)
	@# nats-server on the PATH, for running a cluster by hand (make cluster-demo and the tests build their own from the version go.mod pins).
	$(GO) install github.com/nats-io/nats-server/v2@v2.15.2
	@# axios, for the original service's JavaScript client (httpd's seed-client test).
	if command -v npm >/dev/null; then npm ci --prefix httpd/testdata/seed --no-audit --no-fund; \
	else echo "npm not found: the seed JavaScript client test will be skipped"; fi

# Fuzz every decoder of outside input for FUZZTIME each (go test -fuzz
# takes one target at a time). Seeds live in testdata/fuzz/<Target>/.
FUZZTIME ?= 30s
FUZZ_TARGETS := ./ingest:FuzzDecode ./httpd:FuzzParseEventsQuery ./httpd:FuzzRedactQuery \
	./cmd/securevision:FuzzLoadConfig ./cmd/securevision:FuzzLoadConfigMore ./cmd/securevision:FuzzLoadConfigBackup \
	./cmd/securevision:FuzzRoundTrip ./wsfanout:FuzzClientMessage ./wsfanout:FuzzFrameHeader \
	./internal/mqtt:FuzzEscapeID ./projections/platesearch:FuzzSearch ./internal/webhook:FuzzCreateBody \
	./httpd:FuzzCorrectionBody ./httpd:FuzzWatchlistPut ./httpd:FuzzSearchQuery \
	./httpd:FuzzGalleryFromEvent ./httpd:FuzzCropRect \
	./internal/cluster:FuzzDecodeMessage
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "== $$fn ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel 2; done

# kill -9 harness against the real binary (reliability/crash_test.go).
crash-test:
	SV_CRASH=1 $(GO) test -count=1 -timeout 10m -v -run '^TestCrash$$' ./reliability

# Mixed load against the real binary; writes CSV, PNG and a markdown
# summary under reliability/out/ (reliability/cmd/soak).
SOAK_OUT ?= reliability/out
soak:
	$(GO) run ./reliability/cmd/soak -duration 10m -out $(SOAK_OUT)/soak
mini-soak:
	$(GO) run ./reliability/cmd/soak -duration 60s -out $(SOAK_OUT)/mini-soak

# staticcheck and govulncheck (installed into GOPATH/bin). With OpenCV the
# vision files (gocv tag) are checked too. govulncheck reads a local copy
# of the Go vulnerability database (see vulndb).
GOBIN_DIR = $$($(GO) env GOPATH)/bin
lint-extra: vulndb
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(GO) install golang.org/x/vuln/cmd/govulncheck@v1.9.0
	$(GOBIN_DIR)/staticcheck $(TAGS) ./...
	$(GOBIN_DIR)/govulncheck -db file://$(VULNDB) $(TAGS) ./...

# vuln.go.dev cannot be reached here, but the database's source module,
# golang.org/x/vulndb (its OSV files), is served by the Go module proxy,
# and its own indexdb command builds the v1 database govulncheck reads.
# Rebuilt when older than a day (VULNDB_MAX_AGE_MIN).
VULNDB ?= $(HOME)/.cache/securevision/vulndb
VULNDB_MAX_AGE_MIN ?= 1440
vulndb:
	@set -e; if [ -f $(VULNDB)/index/db.json ] && [ -z "$$(find $(VULNDB)/index/db.json -mmin +$(VULNDB_MAX_AGE_MIN))" ]; then \
	  echo "vulndb: $(VULNDB) is fresh"; exit 0; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; cd $$tmp; \
	printf 'module vulndbfetch\ngo 1.26\n' > go.mod; \
	dir=$$($(GO) mod download -json golang.org/x/vulndb@latest | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	echo "vulndb: building $(VULNDB) from $$dir"; \
	cp -r "$$dir" src; chmod -R u+w src; cd src; \
	rm -rf $(VULNDB).new; $(GO) run ./cmd/indexdb -vulns data/osv -out $(VULNDB).new; \
	rm -rf $(VULNDB); mv $(VULNDB).new $(VULNDB)

clean:
	rm -rf bin

# Cluster mode on one machine: three nats-server processes (JetStream,
# R3) and two API nodes on 8001 and 8002 (reliability/cluster-demo.sh).
# nats-server is built from the version go.mod pins (its tool directive).
cluster-demo: build
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2
	NATS_SERVER=bin/nats-server ./reliability/cluster-demo.sh
