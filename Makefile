# The two commands of the README's quick start:
#   make demo   set up .venv and run pixelsift on the bundled sample photos, offline (classify, detect)
#   make test   set up .venv with the test extras; ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
# Installed first, exactly: the releases the project is tested with (pip finds them on its CI machines).
TORCH  := torch==2.14.1 torchvision==0.29.1
export PIXELSIFT_DEMO_OUT ?= demo-output

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch-installed: | $(BIN)/python
	$(PIP) install $(TORCH)
	touch $@

$(VENV)/.demo-installed: pyproject.toml $(VENV)/.torch-installed
	$(PIP) install -e '.[demo]'
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.torch-installed
	$(PIP) install -e '.[test]'
	touch $@

demo: $(VENV)/.demo-installed
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift models --task classify
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift classify samples/
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift detect samples/astronaut.png --save $(PIXELSIFT_DEMO_OUT)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

bench: $(VENV)/.demo-installed
	$(BIN)/python benchmarks/bench_classify.py

clean:
	rm -rf $(VENV) $(PIXELSIFT_DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
