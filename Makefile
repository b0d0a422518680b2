# evosweep: two commands on a fresh Debian machine -- `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
PYTEST_ARGS ?=
# Test processes: most of the suite's time is spent waiting (Slurm jobs, slow-fit helpers,
# processes starting), so two share this machine's cores; a file's tests stay in one process,
# which runs its module fixtures (whole pipelines) once.
TEST_WORKERS ?= 2
# Another config file for run/report/scaling (e.g. `make run CONFIG=my.yaml`); empty: the
# Snakefile's config/config.yaml.
CONFIG ?=
CONFIG_ARGS := $(if $(CONFIG), --configfile $(CONFIG))

.PHONY: run test lint format bench report scaling lock clean-results help

help:
	@echo "make run     - set up .venv and run the default pipeline (snakemake --cores all)"
	@echo "make test    - set up .venv and run every test"
	@echo "make lint    - snakemake --lint, snakefmt --check, ruff"
	@echo "make format  - snakefmt and ruff format"
	@echo "make bench   - speed benchmarks (ratios measured side by side)"
	@echo "make report  - build results/report.html"
	@echo "make scaling - the scaling study (results/scaling/)"

# The virtual environment is rebuilt whenever the pins change.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The report is rebuilt only when a result is newer, so a second `make run` does nothing. It is
# written under another name and renamed, so a killed run never leaves a truncated report.html
# that looks up to date.
REPORT_IF_STALE = if [ ! -f results/report.html ] || \
	[ -n "$$(find results -type f -newer results/report.html ! -name report.html | head -n1)" ]; \
	then $(BIN)/snakemake --report results/.report.partial.html$(CONFIG_ARGS) && \
	mv -f results/.report.partial.html results/report.html; \
	else echo "results/report.html is up to date"; fi

# After a `kill -9` Snakemake's lock stays; it is removed only when no Snakemake process runs
# in this directory. Unfinished outputs are rerun (rerun-incomplete in profiles/default).
UNLOCK_IF_STALE = $(BIN)/python -m evosweep.runtime.stalelock$(CONFIG_ARGS)

run: $(STAMP)
	@$(UNLOCK_IF_STALE)
	$(BIN)/snakemake --cores $(CORES)$(CONFIG_ARGS)
	@$(REPORT_IF_STALE)
	@$(BIN)/python -m evosweep.finish

# The 16-node cluster's tests (64 engines, 32 SCOOP workers) load the whole machine: they run
# after the others, alone, with that cluster's variables (tests/slurm/wide.env); the cluster
# fixture starts it as it starts the 3-node one. With PYTEST_ARGS only the tests it names run.
WIDE_TESTS := tests/test_slurm_wide.py

test: $(STAMP)
ifeq ($(strip $(PYTEST_ARGS)),)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --ignore=$(WIDE_TESTS)
	set -a && . tests/slurm/wide.env && set +a && $(BIN)/python -m pytest $(WIDE_TESTS)
else
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
endif

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/snakefmt .
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/search.py
	$(BIN)/python bench/evolve.py
	$(BIN)/python bench/dryrun.py

report: $(STAMP)
	@$(UNLOCK_IF_STALE)
	$(BIN)/snakemake --cores $(CORES)$(CONFIG_ARGS)
	@$(REPORT_IF_STALE)
	@echo "Report: $(CURDIR)/results/report.html"

scaling: $(STAMP)
	@$(UNLOCK_IF_STALE)
	$(BIN)/snakemake --cores $(CORES) scaling$(CONFIG_ARGS)

# Re-pin the whole tree from pyproject.toml (run after changing a pin there).
lock:
	rm -rf /tmp/evosweep-lock && $(PYTHON) -m venv /tmp/evosweep-lock
	/tmp/evosweep-lock/bin/pip install --quiet -e '.[dev]'
	( echo "# Full pinned dependency tree (pip freeze of a fresh install of pyproject.toml [dev])."; \
	  echo "# Regenerate with: make lock"; \
	  /tmp/evosweep-lock/bin/pip freeze --exclude-editable | grep -v '^-e' ) > requirements.lock

clean-results:
	rm -rf results logs benchmarks
