# SecureVision Events. Quick start: `make run`, `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/securevision
# Vision (gocv + Tesseract) is built in when OpenCV 4 is installed
# (`make deps`); without it the server builds and runs, and `make test`
# says which vision tests it could not run.
HAVE_OPENCV := $(shell pkg-config --exists opencv4 2>/dev/null && echo yes)
TAGS := $(if $(HAVE_OPENCV),-tags gocv,)
PKGS_NOVISION = $$($(GO) list ./... | grep -v /ingest/vision)

.PHONY: all build run test test-vision lint bench deps fuzz crash-test soak mini-soak clean

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

test: lint test-vision
	$(GO) test -race -timeout 15m $(PKGS_NOVISION)

test-vision:
ifeq ($(HAVE_OPENCV),yes)
	$(GO) test -tags gocv -timeout 15m ./ingest/vision/...
else
	@echo "NOTE: OpenCV 4 not found (pkg-config opencv4): vision tests NOT RUN:"
	@echo "      ingest/vision (face detection, recognition, plate OCR, video sources)."
	@echo "      Run 'make deps' (Debian, as root) to install OpenCV and Tesseract."
	$(GO) test ./ingest/vision/...
endif

bench:
	$(GO) run ./bench/cmd/benchall -out BENCHMARKS.md

# System packages: OpenCV + Tesseract for vision, Chromium for the docs
# browser test, Prometheus for the scrape test, wrk for HTTP load.
DEB_PKGS := pkg-config libopencv-dev opencv-data opencv-doc libtesseract-dev tesseract-ocr-eng \
	fonts-dejavu-core chromium prometheus wrk python3-requests python3-websockets
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps installs Debian packages: run it as root (sudo make deps)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS)
	@# The seed's JavaScript client (axios) for httpd's seed-client test.
	if command -v npm >/dev/null; then npm ci --prefix httpd/testdata/seed --no-audit --no-fund; \
	else echo "npm not found: the seed JavaScript client test will be skipped"; fi

clean:
	rm -rf bin
