# Strangler's developer entry points. `make` or `make help` lists them.

SHELL := /bin/bash
GO ?= go
BIN := bin/strangler
DATA_DIR ?= .strangler
# The local Postgres that `make test` uses when STRANGLER_TEST_POSTGRES_DSN is
# not set and a server answers on 127.0.0.1:5432.
LOCAL_PG_DSN := postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TEST_FLAGS ?= -count=1 -timeout=15m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/strangler.
	$(GO) build -o $(BIN) ./cmd/strangler

.PHONY: run
run: build ## Start the whole system (strangler up) on embedded defaults.
	./$(BIN) up --data-dir $(DATA_DIR)

.PHONY: test
test: ## Run every test; says which suites it skipped and why.
	@./scripts/test-env.sh $(GO) test $(TEST_FLAGS) -json ./... | $(GO) run ./internal/tools/testreport

.PHONY: e2e
e2e: ## Run the executable guides in docs/guides: the shop's on `strangler up` (load: STRANGLER_GUIDE_RATE, default 250/s), Pressroom behind `strangler proxy`.
	@./scripts/test-env.sh $(GO) test $(TEST_FLAGS) -run 'TestGuides|TestGuideYourOwnMonolith|TestDeployGuide' -json ./docs/... | $(GO) run ./internal/tools/testreport

# The guides' load under stress: 250 requests/s beside a CPU-bound
# neighbour pinned to one core, then 500 requests/s on an idle machine, each
# on SQLite (TestGuides) and Postgres (TestGuidesPostgres).
.PHONY: e2e-stress
e2e-stress: ## Run the guides at 250 req/s beside a CPU hog and at 500 req/s, on SQLite and Postgres.
	@STRANGLER_GUIDE_RATE=250 STRANGLER_GUIDE_CPU_HOG=1 ./scripts/test-env.sh $(GO) test $(TEST_FLAGS) -run 'TestGuides' -json ./docs/... | $(GO) run ./internal/tools/testreport
	@STRANGLER_GUIDE_RATE=500 ./scripts/test-env.sh $(GO) test $(TEST_FLAGS) -run 'TestGuides' -json ./docs/... | $(GO) run ./internal/tools/testreport

.PHONY: chaos
chaos: ## Run the adversarial suite (TestChaos*) and print what each attack tried, expected and saw.
	@./scripts/test-env.sh $(GO) test $(TEST_FLAGS) -run 'Chaos' -v ./... 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|chaos (ok|FAILED|skipped)'; exit $${PIPESTATUS[0]}

.PHONY: bench
bench: build ## Measure the monolith, the proxy and the change-data relay (wrk + Go benchmarks).
	./bench/run.sh

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

.PHONY: docs
docs: ## Regenerate generated docs (docs/modules.md).
	$(GO) run ./monolith/internal/cmd/moddoc > docs/modules.md.tmp && mv docs/modules.md.tmp docs/modules.md

.PHONY: clean
clean: ## Remove build output and the local data dir.
	rm -rf bin $(DATA_DIR)
