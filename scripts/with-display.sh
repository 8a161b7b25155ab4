#!/usr/bin/env bash
# Runs a command with a display: the current one if there is one, else a virtual X server (Xvfb).
set -u
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$@"
fi
if ! command -v xvfb-run >/dev/null 2>&1; then
  echo "with-display: no display and no xvfb-run; running with Qt's offscreen platform (3D views need EGL)" >&2
  QT_QPA_PLATFORM=offscreen exec "$@"
fi
exec xvfb-run -a -s "-screen 0 1600x1000x24 -nolisten tcp" "$@"
