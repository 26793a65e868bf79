#!/usr/bin/env bash
# `make test` exactly as CI runs it: a fresh clone of this repository's HEAD into an empty folder (nothing beside
# it, so no ../shared data: the lessons run on the repo's datasets/), a new .venv, the README's test command,
# with an empty user cache (XDG_CACHE_HOME, TLLAB_CACHE unset): a CI machine has no ~/.cache/tlwidgets, so the
# features, sentence vectors and image folders a lesson caches are computed in this run, as they are there.
# Prints how long setup took and how long the whole command took; keeps the JUnit XML as
# build/fresh-clone-junit.xml (scripts/test_durations.py turns it into tests/file_durations.json).
# Used by `make benchmark BENCH_ARGS="--with-test-command --test-command 'bash scripts/fresh_clone_test.sh'"`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/tllab-fresh-XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone -q "$here" "$work/clone"
cd "$work/clone"
t0=$(date +%s.%N)
make setup
t1=$(date +%s.%N)
status=0
mkdir -p "$work/xdg-cache"
env -u TLLAB_CACHE -u TLLAB_DATA XDG_CACHE_HOME="$work/xdg-cache" make test || status=$?
t2=$(date +%s.%N)
mkdir -p "$here/build"
cp build/test-junit.xml "$here/build/fresh-clone-junit.xml" 2>/dev/null || true
printf 'fresh clone: setup %.0f s, make test after setup %.0f s, total %.0f s, exit %d\n' \
  "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)" "$status"
exit "$status"
