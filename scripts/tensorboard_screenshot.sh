#!/usr/bin/env bash
# Screenshots TensorBoard's views of a checklist in headless Chromium: the curves (time series)
# and the HParams table, served by the project's TensorBoard on 127.0.0.1.
# Usage: scripts/tensorboard_screenshot.sh CHECKLIST_DIR OUT_PREFIX
# writes OUT_PREFIX-scalars.png and OUT_PREFIX-hparams.png.
set -euo pipefail
logdir=$(realpath "$1"); out=$2
port=16006
profile=$(mktemp -d)
.venv/bin/tensorboard --logdir "$logdir" --host 127.0.0.1 --port "$port" >"$profile/tb.log" 2>&1 &
tb=$!
trap 'kill $tb 2>/dev/null; rm -rf "$profile"' EXIT
for _ in $(seq 60); do
    curl -sf "http://127.0.0.1:$port/data/environment" >/dev/null && break
    sleep 1
done
shot() {
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile/chrome" --hide-scrollbars --window-size=1400,1000 \
        --virtual-time-budget=40000 --screenshot="$(realpath -m "$2")" \
        "http://127.0.0.1:$port/$1" 2>/dev/null
    echo "wrote $2"
}
shot "?tagFilter=val#timeseries" "$out-scalars.png"
shot "#hparams" "$out-hparams.png"
