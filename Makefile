# Two commands on a fresh machine:
#   make demo   creates .venv from nothing, installs invlab and runs `invlab demo`
#   make test   runs the test suite (creating .venv first if needed)
#
# TORCH_SPEC picks the torch build. The default is the CPU wheel; on a GPU machine use e.g.
#   make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
# or install invlab into an environment that already has your torch (pip install -e .).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,video,timeseries
BIN := $(VENV)/bin

.PHONY: demo test venv lint clean-venv

$(BIN)/invlab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so the open-ended torch requirement of invlab is already met
	# and pip never reaches for a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(BIN)/invlab

venv: $(BIN)/invlab

demo: venv
	$(BIN)/invlab demo

test: venv
	$(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)
