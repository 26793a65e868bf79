# The two commands of the README:
#   make course   set up, run every lesson headless in quick mode, print the results table
#   make test     set up, run the whole test suite (unit, lessons via papermill + nbval, browser)
SHELL := /bin/bash
PY := .venv/bin/python
DATA := $(shell [ -d ../shared/datasets ] && cd ../shared/datasets && pwd)
export TLLAB_DATA ?= $(DATA)

.PHONY: setup course test unit lessons browser benchmark lab strip

setup:
	@bash scripts/setup.sh >/dev/null

course: setup
	$(PY) -m tlwidgets.course --quick

test: setup
	@if [ -x /usr/bin/chromium ] || [ "$$(id -u)" = 0 ]; then bash scripts/install_browser.sh || echo "browser tests will skip"; fi
	$(PY) -m pytest tests -v --durations=15

unit: setup
	$(PY) -m pytest tests/unit -q

lessons: setup
	$(PY) -m pytest tests/notebooks -v

browser: setup
	$(PY) -m pytest tests/browser -v

benchmark: setup
	$(PY) scripts/benchmark.py

lab: setup
	$(PY) -m jupyter lab lessons/

strip: setup
	$(PY) -m nbstripout --keep-output lessons/*.ipynb lessons/solutions/*.ipynb
