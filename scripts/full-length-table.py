#!/usr/bin/env python3
"""Tables of scripts/full-length.sh's runs (issue 41, items 3 and 4), as Markdown on stdout.

Usage: scripts/full-length-table.py CHECKLIST_DIR FULL_DIR

1. Plain (the checklist's baseline), combined and the reference recipe at full length: test
   accuracy per seed, mean and standard deviation, and each recipe's difference from plain,
   paired by seed, with its 95% Student-t interval.
2. Short against full: for every variant the checklist decided, its effect in the checklist's
   short trials (summary.csv: validation split, the checklist's own interval) and at full length
   (paired by seed with the full-length baseline, on the validation split the short trials
   scored and on the test split), the tricks whose sign flips, and Spearman's rank correlation
   of the short and full effects.
Only the standard library: the t quantiles are the two-sided 95% table values.
"""
import csv
import json
import math
import pathlib
import statistics
import sys

# Student's t, 0.975 quantile, for 1..10 degrees of freedom (any statistics table).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def runs(arm_dir):
    """{seed: (validation accuracy, test accuracy)} of the finished runs under arm_dir."""
    out = {}
    for seed_dir in sorted(arm_dir.glob("seed-*")):
        result = seed_dir / "result.json"
        if result.is_file():
            r = json.loads(result.read_text())
            if r.get("status") == "completed":
                out[int(seed_dir.name.split("-")[1])] = (r["final_val_acc"], r["test_acc"])
    return out


def paired(arm, base, split):
    """Mean paired difference in pp, its 95% t interval and the seed count (split 0 val, 1 test)."""
    seeds = sorted(set(arm) & set(base))
    d = [100 * (arm[s][split] - base[s][split]) for s in seeds]
    if len(d) < 2:
        return None
    m = statistics.mean(d)
    h = T975[len(d) - 2] * statistics.stdev(d) / math.sqrt(len(d))
    return m, m - h, m + h, len(d)


def fmt(p):
    return "-" if p is None else f"{p[0]:+.2f} [{p[1]:+.2f}, {p[2]:+.2f}] ({p[3]} seeds)"


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    for pos, i in enumerate(order):
        r[i] = pos + 1.0
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    return statistics.correlation(ra, rb) if len(a) > 2 else float("nan")


def main(checklist, full):
    arms = {d.name: runs(d) for d in sorted(full.iterdir()) if d.is_dir()}
    base = arms["baseline"]
    print("## Plain, combined and tuned at full length (test split)\n")
    print("| recipe | seeds | test accuracy per seed (%) | mean ± std (%) | minus plain, paired (pp, 95% interval) |")
    print("|---|---|---|---|---|")
    for arm, name in [("baseline", "plain"), ("combined", "combined"), ("reference", "tuned")]:
        if arm not in arms or not arms[arm]:
            continue
        acc = [100 * arms[arm][s][1] for s in sorted(arms[arm])]
        sd = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        diff = "-" if arm == "baseline" else fmt(paired(arms[arm], base, 1))
        per_seed = ", ".join(f"{a:.2f}" for a in acc)
        print(f"| {name} | {len(acc)} | {per_seed} | {statistics.mean(acc):.2f} ± {sd:.2f} | {diff} |")
    summary = {row["trial"]: row for row in csv.DictReader(open(checklist / "summary.csv"))}
    decided = [t for t, row in summary.items() if row["verdict"].startswith(("helps", "hurts")) and t in arms]
    print("\n## Short trials against full length, every decided variant\n")
    print("| variant | verdict (short) | short effect, validation (pp, checklist interval) | full effect, validation (pp) | full effect, test (pp) | sign |")
    print("|---|---|---|---|---|---|")
    short, long_ = [], []
    for t in decided:
        row = summary[t]
        s = 100 * float(row["diff"])
        ival = f"{s:+.2f} [{100 * float(row['ci_low']):+.2f}, {100 * float(row['ci_high']):+.2f}]"
        val, test = paired(arms[t], base, 0), paired(arms[t], base, 1)
        sign = "-" if test is None else ("same" if (s > 0) == (test[0] > 0) else "flips")
        print(f"| {t} | {row['verdict']} | {ival} | {fmt(val)} | {fmt(test)} | {sign} |")
        if test is not None:
            short.append(s)
            long_.append(test[0])
    if len(short) > 2:
        rho = spearman(short, long_)
        print(f"\nSpearman's rank correlation of short and full (test) effects over {len(short)} variants: {rho:+.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
