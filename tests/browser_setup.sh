#!/bin/sh
# Install Debian's Chromium and its driver for tests/test_serve_browser.py, only when one is missing.
# Safe to re-run: it does nothing when both are present. Needs root (or sudo) and the Debian archive.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "browser_setup: chromium/chromedriver missing and not root; run: apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium chromium-driver
