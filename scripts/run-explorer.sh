#!/usr/bin/env bash
# `make run`: opens the explorer on the embedded demo. With no display (a server, CI), it runs the
# app under a virtual display, saves a screenshot and prints its path instead of failing.
set -u
cd "$(dirname "$0")/.."
APP=".venv/bin/crosspoint-explorer"
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$APP" "$@"
fi
mkdir -p screenshots
out="$(pwd)/screenshots/explorer-demo.png"
echo "No display found: running the explorer under a virtual display (Xvfb) and saving a screenshot."
bash scripts/with-display.sh "$APP" --screenshot "$out" "$@" || exit $?
echo "Screenshot of the explorer on the embedded demo: $out"
