# Sourced by bench/augment_*.sh. `loader_vs_torchvision SCRIPT.py DARKMAGIC_ARGS PY_ARGS` runs,
# in one go, `darkmagic bench augment DARKMAGIC_ARGS` with 1 and 2 threads and the torchvision
# script with PY_ARGS and num_workers 0 and 2, then prints both ratios.
loader_vs_torchvision() {
    local script=$1 dm_args=$2 py_args=$3
    local bin=${DARKMAGIC_BIN:-target/release/darkmagic}
    [ -x "$bin" ] || cargo build --release
    num() { sed -E 's/.*: ([0-9.]+) images\/s/\1/'; }
    local d1 t0 d2 t2
    # shellcheck disable=SC2086 # the argument strings are word lists
    d1=$("$bin" bench augment $dm_args --threads 1); echo "$d1"
    t0=$(.venv/bin/python "$script" $py_args --workers 0 2>/dev/null); echo "$t0"
    d2=$("$bin" bench augment $dm_args --threads 2); echo "$d2"
    t2=$(.venv/bin/python "$script" $py_args --workers 2 2>/dev/null); echo "$t2"
    awk -v a="$(echo "$d1" | num)" -v b="$(echo "$t0" | num)" -v c="$(echo "$d2" | num)" -v d="$(echo "$t2" | num)" \
        'BEGIN { printf "ratio 1 thread / num_workers=0: %.2fx; 2 threads / num_workers=2: %.2fx\n", a/b, c/d }'
}
