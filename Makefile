# Two commands on a fresh clone: `make demo` and `make test`. Everything installs from constraints.txt.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-fast airflow clean

install: $(STAMP)

$(STAMP): constraints.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==26.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[postgres,celery,test]' apache-airflow==3.3.2
	rm -f $(VENV)/.installed-*
	touch $@

demo: install  ## serve the sample site and run news_ingest once through Airflow (airflow dags test)
	$(BIN)/python -m ingest.demo

test: install  ## the whole suite: unit, PostgreSQL and Airflow integration tests
	$(BIN)/python -m pytest

test-fast: install  ## everything but the slow Airflow tests
	$(BIN)/python -m pytest -m "not slow"

airflow: install  ## the Airflow UI (airflow standalone) with news_ingest against the sample site or $$INGEST_FEEDS_FILE
	$(BIN)/python -m ingest.demo --standalone

clean:
	rm -rf data/demo .pytest_cache
