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

# Real-size runs (tens of minutes on 2 cores); results go to benchmarks/results/.
DATA ?= ../shared/data
# The weight-only recipe benchmarks/results/rd_kodak/ measured (2.5 minutes of training per file).
RD_FLAGS ?= --arch finer --tile-size 256 --depth 3 --lr 1e-3 --steps 1000000 --qat-steps 100 --time-budget 150
bench: setup
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/train_speed.py --size 256 --steps 8
	$(BIN)/python benchmarks/decode_memory.py $(DATA)/kodak
	$(BIN)/python benchmarks/time_to_quality.py $(DATA)/kodak --preset balanced --budget 300
	$(BIN)/python benchmarks/rd.py $(DATA)/kodak --curve "finer-tiles=$(RD_FLAGS)"

lint: setup
	$(BIN)/ruff check inrcodec tests benchmarks
	$(BIN)/ruff format --check inrcodec tests benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis
