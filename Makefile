# Convenience targets; the README's commands are the reference.
.PHONY: test build demo bench temporal-dev
test:
	./scripts/test
build:
	go build -o bin/ferry ./cmd/ferry
demo:
	go run ./cmd/ferry sync 'fake://?tables=3&rows=200000' sqlite:///tmp/ferry-demo.db --mode snapshot --restart
	go run ./cmd/ferry verify 'fake://?tables=3&rows=200000' sqlite:///tmp/ferry-demo.db
bench:
	./bench/engine.sh
temporal-dev:
	./scripts/temporal-dev --headless
