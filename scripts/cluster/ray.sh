#!/usr/bin/env bash
# A Ray head on localhost for the integration tests, from the project's virtualenv, with token
# authentication on (RAY_AUTH_MODE=token, Ray >= 2.52): a fresh random token in DIR/auth_token.
#   scripts/cluster/ray.sh up DIR [PORT]   start `ray start --head --block` in its own process
#                                          group (pid in DIR/ray.pid), wait for the Jobs API
#   scripts/cluster/ray.sh down DIR        SIGTERM to that process group, then SIGKILL; remove DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:?up or down}; dir=${2:?folder}; port=${3:-8265}
if [ "$cmd" = down ]; then
    if [ -f "$dir/ray.pid" ]; then
        pgid=$(cat "$dir/ray.pid")
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    [ -f "$dir/tmp" ] && rm -rf "$(cat "$dir/tmp")"
    rm -rf "$dir"
    exit 0
fi
[ -x .venv/bin/ray ] || bash scripts/setup.sh
mkdir -p "$dir"
token="$dir/auth_token"
(umask 077 && .venv/bin/python -c "import secrets; print(secrets.token_hex(32))" > "$token")
# Ray's temp dir must be short (socket paths are limited to 107 bytes).
tmp=$(mktemp -d /tmp/ray-XXXX)
echo "$tmp" > "$dir/tmp"
RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$token" RAY_USAGE_STATS_ENABLED=0 setsid .venv/bin/ray start --head --block --num-cpus="$(nproc)" --num-gpus=0 \
    --dashboard-host=127.0.0.1 --dashboard-port="$port" --include-dashboard=true \
    --temp-dir="$tmp" --disable-usage-stats > "$dir/ray.out" 2>&1 &
echo $! > "$dir/ray.pid"
for _ in $(seq 600); do
    if curl -sf -H "Authorization: Bearer $(cat "$token")" "http://127.0.0.1:$port/api/jobs/" >/dev/null 2>&1; then
        echo "ray head up: http://127.0.0.1:$port, token in $token"
        exit 0
    fi
    sleep 0.2
done
echo "ray did not come up; see $dir/ray.out" >&2
exit 1
