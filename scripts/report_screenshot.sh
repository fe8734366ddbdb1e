#!/usr/bin/env bash
# Screenshots a checklist report in headless Chromium.
# Usage: scripts/report_screenshot.sh runs/checklist/report.html docs/report.png [height]
set -euo pipefail
page=$(realpath "$1"); out=$2; height=${3:-2400}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1100,"$height" \
    --screenshot="$(realpath -m "$out")" "file://$page" 2>/dev/null
echo "wrote $out"
