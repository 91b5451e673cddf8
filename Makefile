# label-workbench: `make lab` opens the workbench, `make test` runs every test, `make demo` runs the
# quickstart headless. Each installs what it needs into .venv first (only when pyproject.toml changed).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
OUT    ?= build/demo

.PHONY: install browser postgres lab test demo lint typecheck bench docs-screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The pin takes the CPU build that lies on disk here, and the CUDA build on a GPU machine;
	# a bare `torch` would pull a multi-GB CUDA build onto CPU machines.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (label-workbench)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# The browser test drives Debian's Chromium (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs Debian's chromium: sudo apt-get install chromium"; fi; }

# The store tests also run on PostgreSQL: tests/conftest.py starts a throwaway server on 127.0.0.1
# from Debian's postgresql programs (or uses WORKBENCH_TEST_POSTGRES_URL when set).
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "the PostgreSQL store tests need Debian's postgresql: sudo apt-get install postgresql"; fi; }

# JupyterLab refuses to run as root unless told; containers often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: install
	HF_HUB_OFFLINE=1 $(BIN)/jupyter lab notebooks/00_quickstart.ipynb --port $(PORT) $(ROOT_FLAG)

test: install browser postgres
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m workbench.cli run-notebook 00_quickstart --out $(OUT)

lint: install
	$(BIN)/ruff check workbench widgets tests benchmarks
	$(BIN)/mypy

# Re-take the panel screenshots in docs/ from a real JupyterLab (the browser tests take them).
docs-screenshots: install browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/browser
	cp build/artifacts/panel-*.png docs/
	cp build/artifacts/panel-label-browser.png docs/label-browser.png

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/store_bench.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache
