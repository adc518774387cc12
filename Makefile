# Convenience targets; the README's commands are the reference.
.PHONY: test build build-duckdb demo bench temporal-dev chaos chaos-short chaos-tls chaos-short-tls
test:
	./scripts/test
# The version is the checkout's `git describe` (as the image's VERSION).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
build:
	go build -trimpath -ldflags="-X github.com/ferrydb/ferry/internal/cli.Version=$(VERSION)" -o bin/ferry ./cmd/ferry
# ferry with the DuckDB connector: cgo (gcc) and the duckdb build tag.
build-duckdb:
	CGO_ENABLED=1 go build -tags duckdb -trimpath -ldflags="-X github.com/ferrydb/ferry/internal/cli.Version=$(VERSION)" -o bin/ferry-duckdb ./cmd/ferry
demo:
	go run ./cmd/ferry sync 'fake://?tables=3&rows=200000' sqlite:///tmp/ferry-demo.db --mode snapshot --restart
	go run ./cmd/ferry verify 'fake://?tables=3&rows=200000' sqlite:///tmp/ferry-demo.db
bench:
	./bench/engine.sh
temporal-dev:
	./scripts/temporal-dev --headless
# The fault-injection suite at full length (10 s cuts, a 30 s destination
# outage, 100 MB values, larger tables); reports in $(CHAOS_OUT). The short
# version runs inside `make test`; `make chaos-short` runs it alone.
CHAOS_OUT ?= $(CURDIR)/chaos-report
chaos:
	FERRY_CHAOS=full FERRY_CHAOS_OUT=$(CHAOS_OUT) go test -count=1 -timeout 60m -v -run 'TestChaos|TestHostile' ./e2e
chaos-short:
	FERRY_CHAOS_OUT=$(CHAOS_OUT) go test -count=1 -timeout 20m -v -run 'TestChaos|TestHostile' ./e2e
# The same suites with every PostgreSQL and MariaDB server the tests start
# taking TLS, and every URL verifying it (sslmode=verify-full, ssl-ca) with a
# client certificate: FERRY_TEST_TLS=1 (see internal/testsupport/testpki).
chaos-tls:
	FERRY_TEST_TLS=1 FERRY_CHAOS=full FERRY_CHAOS_OUT=$(CHAOS_OUT) go test -count=1 -timeout 60m -v -run 'TestChaos|TestHostile' ./e2e
chaos-short-tls:
	FERRY_TEST_TLS=1 FERRY_CHAOS_OUT=$(CHAOS_OUT) go test -count=1 -timeout 20m -v -run 'TestChaos|TestHostile' ./e2e
