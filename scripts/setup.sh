#!/usr/bin/env bash
# Create .venv (if needed) and install the course with its test tools. Idempotent and quick when nothing changed.
# One line per step; pip's own output goes to .venv/setup.log (printed only when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'
stamp=.venv/.tlwidgets-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
[ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && exit 0
log=.venv/setup.log
step() {  # step "what" command...: one line, the log on failure
  local what=$1; shift
  local t0=$SECONDS
  printf '== %s ... ' "$what"
  if "$@" >>"$log" 2>&1; then echo "done ($((SECONDS - t0)) s)"; else
    echo "FAILED"; echo "---- last lines of $log:"; tail -n 40 "$log"; exit 1; fi
}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  echo "== created .venv with $("$PY" --version)"
fi
: > "$log"
step "upgrading pip" .venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision as one pair, so pip cannot pick a torchvision built for another torch.
step "installing torch + torchvision (~75 s on a fresh machine)" \
  .venv/bin/python -m pip install -q "torch>=2.2,<2.15" "torchvision>=0.17,<0.30"
step "installing the course and its test tools (pip install -e .[dev])" .venv/bin/python -m pip install -q -e ".[dev]"
rm -f "$stamp"; echo "$want" > "$stamp"
echo "== .venv ready: $(.venv/bin/python -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")')"
