#!/usr/bin/env bash
# One device session (issue 28, item 4) as one command: a short GPU check (scripts/gpu/check.sh,
# one round per setting), then the Fashion-MNIST campaign (scripts/gpu/fashion_mnist.sh) for the
# rest of the time. Everything comes back under $OUT: check.log, campaign.log, and the campaign's
# records as campaign.tgz (the device returns files at most two folders down). Unpack that over
# results/fashion-mnist-gpu and commit it; the next session's campaign resumes from there:
#   tar xzf campaign.tgz -C results/fashion-mnist-gpu --strip-components=1
# Usage on the device, carrying gpu/ (bash scripts/gpu/build.sh 2.11.0 and
# bash scripts/gpu/fashion_mnist.sh --stage made it): bash scripts/gpu/session.sh
# Environment: CHECK_SECONDS (default 170) and CAMPAIGN_SECONDS (default 300) share the device's
# 10-minute command limit; CHECK_ROUNDS, CHECK_STEPS, CHECK_WARMUP as check.sh takes them.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:?set OUT to the folder whose files come back}
export CHECK_ROUNDS=${CHECK_ROUNDS:-1} CHECK_STEPS=${CHECK_STEPS:-100} CHECK_WARMUP=${CHECK_WARMUP:-20}
timeout "${CHECK_SECONDS:-170}" bash scripts/gpu/check.sh gpu/darkmagic 2>&1 | tee "$out/check.log"
CAMPAIGN_SECONDS=${CAMPAIGN_SECONDS:-300} bash scripts/gpu/fashion_mnist.sh gpu/darkmagic 2>&1 | tee "$out/campaign.log"
tar czf "$out/campaign.tgz" -C "$out" fashion-mnist-campaign && rm -rf "$out/fashion-mnist-campaign"
