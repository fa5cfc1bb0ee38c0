# Two commands on a fresh machine:
#   make demo   creates .venv from nothing, installs invlab and runs `invlab demo`
#   make test   runs the test suite (creating .venv first if needed)
#
# torch: by default the CPU build of torch==$(TORCH_VERSION), from PyTorch's CPU wheel index
# (on the public package index alone, torch==2.13.0 for Linux is the CUDA build, several GB).
# When that index cannot be reached (offline mirrors, firewalls) the install falls back, after
# a few seconds, to the same version from your configured index. A GPU machine picks its
# build, e.g.
#   make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
# or installs invlab into an environment that already has its torch (pip install -e .).
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC ?=
EXTRAS ?= dev,video,timeseries
BIN := $(VENV)/bin

.PHONY: demo test venv lint clean-venv

$(BIN)/invlab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so the open-ended torch requirement of invlab is already met
	# and pip never reaches for a multi-GB CUDA build.
	@if [ -n "$(TORCH_SPEC)" ]; then \
		echo "installing $(TORCH_SPEC)"; $(BIN)/python -m pip install --quiet $(TORCH_SPEC); \
	elif $(BIN)/python -m pip install --quiet --retries 0 --timeout 15 --index-url $(TORCH_CPU_INDEX) \
			"torch==$(TORCH_VERSION)"; then \
		echo "installed the CPU build of torch==$(TORCH_VERSION) from $(TORCH_CPU_INDEX)"; \
	else \
		echo "could not install torch from $(TORCH_CPU_INDEX) (unreachable?): installing torch==$(TORCH_VERSION) from the configured index"; \
		$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"; \
	fi
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
