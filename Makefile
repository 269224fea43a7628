# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := build/demo
DEMO_IMAGE := inrcodec/data/demo.png

.PHONY: setup demo test lint bench clean

$(BIN)/inrcodec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/inrcodec

demo: setup
	@mkdir -p $(DEMO_DIR)
	$(BIN)/inrcodec encode $(DEMO_IMAGE) -o $(DEMO_DIR)/demo.inr --preset demo --force
	$(BIN)/inrcodec decode $(DEMO_DIR)/demo.inr -o $(DEMO_DIR)/demo_x2.png --scale 2 --force
	$(BIN)/inrcodec eval $(DEMO_DIR)/demo.inr $(DEMO_IMAGE)
	@echo "2x decode written to $(DEMO_DIR)/demo_x2.png"

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check inrcodec tests benchmarks
	$(BIN)/ruff format --check inrcodec tests benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis
