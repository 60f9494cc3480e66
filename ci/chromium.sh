#!/bin/sh
# Installs Debian's chromium when no chromium is on PATH (the timeline test renders its
# HTML in it). Prints the browser's path; exits non-zero when it cannot be installed.
set -eu
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        exit 0
    fi
done
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
else
    echo "chromium.sh: chromium is not installed and this user cannot install packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2 || true
$sudo apt-get install -y -qq chromium >&2
command -v chromium
