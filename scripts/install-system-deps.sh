#!/usr/bin/env bash
# Installs the Debian/Ubuntu system libraries that Qt 6 (xcb), OpenGL/EGL (Open3D's offscreen
# renderer) and Xvfb need, when they are missing. Runs apt-get only as root; otherwise it prints
# the command to run and carries on (the app still runs where the libraries exist already).
set -u
PKGS="xvfb xauth x11-utils libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libegl-mesa0 libgles2 libosmesa6
libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 libxcb-sync1 libxcb-shm0
libxcb-glx0 libxcb-util1 libfontconfig1 libfreetype6 libdbus-1-3 libxrender1 libxi6 libxext6 libx11-xcb1
libsm6 libice6 libgomp1 libusb-1.0-0 fonts-dejavu-core"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-system-deps: not a Debian-based system; make sure Qt 6 (xcb), OpenGL/EGL and Xvfb are installed." >&2
  exit 0
fi
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
  echo "install-system-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || { echo "install-system-deps: apt-get failed" >&2; exit 1; }
else
  echo "install-system-deps: missing system packages:$missing" >&2
  echo "  run: sudo apt-get install -y --no-install-recommends$missing" >&2
fi
exit 0
