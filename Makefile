# The two commands of the README:
#   make course   set up, run every lesson headless in quick mode, print the results table
#   make test     set up, run the whole test suite (lint as tests/test_lint.py, unit, lessons via papermill + nbval,
#                 browser)
SHELL := /bin/bash
PY := .venv/bin/python
DATA := $(shell [ -d ../shared/datasets ] && cd ../shared/datasets && pwd)
export TLLAB_DATA ?= $(DATA)
# nbval executes every notebook under lessons/ and compares the cells marked # NBVAL_CHECK_OUTPUT
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	--nbval-sanitize-with tests/notebooks/nbval_sanitize.cfg --ignore-glob='tests/browser/notebooks/*'

# make test runs on up to 4 cores: pytest-xdist workers take one test file or notebook at a time (--dist loadfile:
# a notebook's cells run in order in one kernel); torch in each worker and its kernels gets cores / workers threads.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$((n < 4 ? n : 4)))  # each lesson kernel peaks at ~1.6 GB
TEST_THREADS ?= $(shell w=$(TEST_WORKERS); n=$$(nproc); [ "$$w" -gt 0 ] 2>/dev/null && t=$$((n / w)) || t=$$n; echo $$((t > 0 ? t : 1)))

.PHONY: setup course test unit lessons browser benchmark gpu-check lab strip lint demo book hub hub-students

setup:
	@bash scripts/setup.sh

course: setup
	$(PY) -m tlwidgets.course --quick

# glibc's malloc serves every allocation over 32 MB with a fresh mmap and unmaps it when freed, so each batch of
# activations through a backbone page-faults its memory in again: the test command's processes and kernels keep
# freed memory for reuse instead (allocations up to 256 MB from the heap, up to 512 MB of free heap kept). Measured
# on a cat-breed feature extraction, one thread: 3.45 -> 1.91 s of system time for 10 s of arithmetic. Other libcs
# ignore these variables.
TEST_MALLOC := MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=536870912

test: setup
	@if [ -x /usr/bin/chromium ] || [ "$$(id -u)" = 0 ]; then bash scripts/install_browser.sh || echo "browser tests will skip"; fi
	@bash scripts/install_npm.sh || echo "npm packages missing: the book and hub browser tests will fail"
	OMP_NUM_THREADS=$(TEST_THREADS) TLLAB_TEST_THREADS=$(TEST_THREADS) $(TEST_MALLOC) \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests lessons $(NBVAL) -v \
		--durations=20 --junitxml=build/test-junit.xml

unit: setup
	$(PY) -m pytest tests/unit -q

lessons: setup
	$(PY) -m pytest tests/notebooks lessons $(NBVAL) -v

browser: setup
	$(PY) -m pytest tests/browser -v

# ruff (style, imports, likely bugs) and mypy (basic mode); settings and documented exclusions in pyproject.toml
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

benchmark: setup
	@KERAS_BACKEND=torch $(PY) -c 'import fastai, keras' 2>/dev/null || $(PY) -m pip install -q -e ".[benchmarks]"
	KERAS_BACKEND=torch $(PY) -m benchmarks $(BENCH_ARGS)

# the GPU check, once, when a GPU is lent (about 10 minutes): the course on cuda, the benchmark's cuda section
# and the peer race; its numbers land in build/gpu/ and docs/benchmarks.{json,md}. Rehearse it on a CPU with
# `make gpu-check GPU_ARGS="--device cpu --quick"`.
gpu-check: setup
	bash scripts/gpu_check.sh $(GPU_ARGS)

# lessons signed as trusted first (their stored outputs render as saved); root (a container) needs --allow-root
lab: setup
	$(PY) -m jupyter trust lessons/*.ipynb lessons/solutions/*.ipynb >/dev/null
	$(PY) -m jupyter lab lessons/ $(if $(filter 0,$(shell id -u)),--allow-root)

# strip outputs except cells whose metadata says keep_output (nbstripout's per-cell convention),
# numbering the kept cells so nbval compares them (plain nbstripout would clear their counts)
strip: setup
	$(PY) scripts/strip_notebooks.py

# the instructor's app: the dogs -> cats dashboard and the digit pad, no code, on http://127.0.0.1:$(DEMO_PORT)
# (apps/voila.json: loopback only, progressive rendering, the course's offline template apps/jupyter/voila/
# templates/tllab, a closed tab's kernel ended within about a minute)
DEMO_PORT ?= 8866
demo: setup
	cd apps && JUPYTER_PATH="$(CURDIR)/apps/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH}" ../$(PY) -m voila dogs_to_cats.ipynb --port=$(DEMO_PORT)

# the course as a static website (Jupyter Book 1, offline) from the executed lessons in build/lessons
# (runs the course first when they are missing) -> build/book/_build/html/index.html; see docs/deploy.md
book: setup
	@bash scripts/install_npm.sh
	$(PY) book/build.py

# the classroom hub (docs/deploy.md section 4), as root. First one OS user per student (homes 0700; HUB_DATA made
# root-owned and read-only for students; the folders to .venv's Python and this repo made searchable), then the hub:
#   make hub-students STUDENTS="alice bob" HUB_DATA=/srv/tllab-data
#   make hub STUDENTS="alice bob" HUB_DATA=/srv/tllab-data HUB_PASSWORD='a class password'
STUDENTS ?=
HUB_DATA ?= $(TLLAB_DATA)
HUB_PASSWORD ?=
comma := ,
empty :=
space := $(empty) $(empty)
hub-students:
	bash deploy/add_students.sh --reach $(PY) --reach "$(CURDIR)/tlwidgets" $(if $(HUB_DATA),--data "$(HUB_DATA)") \
	  $(STUDENTS)

hub: setup
	@bash scripts/install_npm.sh
	TLLAB_STUDENTS="$(subst $(space),$(comma),$(strip $(STUDENTS)))" TLLAB_HUB_PASSWORD="$(HUB_PASSWORD)" \
	TLLAB_DATA="$(HUB_DATA)" $(PY) -m jupyterhub -f deploy/jupyterhub_config.py

