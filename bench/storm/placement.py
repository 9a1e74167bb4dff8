#!/usr/bin/python3
"""How much where the pages lie moves a start-up: two configurations of a kept storm run, timed
in blocks, their page cache kept or dropped between blocks (stdlib only).

  placement.py WORK [A B [BLOCKS [ROUNDS]]]
      WORK: a work directory kept by `LDCACHE_KEEP=1 bench/storm/run.sh ...`.
      A, B: configurations as VARIANT:SCENARIO (default full:5 shrink:5, the floor's two
      stores, which hold the same files). Runs BLOCKS blocks (default 8) of ROUNDS rounds
      (default 100) twice: once keeping the page cache, once dropping both stores' before each
      block (as timing.py does per placement). Prints the ratio of medians A/B per block, and
      their spread: kept, the ratio stays where the copies' pages put it; dropped, it moves.
"""

import json
import os
import random
import statistics
import sys

import stats
import timing


def blocks(configs, count, rounds, drop, rng):
    ratios = []
    for _ in range(count):
        if drop:
            timing.drop_page_cache(sorted({d for c in configs for d in c["files"]}))
        timing.run_rounds(configs, 3, rng)
        times = timing.run_rounds(configs, rounds, rng)
        ratios.append(statistics.median(t[0][0] for t in times) /
                      statistics.median(t[1][0] for t in times))
    return ratios


def main(argv):
    if len(argv) not in (2, 4, 5, 6):
        raise SystemExit(__doc__)
    with open(os.path.join(argv[1], "timing-plan.json")) as f:
        plan = json.load(f)
    names = argv[2:4] or ["full:5", "shrink:5"]
    count = int(argv[4]) if len(argv) > 4 else 8
    rounds = int(argv[5]) if len(argv) > 5 else 100
    configs = []
    for name in names:
        variant, scenario = name.split(":")
        c = next(c for c in plan["configurations"]
                 if c["variant"] == variant and c["scenario"] == scenario)
        configs.append(dict(c, env=dict(e.split("=", 1) for e in c["env"])))
    timing.pin_to_one_cpu()
    rng = random.Random(stats.SEED)
    for drop in (False, True):
        ratios = blocks(configs, count, rounds, drop, rng)
        print(f"{'dropped' if drop else 'kept':>7}: {names[0]} / {names[1]} per block "
              f"{' '.join(f'{r:.3f}' for r in ratios)}; range {min(ratios):.3f}–"
              f"{max(ratios):.3f}, sd {statistics.stdev(ratios):.3f}")


if __name__ == "__main__":
    main(sys.argv)
