# sluice: `make` prints this help.
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help build test testrace fuzz bench vet
help: ## show the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build ./sluice
	$(GO) build -o sluice ./cmd/sluice

test: ## run the whole test suite (unit and integration), with the race detector
	$(GO) vet ./...
	$(GO) test -race -timeout 15m ./...

fuzz: ## run every fuzz target for 30s each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s $$pkg || exit 1; \
	  done; done

bench: ## run the benchmarks under bench/ (prints BENCH lines)
	$(GO) run ./bench/ingest
	$(GO) run ./bench/nexmark -broker

vet: ## go vet
	$(GO) vet ./...
