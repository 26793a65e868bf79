#!/usr/bin/env bash
# The GPU check, prepared so that a scarce GPU lease is spent measuring, not debugging (about 10 minutes on a GPU):
#   1. the whole course on the device (full size on a GPU; quick with --quick), results table in build/gpu/
#   2. the benchmark's sections for that device (docs/benchmarks.json gets/replaces that device's entry)
#   3. the peer race (fastai, Keras 3, the PyTorch tutorial against the course's path) on that device
# Usage:  bash scripts/gpu_check.sh [--device cuda] [--quick] [--lessons "00 01"]
# Rehearse on a CPU first:  bash scripts/gpu_check.sh --device cpu --quick   (writes to build/gpu-rehearsal/, and
# docs/ is left untouched: the CPU numbers there come from a quiet `make benchmark`)
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda quick=0 lessons=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --lessons) lessons=$2; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument $1 (allowed: --device DEV, --quick, --lessons \"NN ...\")" >&2; exit 2 ;;
  esac
done
PY=.venv/bin/python
[ -x "$PY" ] || { echo "gpu_check.sh: .venv missing: run 'make setup' first" >&2; exit 2; }
if [ "$device" != cpu ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check.sh: --device $device asked for, but torch sees no CUDA device" >&2; exit 2
fi
"$PY" -c 'import fastai, keras' 2>/dev/null || "$PY" -m pip install -q -e ".[benchmarks]"
export KERAS_BACKEND=torch TLLAB_HEADLESS=1
if [ "$device" = cpu ]; then out=build/gpu-rehearsal; json=$out/benchmarks.json; md=$out/benchmarks.md
else out=build/gpu; json=docs/benchmarks.json; md=docs/benchmarks.md; fi
mkdir -p "$out"
mode=--full; bench=(); [ "$quick" = 1 ] && { mode=--quick; bench=(--quick --peer-budget 30 --peer-epochs 1); }
t0=$SECONDS
echo "== 1/3 the course on $device ($mode)"
# shellcheck disable=SC2086
"$PY" -m tlwidgets.course "$mode" --device "$device" --out "$out/course" --no-html ${lessons:+--lessons $lessons} \
  | tee "$out/course.log"
echo "== 2/3 benchmark sections on $device"
"$PY" -m benchmarks --device "$device" --skip-lessons --skip-tests "${bench[@]}" --json "$json" --out "$md" \
  --only forward cached boundary chart data tuning | tee "$out/benchmark.log"
echo "== 3/3 the peer race on $device"
"$PY" -m benchmarks --device "$device" --only peers "${bench[@]}" --json "$json" --out "$md" | tee "$out/peers.log"
echo "== gpu_check done in $((SECONDS - t0)) s: $out/, $md"
