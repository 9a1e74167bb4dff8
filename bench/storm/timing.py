#!/usr/bin/python3
"""Start-up times of every configuration in one interleaved block (stdlib only).

  timing.py PLAN.json OUT.json
      PLAN: {"configurations": [{"variant", "scenario", "argv", "env", "files"}...],
             "min_placements", "max_placements", "batch", "warmup", "rounds_per_placement"}.
      Where a file's pages lie in physical memory changes a start-up by several per cent (two
      copies of the same files, timed side by side, differ by up to 7 %; the same copy, its
      page cache dropped and read back, by up to 4 %), which would pass for a loader effect if
      each configuration kept one placement. So the timing comes in placements: the page cache
      of every file under each configuration's FILES directories is dropped
      (posix_fadvise(DONTNEED) after a sync), WARMUP rounds read it back onto new pages and let
      the kernel settle (not timed: the first round after a drop is a quarter slower), then
      ROUNDS_PER_PLACEMENT rounds run every configuration once each, in an order shuffled with
      a fixed seed. Everything runs on one CPU. A run's wall time is taken around spawn and
      wait, its CPU time (user + system) from the child's rusage. After MIN_PLACEMENTS, and
      after every BATCH placements more, the timing goals (stats.time_goals) are judged on
      wall time; while one is "within noise" and MAX_PLACEMENTS is not reached, BATCH more are
      run. OUT gets every run: {"configurations": [[variant, scenario]...], "warmup",
      "rounds_per_placement", "placements": [[[[wall, cpu] per configuration] per round] per
      placement], "undecided": [goal names]}.
"""

import json
import os
import random
import sys
import time

import stats


def pin_to_one_cpu():
    """One CPU for this process and every run (inherited): a run that migrates between CPUs, or
    shares its start with this process on another, is a few per cent noisier."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


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


def drop_page_cache(directories):
    """Drop the cached pages of every regular file under DIRECTORIES (clean pages only: hence
    the sync); the next read puts them on pages the kernel picks anew."""
    os.sync()
    for top in directories:
        for root, _, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:
                    continue  # a symbolic link, a socket: no pages of its own
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def run_placements(configs, count, plan, rng, drop=True):
    """COUNT placements of PLAN's rounds; DROP=False keeps the page cache as it is (to show what
    dropping it changes: placement.py)."""
    directories = sorted({d for c in configs for d in c["files"]})
    placements = []
    for _ in range(count):
        if drop:
            drop_page_cache(directories)
        run_rounds(configs, plan["warmup"], rng)
        placements.append(run_rounds(configs, plan["rounds_per_placement"], rng))
    return placements


def undecided(keys, placements, goals):
    series, blocks = stats.flatten(keys, placements, 0)
    return [name for name, _, _, _, _, v in stats.judge(goals, series, blocks, resamples=500)
            if v == "within noise"]


def load_plan(path):
    """The plan at PATH, each configuration's environment made a dict."""
    with open(path) as f:
        plan = json.load(f)
    for c in plan["configurations"]:
        c["env"] = dict(e.split("=", 1) for e in c["env"])
    return plan


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    plan = load_plan(argv[1])
    configs = plan["configurations"]
    keys = [(c["variant"], c["scenario"]) for c in configs]
    goals = stats.time_goals(sorted({c["variant"] for c in configs}))
    rng = random.Random(stats.SEED)
    pin_to_one_cpu()
    placements = run_placements(configs, plan["min_placements"], plan, rng)
    open_goals = undecided(keys, placements, goals)
    while open_goals and len(placements) < plan["max_placements"]:
        print(f"timing: {len(placements)} placements; within noise: {'; '.join(open_goals)}",
              file=sys.stderr)
        more = min(plan["batch"], plan["max_placements"] - len(placements))
        placements += run_placements(configs, more, plan, rng)
        open_goals = undecided(keys, placements, goals)
    print(f"timing: {len(placements)} placements of {plan['rounds_per_placement']} rounds of "
          f"{len(configs)} configurations", file=sys.stderr)
    with open(argv[2], "w") as f:
        json.dump({"configurations": keys, "warmup": plan["warmup"],
                   "rounds_per_placement": plan["rounds_per_placement"],
                   "placements": placements, "undecided": open_goals}, f)


if __name__ == "__main__":
    main(sys.argv)
