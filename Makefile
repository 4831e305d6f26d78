# Two commands a new user needs (see README): `make demo` runs the main job, `make test` the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.facepipe-installed

.PHONY: setup demo test test-all bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: 2.13.0 is the local CPU build here; elsewhere fall back to PyTorch's CPU index.
	$(BIN)/python -m pip install -q torch==2.13.0 || \
		$(BIN)/python -m pip install -q "torch>=2.2,<2.15" --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/python -m pip install -q -e ".[dev,farm]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/facepipe demo --out facepipe-demo --force

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -p no:cacheprovider

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/io_speed.py ../shared/data/clips/lp_d0_grin.mp4 --json benchmarks/results/io_speed.json

clean:
	rm -rf $(VENV) facepipe-demo .pytest_cache
