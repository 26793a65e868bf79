#!/usr/bin/env bash
# `make test` exactly as CI runs it: a fresh clone of this repository's HEAD into an empty folder (nothing beside
# it, so no ../shared data: the lessons run on the repo's datasets/), a new .venv, the README's test command,
# with an empty user cache (XDG_CACHE_HOME, TLLAB_CACHE unset): a CI machine has no ~/.cache/tlwidgets, so the
# features, sentence vectors and image folders a lesson caches are computed in this run, as they are there.
# Prints how long setup took and how long the whole command took, and the CPU time the machine was busy during
# `make test` (/proc/stat: every core, so run it on a quiet machine): that over the number of cores is the
# shortest the command could take with its current work, however well it were spread. Keeps the JUnit XML as
# build/fresh-clone-junit.xml (scripts/test_durations.py turns it into tests/file_durations.json).
# Used by `make benchmark BENCH_ARGS="--with-test-command --test-command 'bash scripts/fresh_clone_test.sh'"`.
set -euo pipefail
busy_cpu_s() {   # CPU seconds every core has spent busy since boot (user, nice, system, irq, softirq, steal)
  [[ -r /proc/stat ]] || { echo 0; return; }
  awk '/^cpu / {printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / '"$(getconf CLK_TCK)"'; exit}' /proc/stat
}
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/tllab-fresh-XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone -q "$here" "$work/clone"
cd "$work/clone"
t0=$(date +%s.%N)
make setup
t1=$(date +%s.%N)
b1=$(busy_cpu_s)
status=0
mkdir -p "$work/xdg-cache"
env -u TLLAB_CACHE -u TLLAB_DATA XDG_CACHE_HOME="$work/xdg-cache" make test || status=$?
t2=$(date +%s.%N)
b2=$(busy_cpu_s)
mkdir -p "$here/build"
cp build/test-junit.xml "$here/build/fresh-clone-junit.xml" 2>/dev/null || true
cores=$(getconf _NPROCESSORS_ONLN)   # the cores /proc/stat's "cpu" line adds up (nproc: only those this process may use)
cpu=$(echo "$b2 - $b1" | bc)
printf 'fresh clone: setup %.0f s, make test after setup %.0f s, total %.0f s, exit %d; ' \
  "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)" "$status"
printf 'make test kept the %d cores busy for %.0f CPU-s (%.0f %% of its time): at least %.0f s on %d cores\n' \
  "$cores" "$cpu" "$(echo "100 * $cpu / ($cores * ($t2 - $t1))" | bc -l)" "$(echo "$cpu / $cores" | bc -l)" "$cores"
exit "$status"
