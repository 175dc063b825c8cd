#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright; never a downloaded browser build.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser-setup: installing Debian's chromium package" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "browser-setup: Debian's chromium package is required (apt-get install chromium)" >&2
    exit 1
  fi
fi
chromium --version
