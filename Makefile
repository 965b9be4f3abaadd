# attackmap build. `make run` and `make test` are the two commands a newcomer
# needs (README.md); everything else is for development.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
DATA    ?= ./data

.PHONY: all build test lint run clean generate generate-check wasm static geoip drill \
	bench-relay bench-sensor bench-detect bench-delivery bench-app

all: build

## build: bin/attackmap-relay and bin/attackmap-sensor
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

## test: lint, then every test (eBPF and browser tests need root and chromium: see .ci/run)
test: lint
	$(GO) test -count=1 -timeout 30m ./...

## lint: gofmt, go vet, staticcheck (pinned as a module tool in go.mod)
lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## run: the whole thing on embedded defaults; map at http://localhost:8080/live
run: build
	./bin/attackmap-sensor run --data $(DATA) --serve :8080

clean:
	rm -rf bin
