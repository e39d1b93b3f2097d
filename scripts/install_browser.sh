#!/usr/bin/env bash
# Debian's Chromium + chromedriver for tests/test_serve_browser.py (headless). Idempotent: does
# nothing when both are already on PATH. Needs root (or sudo) and the Debian package mirror.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "install_browser: chromium and chromedriver already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
echo "install_browser: installed $(chromium --version 2>/dev/null) / $(chromedriver --version)"
