#!/usr/bin/python3
"""The loader's start-up instructions of two storm runs side by side (stdlib only).

  instructions.py BEFORE_WORK AFTER_WORK
      Reads the callgrind counts both runs recorded (`LDCACHE_KEEP=1 bench/storm/run.sh ...`,
      results.jsonl) and prints a markdown table: per RUNPATH variant and scenario, the loader's
      start-up (`_dl_start`) and dependency mapping (`_dl_map_object_deps`), before and after.
      BEFORE is typically an older commit's tool and loader run with this commit's bench/storm.
"""

import json
import os
import sys

SCENARIOS = {"1": "stock", "2": "ldcache notes", "3": "patchelf notes", "4": "shrinkwrap",
             "5": "floor"}


def counts(work):
    out = {}
    with open(os.path.join(work, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["key"] == "instructions":
                out[(r["variant"], r["scenario"])] = r["value"]
    return out


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    before, after = counts(argv[1]), counts(argv[2])
    print("| RUNPATH | scenario | start-up before | start-up after | change "
          "| dependency mapping before | after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for variant in ("full", "shrink"):
        for n, name in SCENARIOS.items():
            b, a = before.get((variant, n)), after.get((variant, n))
            if not b or not a:
                continue
            change = (a["startup"] - b["startup"]) / b["startup"]
            print(f"| {variant} | {n} {name} | {b['startup']:,} | {a['startup']:,} | "
                  f"{change:+.2%} | {b['map_deps']:,} | {a['map_deps']:,} |")


if __name__ == "__main__":
    main(sys.argv)
