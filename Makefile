# CrossPoint Explorer: `make run` opens the explorer on the embedded demo, `make test` runs the suite.
# Both set everything up first: system libraries (apt-get, when root and missing), the virtual
# environment in .venv and the package (editable, with its test extra).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k io -x"`.
PYTEST_ARGS ?=

.PHONY: setup system-deps run test bench screenshots clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -e '.[test]'
	@touch $(STAMP)

run: setup
	@bash scripts/run-explorer.sh

test: setup
	@bash scripts/with-display.sh $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	@bash scripts/with-display.sh bash benchmarks/run_all.sh

screenshots: setup
	@bash scripts/with-display.sh $(PY) -m explorer.screenshots docs/images

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
