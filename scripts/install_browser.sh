#!/usr/bin/env bash
# Install what the real-browser tests (tests/browser) need:
#   * Debian's `chromium` at /usr/bin/chromium (via apt-get, only if missing, root only)
#   * the Python `playwright` package in the current Python environment
# Idempotent: running it twice does nothing the second time.
# It never runs `playwright install` (we drive the system Chromium instead).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Pick the Python: $PYTHON, else the repo venv, else python3 on PATH.
if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then
    PY="$REPO_ROOT/.venv/bin/python"
elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    PY="$VIRTUAL_ENV/bin/python"
else
    PY="$(command -v python3 || true)"
fi

# 1. Chromium
if [[ -x /usr/bin/chromium ]]; then
    echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
else
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "chromium: /usr/bin/chromium is missing and this script is not running as root;" >&2
        echo "          run it as root (or: sudo apt-get install -y --no-install-recommends chromium)." >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "chromium: /usr/bin/chromium is missing and apt-get is not available (not a Debian-like system)." >&2
        exit 1
    fi
    echo "chromium: installing the Debian package ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends chromium
    if [[ ! -x /usr/bin/chromium ]]; then
        echo "chromium: apt-get finished but /usr/bin/chromium is still missing." >&2
        exit 1
    fi
    echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
fi

# 2. Python playwright package (never `playwright install`: we use /usr/bin/chromium)
if [[ -z "$PY" ]]; then
    echo "playwright: no Python interpreter found (set PYTHON=/path/to/python)." >&2
    exit 1
fi
if "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
    echo "playwright: already importable in $PY"
else
    echo "playwright: installing into $PY ..."
    "$PY" -m pip install playwright
    "$PY" -c "import playwright.sync_api"
    echo "playwright: installed"
fi
echo "ok: browser test prerequisites are in place"
