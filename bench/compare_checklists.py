"""Compares the verdicts of two checklists of the same plan, e.g. a sequential run and a fixed
10-seed run: one row per variant, and the number of decided verdicts (helps, hurts, equivalent)
that contradict each other. Used for BENCHMARKS.md's sequential-seeds figures.
Run: python3 bench/compare_checklists.py SEQUENTIAL/summary.json FIXED/summary.json
"""
import json
import sys

seq = json.load(open(sys.argv[1]))
fix = {t["label"]: t for t in json.load(open(sys.argv[2]))["trials"]}
decided = ("helps", "hurts", "equivalent")
contradictions = 0
print("| variant | sequential: seeds, verdict, difference (pp) | fixed: verdict, difference (pp), corrected interval |")
print("|---|---|---|")
for t in seq["trials"]:
    f = fix[t["label"]]
    sv, fv = t["verdict"], f["verdict"]
    contradictions += sv in decided and fv in decided and sv != fv
    lo, hi = f["ci"]
    print(
        f"| {t['label']} | {t['decision']['seeds']}, {sv}, {100 * t['diff']:+.2f} "
        f"| {fv}, {100 * f['diff']:+.2f}, [{100 * lo:+.2f}, {100 * hi:+.2f}] |"
    )
runs = (json.load(open(sys.argv[1]))["design"]["runs"], json.load(open(sys.argv[2]))["design"]["runs"])
print(f"contradictions: {contradictions}; training runs: {runs[0]} against {runs[1]}")
