#!/usr/bin/env bash
# Install Debian's Chromium for the web UI's browser tests (integration/web) when it is missing.
# Playwright drives it with executable_path=/usr/bin/chromium: no browser download needed.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "ensure-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) is installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: no apt-get here; install Chromium at /usr/bin/chromium by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "ensure-browser: installing chromium"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
/usr/bin/chromium --version
