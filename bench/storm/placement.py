#!/usr/bin/python3
"""How much where the pages lie moves a start-up: two configurations of a kept storm run, timed
in blocks, their page cache kept or dropped between blocks (stdlib only).

  placement.py WORK [A B [BLOCKS [ROUNDS]]]
      WORK: a work directory kept by `LDCACHE_KEEP=1 bench/storm/run.sh ...`.
      A, B: configurations as VARIANT:SCENARIO (default full:5 shrink:5, the floor's two
      stores, which hold the same files). Runs BLOCKS blocks (default 8) of ROUNDS rounds
      (default 100) twice: once keeping the page cache, once dropping both stores' before each
      block (as timing.py does per placement), each block after the plan's warm-up rounds.
      Prints the ratio of medians A/B per block, and their spread: kept, the ratio stays where
      the copies' pages put it; dropped, it moves.
"""

import os
import random
import statistics
import sys

import stats
import timing


def ratio_per_placement(placements):
    """Median of the first configuration's runs over the second's, placement by placement."""
    return [statistics.median(r[0][0] for r in p) / statistics.median(r[1][0] for r in p)
            for p in placements]


def main(argv):
    if len(argv) not in (2, 4, 5, 6):
        raise SystemExit(__doc__)
    plan = timing.load_plan(os.path.join(argv[1], "timing-plan.json"))
    names = argv[2:4] or ["full:5", "shrink:5"]
    count = int(argv[4]) if len(argv) > 4 else 8
    plan["rounds_per_placement"] = int(argv[5]) if len(argv) > 5 else 100
    by_name = {f"{c['variant']}:{c['scenario']}": c for c in plan["configurations"]}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"placement.py: no configuration {', '.join(unknown)} in the plan")
    configs = [by_name[name] for name in names]
    timing.pin_to_one_cpu()
    rng = random.Random(stats.SEED)
    for drop in (False, True):
        ratios = ratio_per_placement(timing.run_placements(configs, count, plan, rng, drop))
        print(f"{'dropped' if drop else 'kept':>7}: {names[0]} / {names[1]} per block "
              f"{' '.join(f'{r:.3f}' for r in ratios)}; range {min(ratios):.3f}–"
              f"{max(ratios):.3f}, sd {statistics.stdev(ratios):.3f}")


if __name__ == "__main__":
    main(sys.argv)
