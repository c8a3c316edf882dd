#!/bin/sh
# Make sure a headless Chromium is installed for tests/test_html_report.py.
# Quiet and quick when one is already there; installs Debian's chromium with apt-get when we are
# root; otherwise says how to get one and exits 0 (the browser test then skips, saying why).
set -eu

for name in "${RT_CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable; do
    if [ -n "$name" ] && command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: no Chromium found and cannot install one here (needs root and" \
        "apt-get); install chromium or set RT_CHROMIUM=/path/to/chrome, or the HTML report's" \
        "browser test will be skipped." >&2
    exit 0
fi

log=$(mktemp "${TMPDIR:-/tmp}/ensure-chromium.XXXXXX")
echo "ensure-chromium: installing chromium with apt-get (log: $log)..." >&2
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
    >"$log" 2>&1; then
    # The package lists may be missing or stale (fresh containers ship without them).
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends chromium; } >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "ensure-chromium: apt-get could not install chromium (see $log); the HTML" \
            "report's browser test will be skipped." >&2
        exit 0
    fi
fi
rm -f "$log"
echo "ensure-chromium: installed $(command -v chromium)." >&2
