# The two commands of the README's quick start:
#   make demo   set up .venv and run pixelsift offline: classify and detect the bundled sample photos,
#               train a classifier on a generated data set, index the samples and search them
#   make test   set up .venv with the test extras; ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
# Installed first, exactly: the releases the project is tested with (pip finds them on its CI machines).
TORCH  := torch==2.14.1 torchvision==0.29.1
# Every other release, exactly as the suite last passed with it (pip constraints; `make lock` rewrites it).
LOCK   := requirements.lock
CONSTRAINTS ?= -c $(LOCK)
TEST_EXTRAS ?= test
export PIXELSIFT_DEMO_OUT ?= demo-output

.PHONY: demo test lint typecheck unit bench clean browser notebooks notebooks-docs lab lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch-installed: | $(BIN)/python
	$(PIP) install $(TORCH)
	touch $@

# One OpenCV package: ultralytics asks for opencv-python, pixelsift for opencv-python-headless, and both
# write the same cv2 module (whichever installed last wins). Keep headless, reinstalled whole.
define ONE_OPENCV
	@if $(PIP) show opencv-python >/dev/null 2>&1; then \
		echo "make: removing opencv-python (ultralytics asked for it; pixelsift keeps opencv-python-headless)"; \
		$(PIP) uninstall -y -q opencv-python && \
		$(PIP) install -q --no-deps --force-reinstall $(CONSTRAINTS) opencv-python-headless; \
	fi
endef

$(VENV)/.demo-installed: pyproject.toml $(LOCK) $(VENV)/.torch-installed
	$(PIP) install $(CONSTRAINTS) -e '.[demo]'
	$(ONE_OPENCV)
	touch $@

$(VENV)/.test-installed: pyproject.toml $(LOCK) $(VENV)/.torch-installed
	$(PIP) install $(CONSTRAINTS) -e '.[$(TEST_EXTRAS)]'
	$(ONE_OPENCV)
	touch $@

# Upgrade on purpose: the newest releases pyproject.toml admits, in a fresh .venv-lock, through the whole
# suite (with the notebooks extra too, so the lock pins every extra); requirements.lock is rewritten
# only when every check passed (then commit it).
lock:
	rm -rf .venv-lock
	$(MAKE) test VENV=.venv-lock CONSTRAINTS= TEST_EXTRAS=test,notebooks
	.venv-lock/bin/python tools/write_lock.py .venv-lock $(LOCK)
	rm -rf .venv-lock

demo: $(VENV)/.demo-installed
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift models --task classify
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift classify samples/
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift detect samples/astronaut.png --save $(PIXELSIFT_DEMO_OUT)
	$(BIN)/python -c "import pixelsift; pixelsift.make_shapes_dataset('$(PIXELSIFT_DEMO_OUT)/shapes')"
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift train $(PIXELSIFT_DEMO_OUT)/shapes -o $(PIXELSIFT_DEMO_OUT)/shapes.safetensors --force
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift index samples/ --db $(PIXELSIFT_DEMO_OUT)/library.db
	PIXELSIFT_OFFLINE=1 $(BIN)/pixelsift search "my photos of cat" --db $(PIXELSIFT_DEMO_OUT)/library.db

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/lint-imports

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

# The browser test drives Debian's chromium (no browser download); install it when we can.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -q chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium >/dev/null); \
	else echo "note: no chromium; the browser test needs it (Debian: sudo apt-get install chromium)"; fi

test: lint typecheck browser
	$(BIN)/python -m pytest

# The tutorial notebooks: notebooks/src/*.py are their sources (jupytext percent format).
notebooks: | $(BIN)/python
	$(BIN)/python tools/build_notebooks.py

$(VENV)/.notebooks-installed: pyproject.toml $(LOCK) $(VENV)/.torch-installed
	$(PIP) install $(CONSTRAINTS) -e '.[notebooks]'
	touch $@

# The notebooks run, with their figures, in docs/notebooks/ (to read them on the web without running).
notebooks-docs: $(VENV)/.test-installed
	$(BIN)/python tools/build_notebooks.py --render docs/notebooks

lab: $(VENV)/.notebooks-installed
	PIXELSIFT_OFFLINE=1 $(BIN)/jupyter lab notebooks/

bench: $(VENV)/.demo-installed
	$(BIN)/python benchmarks/bench_classify.py
	$(BIN)/python benchmarks/bench_library.py indexing
	$(BIN)/python benchmarks/bench_search.py

clean:
	rm -rf $(VENV) $(PIXELSIFT_DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
