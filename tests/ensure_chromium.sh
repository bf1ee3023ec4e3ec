#!/usr/bin/env bash
# Make sure headless Chromium is at /usr/bin/chromium for the trace viewer's browser test
# (tests/test_trace.py). Installs Debian's `chromium` package when it is missing; where apt is
# unavailable it says so and exits 0, so the rest of the suite still runs (that one test then fails
# with a message saying what is missing).
set -euo pipefail
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tests: $CHROMIUM is missing and apt-get is unavailable; install Chromium by hand" \
       "(the trace viewer's browser test will fail until then)" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "tests: $CHROMIUM is missing; installing Debian's chromium (for the trace viewer's browser test)" >&2
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
  echo "tests: installing chromium failed; the trace viewer's browser test will fail until it is installed" >&2
  exit 0
fi
test -x "$CHROMIUM" || echo "tests: installing chromium did not provide $CHROMIUM" >&2
