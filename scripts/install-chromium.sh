#!/usr/bin/env bash
# Installs headless Chromium (the Debian package `chromium`) for the browser test of report.html
# (tests/report_browser.rs) and prints the browser's path. Idempotent and quiet: a browser already on PATH
# (chromium, chromium-browser, google-chrome) is used as it is; otherwise apt-get installs `chromium`, which
# needs root. Exits non-zero, saying why, where it cannot be installed; the test then skips with that message.
set -euo pipefail

find_browser() {
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if find_browser; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get on this machine; install Chromium by hand" >&2
  exit 1
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "install-chromium: apt-get needs root; run 'sudo apt-get install chromium'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
  echo "install-chromium: apt-get could not install chromium:" >&2
  tail -n 5 "$log" >&2
  exit 1
fi
find_browser || { echo "install-chromium: chromium installed but not on PATH" >&2; exit 1; }
