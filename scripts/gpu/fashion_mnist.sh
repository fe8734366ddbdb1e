#!/usr/bin/env bash
# Issue 17's campaign on a device machine: the checklist of recipes/fashion-mnist-campaign.toml
# with several trials per GPU, resumable across device sessions (the checklist skips finished
# trials and confirms the combined recipe itself).
#
# Prepare here, once:
#   bash scripts/gpu/build.sh 2.11.0            # gpu/darkmagic for the device's libtorch
#   bash scripts/gpu/fashion_mnist.sh --stage   # gpu/data/fashion-mnist: Debian's four IDX .gz
# Run on the device, carrying gpu/ (binary, gpu/lib/libturbojpeg.so.0, data: about 40 MB):
#   bash scripts/gpu/fashion_mnist.sh gpu/darkmagic [checklist flags: --skip F, --seeds N, ...]
# The checklist's state lives in gpu/campaign; everything but checkpoints (summaries, report,
# each trial's recipe, metrics and result) is copied to $OUT/fashion-mnist-campaign. Commit that
# folder as results/fashion-mnist-gpu (or put it back as gpu/campaign) and the next session resumes
# from it. The
# run stops itself after CAMPAIGN_SECONDS (default 540) so that the copy happens inside the
# device's 10-minute command limit; trials cut short rerun from their start next time.
# Environment: CAMPAIGN_TRIALS_PER_GPU (default 4), CAMPAIGN_SECONDS, CAMPAIGN_IMAGES (train on
# the first N training and N/6 test images: the smoke test).
# Smoke test on this CPU:
#   CHECK_DEVICE=cpu CAMPAIGN_IMAGES=600 OUT=/tmp/fm bash scripts/gpu/fashion_mnist.sh \
#       target/release/darkmagic --set train.epochs=1 --set schedule.warmup_epochs=0.0 --seeds 1 --max-seeds 1
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = --stage ]; then
    mkdir -p gpu/data/fashion-mnist
    cp /usr/share/datasets/fashion-mnist/*.gz gpu/data/fashion-mnist/
    grep -qx '/gpu/' .git/info/exclude || echo '/gpu/' >> .git/info/exclude
    du -sh gpu/data
    exit 0
fi
for var in CAMPAIGN_IMAGES CAMPAIGN_SECONDS CAMPAIGN_TRIALS_PER_GPU; do
    value=${!var:-}
    if [ -n "$value" ] && ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
        echo "$var: got '$value'; expected a whole number >= 1" >&2
        exit 2
    fi
done
bin=${1:-gpu/darkmagic}
shift
device=${CHECK_DEVICE:-cuda}
source scripts/gpu/env.sh
data=gpu/data/fashion-mnist
[ -d "$data" ] || data=/usr/share/datasets/fashion-mnist
if [ -n "${CAMPAIGN_IMAGES:-}" ]; then
    # A fixed folder, so that the trials' recipes (data.path) stay the same when resumed.
    subset=gpu/data/fashion-mnist-first-$CAMPAIGN_IMAGES
    mkdir -p "$subset"
    "$python" - "$data" "$subset" "$CAMPAIGN_IMAGES" <<'PY'
import gzip, os, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for split, count in (("train", n), ("t10k", max(n // 6, 10))):
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{split}-{kind}-ubyte.gz"
        raw = gzip.open(os.path.join(src, name)).read()
        dims = raw[3]
        shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
        item = 1
        for d in shape[1:]:
            item *= d
        header = raw[:4] + struct.pack(">I", count) + raw[8 : 4 + 4 * dims]
        gzip.open(os.path.join(dst, name), "wb").write(header + raw[4 + 4 * dims :][: count * item])
PY
    data=$subset
fi
flags=(--set "data.path=\"$data\"" --set "train.device=\"$device\"")
[ "$device" = cuda ] && flags+=(--trials-per-gpu "${CAMPAIGN_TRIALS_PER_GPU:-4}")
work=gpu/campaign
# The records of earlier device sessions are committed in results/fashion-mnist-gpu: resume from them.
[ -d "$work" ] || [ ! -d results/fashion-mnist-gpu ] || cp -r results/fashion-mnist-gpu "$work"
out=${OUT:-runs}/fashion-mnist-campaign
echo "== checklist in $work, $(date -u +%H:%M:%S)"
start=$(date +%s)
timeout --signal=INT "${CAMPAIGN_SECONDS:-540}" "$bin" checklist --recipe recipes/fashion-mnist-campaign.toml \
    --out "$work" "${flags[@]}" "$@"
echo "== checklist exit status $?, $(( $(date +%s) - start )) s"
mkdir -p "$out" && out=$(cd "$out" && pwd)
[ -d "$work" ] && (cd "$work" && find . -type f ! -name '*.safetensors' ! -name checklist.lock -exec cp --parents {} "$out" \;)
echo "== copied to $out: $(find "$out" -name result.json | wc -l) finished trials"
[ -f "$out/summary.md" ] && cat "$out/summary.md"
