#!/usr/bin/env bash
# Full-length runs after a short-trial checklist (issue 41, items 3 and 4): the baseline, the
# combined recipe, a reference recipe, and every variant the checklist decided (helps or hurts),
# each at the full epoch count on the test split, for seeds 0..SEEDS-1. Each arm trains from the
# recipe its checklist trials recorded (its first seed folder's recipe.toml; the combined
# recipe's seeds start after the variants') with only the seed and the epochs changed, so short
# and full runs differ in length alone.
#
# Usage: scripts/full-length.sh CHECKLIST_DIR EPOCHS SEEDS OUT_DIR [REFERENCE_RECIPE]
#   e.g. scripts/full-length.sh results/fashion-mnist-plain 12 3 results/fashion-mnist-plain-full \
#          recipes/fashion-mnist-cpu-tuned.toml
# Runs two at a time with one thread each (the 2-core machine); a run whose result.json exists is
# skipped and one killed midway resumes from its checkpoint, so rerunning the command resumes. Then: scripts/full-length-table.py OUT_DIR.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 CHECKLIST_DIR EPOCHS SEEDS OUT_DIR [REFERENCE_RECIPE]" >&2; exit 2; }
checklist=$1 epochs=$2 seeds=$3 out=$4 reference=${5:-}
darkmagic=${DARKMAGIC:-target/release/darkmagic}
summary=$checklist/summary.csv
[ -f "$summary" ] || { echo "error: $summary not found: run the checklist to its end first" >&2; exit 2; }

# The arms, in the order item 3 then item 4 needs them: baseline, combined, the reference, then
# the decided variants (verdict column starts with helps or hurts).
arms=(baseline)
[ -d "$checklist/trials/combined" ] && arms+=(combined)
mapfile -t decided < <(python3 -c '
import csv, sys
for row in csv.DictReader(open(sys.argv[1])):
    if row["trial"] not in ("baseline", "combined") and row["verdict"].startswith(("helps", "hurts")):
        print(row["trial"])' "$summary")
mkdir -p "$out"
# The recipe an arm's trials ran: that of its first seed folder.
recipe_of() { ls -d "$checklist/trials/$1"/seed-* | sort -V | head -1 | sed 's|$|/recipe.toml|'; }
jobs=()
for s in $(seq 0 $((seeds - 1))); do
  for arm in "${arms[@]}"; do
    jobs+=("$arm|$(recipe_of "$arm")|$s")
  done
  [ -n "$reference" ] && jobs+=("reference|$reference|$s")
done
for s in $(seq 0 $((seeds - 1))); do
  for arm in "${decided[@]}"; do
    jobs+=("$arm|$(recipe_of "$arm")|$s")
  done
done

run() {
  IFS='|' read -r arm recipe seed <<<"$1"
  dir=$out/$arm/seed-$seed
  [ -f "$dir/result.json" ] && return 0
  echo "$(date +%T) start $arm seed $seed"
  if [ -f "$dir/recipe.toml" ]; then # killed before: continue from its checkpoint
    set -- train --run-dir "$dir" --resume --threads 1
  else
    set -- train --recipe "$recipe" --set "seed=$seed" --set "train.epochs=$epochs" --threads 1 --run-dir "$dir"
  fi
  "$darkmagic" "$@" >/dev/null 2>"$out/$arm-seed-$seed.err" || echo "$arm seed $seed failed (see $out/$arm-seed-$seed.err)"
  echo "$(date +%T) done  $arm seed $seed"
}
export -f run
export out epochs darkmagic
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c 'run "$@"' _ {}
