#!/usr/bin/python3
"""Start-up times of every configuration in one interleaved block (stdlib only).

  timing.py PLAN.json OUT.json
      PLAN: {"configurations": [{"variant", "scenario", "argv", "env"}...],
             "min_rounds", "max_rounds", "batch", "warmup"}.
      Each round runs every configuration once, in an order shuffled with a fixed seed; the
      first WARMUP rounds are discarded. A run's wall time is taken around spawn and wait, its
      CPU time (user + system) from the child's rusage. After MIN_ROUNDS, and after every BATCH
      rounds more, the timing goals (stats.time_goals) are judged on wall time; while one is
      "within noise" and MAX_ROUNDS is not reached, BATCH more rounds are run. OUT gets every
      run, round by round: {"configurations": [[variant, scenario]...], "rounds": [[[wall,
      cpu]...]...], "undecided": [goal names]}.
"""

import json
import os
import random
import sys
import time

import stats


def run_once(argv, env):
    """(wall seconds, user + system seconds) of one run, output discarded."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                           (os.POSIX_SPAWN_DUP2, devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, _, usage = os.wait4(pid, 0)
        wall = (time.perf_counter_ns() - start) / 1e9
    finally:
        os.close(devnull)
    return wall, usage.ru_utime + usage.ru_stime


def run_rounds(configs, count, rng):
    rounds = []
    for _ in range(count):
        order = list(range(len(configs)))
        rng.shuffle(order)
        runs = [None] * len(configs)
        for i in order:
            runs[i] = run_once(configs[i]["argv"], configs[i]["env"])
        rounds.append(runs)
    return rounds


def undecided(keys, rounds, goals):
    series = {key: [r[i][0] for r in rounds] for i, key in enumerate(keys)}
    return [name for name, _, _, _, _, v in stats.judge(goals, series, resamples=500)
            if v == "within noise"]


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    with open(argv[1]) as f:
        plan = json.load(f)
    configs = plan["configurations"]
    for c in configs:
        c["env"] = dict(e.split("=", 1) for e in c["env"])
    keys = [(c["variant"], c["scenario"]) for c in configs]
    goals = stats.time_goals(sorted({c["variant"] for c in configs}))
    rng = random.Random(stats.SEED)

    run_rounds(configs, plan["warmup"], rng)
    rounds = run_rounds(configs, plan["min_rounds"], rng)
    open_goals = undecided(keys, rounds, goals)
    while open_goals and len(rounds) < plan["max_rounds"]:
        print(f"timing: {len(rounds)} rounds; within noise: {'; '.join(open_goals)}",
              file=sys.stderr)
        rounds += run_rounds(configs, min(plan["batch"], plan["max_rounds"] - len(rounds)), rng)
        open_goals = undecided(keys, rounds, goals)
    print(f"timing: {len(rounds)} rounds of {len(configs)} configurations", file=sys.stderr)
    with open(argv[2], "w") as f:
        json.dump({"configurations": keys, "rounds": rounds, "undecided": open_goals}, f)


if __name__ == "__main__":
    main(sys.argv)
