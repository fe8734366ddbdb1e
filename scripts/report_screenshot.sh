#!/usr/bin/env bash
# Screenshots a checklist report in headless Chromium.
# Usage: scripts/report_screenshot.sh runs/checklist/report.html[#section] docs/report.png [height]
# With #section (e.g. #tuning), only that section of the page (from its <h2 id="section"> to
# the next <h2>) is shown.
set -euo pipefail
page=$(realpath "${1%%#*}"); out=$2; height=${3:-2400}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
if [[ "$1" == *#* ]]; then
    section="${1#*#}"
    python3 - "$page" "$section" "$profile/section.html" <<'PY'
import sys
html = open(sys.argv[1]).read()
start = html.index(f'<h2 id="{sys.argv[2]}">')
end = html.find("<h2", start + 4)
open(sys.argv[3], "w").write(html[: html.index("<body>") + 6] + html[start:end] + "</body></html>\n")
PY
    page="$profile/section.html"
fi
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1100,"$height" \
    --screenshot="$(realpath -m "$out")" "file://$page" 2>/dev/null
echo "wrote $out"
