# Stockroom. `make run` and `make test` are all a new machine needs; `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT ?= swift
CONFIGURATION ?= debug
PG_PORT ?= 54320
export STOCKROOM_PG_PORT := $(PG_PORT)
export DATABASE_URL ?= postgres://stockroom:stockroom@127.0.0.1:$(PG_PORT)/stockroom

BIN = .build/$(CONFIGURATION)/stockroom
EXAMPLES = Examples/LowStockAlert
VENV = .build/venv

.PHONY: help deps db db-stop db-reset psql build migrate demo-data run test test-examples test-faults test-ha pyclients bench bench-nio fuzz clean ha ha-stop ha-status ha-failover ha-kill-primary ha-serve

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install missing Debian packages (PostgreSQL, libpq, libsodium, redis-tools) as root
	@scripts/db.sh deps

db: ## Start the project-local PostgreSQL in .pg/ (127.0.0.1:54320, or PG_PORT=…)
	@scripts/db.sh start

db-stop: ## Stop the local PostgreSQL (data is kept)
	@scripts/db.sh stop

db-reset: ## Throw the local cluster away and start a fresh one
	@scripts/db.sh reset

psql: ## A psql shell on DATABASE_URL
	@scripts/db.sh psql

build: deps ## Build everything (warnings are errors)
	$(SWIFT) build -c $(CONFIGURATION)

migrate: db build ## Apply pending migrations to DATABASE_URL
	$(BIN) migrate up

demo-data: migrate ## A few demo products (skipped when their skus exist)
	@psql -X -q -v ON_ERROR_STOP=1 "$$DATABASE_URL" -f scripts/demo-data.sql

run: demo-data ## Start the database, migrate it, add demo products, serve on 127.0.0.1:7379
	$(BIN) serve

# Tests in flight at once. Unbounded, the suite ran about 300 tests at once on 2 cores,
# 455 database connections and as many threads: slower (50 s against 40 s at 24) and
# prone to stalls of seconds that broke timing bounds. Swift Testing's experimental
# knob; a toolchain without it runs them unbounded.
TEST_WIDTH ?= 24
# Suites that start PostgreSQL clusters of their own (initdb, pg_basebackup): seconds of
# both cores each. Run beside the rest, they stalled the machine long enough to break the
# timing bounds of other tests on a fresh clone; they run after them, on their own.
OWN_CLUSTER_TESTS = StandbyReadTests|PostgresTLSTests
# Tests that need the machine or the database to themselves. They run last, one at a time.
# - The login timing test compares two durations: beside 24 others on two cores, the
#   fastest of 21 logins of each kind came out 2.5 apart on a fresh clone, against
#   1.00-1.06 alone (three runs).
# - The numbering test counts the blocks a numbering run reads: another test's open
#   transaction in the same database keeps dead index entries alive, and numbering must
#   then read past them whatever its plan.
ALONE_TESTS = loginTakesAsLongForUnknownEmails|numberingABatchReadsAsMuchWhateverTheTableHolds

test: db pyclients ## The whole suite against the local PostgreSQL, then the example programs, the fault storm and the HA storm
	@scripts/check-imports.sh
	$(SWIFT) build --build-tests
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_WIDTH) $(SWIFT) test --skip-build --skip '$(OWN_CLUSTER_TESTS)|$(ALONE_TESTS)'
	$(SWIFT) test --skip-build --filter '$(OWN_CLUSTER_TESTS)'
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=1 $(SWIFT) test --skip-build --filter '$(ALONE_TESTS)'
	@scripts/test-cli-migrate.sh
	@$(MAKE) --no-print-directory test-examples
	@$(MAKE) --no-print-directory test-faults
	@$(MAKE) --no-print-directory test-ha

pyclients: deps ## redis-py and aiosmtpd in .build/venv, for the tests that drive the service and receive its mail
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/python -c 'import redis' 2>/dev/null || $(VENV)/bin/pip install --quiet 'redis>=5,<9'
	@$(VENV)/bin/python -c 'import aiosmtpd' 2>/dev/null || $(VENV)/bin/pip install --quiet 'aiosmtpd>=1.4,<2'

test-examples: db ## Build the programs under Examples/ and run them against a migrated test database
	@scripts/test-examples.sh $(EXAMPLES)

# The storm stops PostgreSQL, so it runs on a throwaway cluster of its own (.build/fault-pg,
# port FAULT_PG_PORT=54329), never on the shared one. --strict (the default) also fails on
# -INTERNAL replies and on requests left unanswered while the database hangs.
FAULT_FLAGS ?= --strict

test-faults: pyclients ## Kill the service, then crash PostgreSQL, mid-storm of orders: none lost or doubled, every webhook delivered
	@scripts/test-faults.sh $(FAULT_FLAGS)

# A replicated PostgreSQL (pg_auto_failover): a monitor on HA_PORT, nodes on HA_PORT+1…,
# data in .ha/ (scripts/ha.sh; docs/SCALING.md).
HA_PORT ?= 54340
HA_NODES ?= 2
export HA_PORT HA_NODES

ha: ## A monitor, a primary and HA_NODES-1 synchronous standbys (127.0.0.1:54340…); prints the DATABASE_URL
	@scripts/ha.sh start

ha-stop: ## Stop the HA cluster (data is kept in .ha/)
	@scripts/ha.sh stop

ha-status: ## The monitor's view of the HA nodes, their replication settings, and the DATABASE_URL
	@scripts/ha.sh status

ha-failover: ## A planned switchover: the primary becomes a standby and a standby the primary
	@scripts/ha.sh failover

ha-kill-primary: ## The primary's host dies (pg_autoctl SIGKILLed, PostgreSQL stopped -m immediate); make ha brings it back
	@scripts/ha.sh kill-primary

HA_SERVE_INSTANCES ?= 3
HA_SERVE_FLAGS ?=
ha-serve: build pyclients ## HA_SERVE_INSTANCES (3) instances over make ha's cluster behind HAProxy on 127.0.0.1:7400, until Ctrl-C
	@$(VENV)/bin/python scripts/ha-serve.py --stockroom $(BIN) --database-url "$$(scripts/ha.sh url)" --migrations migrations \
		--state .ha/serve --instances $(HA_SERVE_INSTANCES) $(HA_SERVE_FLAGS)

# A cluster of its own (.build/test-ha, monitor on HA_TEST_PORT=54350 and nodes above it),
# never make ha's. --strict: -INTERNAL replies fail the test.
HA_TEST_FLAGS ?= --strict

test-ha: pyclients ## Three instances behind HAProxy over pg_auto_failover: migrate at once, SIGTERM one, kill the primary, switch over, mid-storm
	@scripts/test-ha.sh $(HA_TEST_FLAGS)

clean: ## Remove build products (not the database)
	rm -rf .build .build-* Benchmarks/.build Fuzz/.build $(addsuffix /.build,$(EXAMPLES))

bench: db ## Stockroom against pgbench (direct and through PgBouncer) and redis-server in one run (release build; three rounds, about 15 minutes)
	@scripts/bench.sh deps
	$(SWIFT) build -c release --product stockroom
	@scripts/bench.sh

bench-nio: db ## make bench with PostgresNIO in the wrapper comparison (builds Benchmarks/, about 8 more minutes the first time)
	$(SWIFT) build -c release --package-path Benchmarks --product PostgresNIOPointQuery
	@$(MAKE) --no-print-directory bench

FUZZ_SECONDS ?= 60
FUZZ_TARGETS = RequestParser InlineArguments JSON MigrationLexer

fuzz: deps ## libFuzzer on each parser for FUZZ_SECONDS (60) each; new inputs in .build/fuzz/, crashes in Tests/Fuzz/Crashes/
	@mkdir -p Tests/Fuzz/Crashes
	@for target in $(FUZZ_TARGETS); do \
	  $(SWIFT) build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address --product Fuzz$$target 2>&1 | grep -v 'Cannot export local symbol' | grep -E 'error|warning: .*swift' ; \
	  mkdir -p .build/fuzz/$$target; \
	  echo "fuzz: $$target for $(FUZZ_SECONDS) s"; \
	  Fuzz/.build/release/Fuzz$$target -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=Tests/Fuzz/Crashes/$$target- .build/fuzz/$$target Tests/Fuzz/Corpus/$$target \
	    $$(test $$target = MigrationLexer && echo migrations) 2>&1 | grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|.*invariant broken|.*Test unit written)' || exit 1; \
	done
	@echo "fuzz: no crash. Keep a new input as a regression test by copying it to Tests/Fuzz/Corpus/<target>/; a crash is saved in Tests/Fuzz/Crashes/"
