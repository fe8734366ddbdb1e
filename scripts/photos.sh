#!/usr/bin/env bash
# Makes `data/photos/`, an image folder of real RGB photographs (one subfolder per class) for the
# RGB augmentation previews, the resize golden test and the ImageNet-size benchmark. The photos
# are scikit-image's sample images (public domain / CC0, see skimage/data in its wheel), taken
# from the wheel on PyPI (the only place this machine can reach); nothing is downloaded at run
# time. Idempotent; needs .venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data/photos
[ -f "$OUT/.complete" ] && exit 0
CACHE=.venv/cache/scikit-image
mkdir -p "$CACHE"
ls "$CACHE"/scikit_image-*.whl >/dev/null 2>&1 ||
    .venv/bin/pip download --quiet --no-deps --only-binary=:all: "scikit-image==0.26.0" -d "$CACHE"
rm -rf "$OUT"
.venv/bin/python - "$CACHE" "$OUT" <<'PY'
import glob, pathlib, sys, zipfile
cache, out = sys.argv[1], pathlib.Path(sys.argv[2])
classes = {
    "space": ["astronaut.png", "hubble_deep_field.jpg", "rocket.jpg"],
    "cat": ["chelsea.png"],
    "coffee": ["coffee.png"],
    "motorcycle": ["motorcycle_left.png", "motorcycle_right.png"],
    "microscopy": ["ihc.png", "retina.jpg"],
}
with zipfile.ZipFile(glob.glob(f"{cache}/scikit_image-*.whl")[0]) as whl:
    for cls, names in classes.items():
        (out / cls).mkdir(parents=True, exist_ok=True)
        for name in names:
            (out / cls / name).write_bytes(whl.read(f"skimage/data/{name}"))
(out / ".complete").write_text("")
PY
echo "photos: $(find "$OUT" -type f -name '*.*g' | wc -l) files in $OUT"
