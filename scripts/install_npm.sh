#!/usr/bin/env bash
# Install the JavaScript the course serves itself (never from a CDN), pinned in deploy/npm/package-lock.json:
#   requirejs + @jupyter-widgets/html-manager  widgets in the static book (make book)
#   mathjax                                   maths in the static book
#   configurable-http-proxy                   JupyterHub's proxy (deploy/, tests/browser/test_hub.py)
# into deploy/npm/node_modules (ignored by git). Idempotent: a second run with the same lockfile does nothing.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$REPO_ROOT/deploy/npm"
if ! command -v npm >/dev/null 2>&1; then
    echo "npm: not found; install Node.js 18+ (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
fi
stamp="$DIR/node_modules/.installed-from-lock"
if [[ -f "$stamp" ]] && cmp -s "$stamp" "$DIR/package-lock.json"; then
    echo "npm packages: already installed in $DIR/node_modules"
    exit 0
fi
echo "npm packages: installing into $DIR/node_modules ..."
npm ci --prefix "$DIR" --no-audit --no-fund --ignore-scripts --loglevel=error
cp "$DIR/package-lock.json" "$stamp"
echo "npm packages: installed"
