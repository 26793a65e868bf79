#!/usr/bin/env bash
# Create .venv (if needed) and install the course with its test tools. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.tlwidgets-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing the course into .venv (torch first; ~2-3 minutes on a fresh machine)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # torch/torchvision as one pair, so pip cannot pick a torchvision built for another torch.
  .venv/bin/python -m pip install -q "torch>=2.2,<2.15" "torchvision>=0.17,<0.30"
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
