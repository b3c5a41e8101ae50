#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser/). Playwright drives it through
# executable_path=/usr/bin/chromium; its own browser download (`playwright install`) is never used.
#
# Usage: scripts/install-chromium.sh        # no-op when /usr/bin/chromium already exists
# Environment: PAYGATE_CHROMIUM overrides the path that is checked (default /usr/bin/chromium).
# Needs root (or sudo) for apt-get; runs `apt-get update` only when the package is not known yet.
set -euo pipefail

CHROMIUM="${PAYGATE_CHROMIUM:-/usr/bin/chromium}"

if [[ -x "$CHROMIUM" ]]; then
    echo "Chromium: $CHROMIUM" >&2
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi

echo "installing chromium ..." >&2
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq
fi
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; then
    $SUDO apt-get update -qq   # a stale package list can name versions the mirror no longer has
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [[ ! -x "$CHROMIUM" ]]; then
    echo "error: Chromium not found at $CHROMIUM after install" >&2
    exit 1
fi
echo "Chromium: $CHROMIUM" >&2
