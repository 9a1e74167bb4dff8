"""Medians with bootstrap confidence intervals, and the timing goals (stdlib only).

Times come in rounds: one run of every configuration per round, in a shuffled order, so two
configurations' runs of one round saw the same machine. Rounds come in placements: the files'
page cache dropped and read back onto new physical pages (timing.py), which moves a start-up by
several per cent. The bootstrap resamples whole placements, each with all its rounds: a drift
that slows every configuration of a round cancels out of a ratio, and the interval covers the
spread between placements as well as between runs.
"""

import random
import statistics

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20261201  # fixed: the same times give the same intervals


def flatten(keys, placements, field):
    """({key: [FIELD of each round's run]}, [[round indices] per placement]) of timing.py's
    placements (FIELD 0: wall time, 1: CPU time)."""
    rounds = [r for p in placements for r in p]
    series = {k: [r[i][field] for r in rounds] for i, k in enumerate(keys)}
    blocks, start = [], 0
    for p in placements:
        blocks.append(range(start, start + len(p)))
        start += len(p)
    return series, blocks


def bootstrap(blocks, statistic, resamples=RESAMPLES):
    """(estimate, low, high): STATISTIC of all rounds, with a percentile interval at LEVEL from
    STATISTIC of the rounds of resampled lists of BLOCKS (lists of round indices)."""
    rng = random.Random(SEED)

    def rounds(chosen):
        return [i for b in chosen for i in b]

    estimates = sorted(statistic(rounds(rng.choices(blocks, k=len(blocks))))
                       for _ in range(resamples))
    return statistic(rounds(blocks)), *percentiles(estimates)


def median_ci(values, blocks, resamples=RESAMPLES):
    """(median, low, high) of a list of numbers, one per round."""
    return bootstrap(blocks, lambda rounds: statistics.median(values[i] for i in rounds),
                     resamples)


def ratio_ci(a, b, blocks, resamples=RESAMPLES):
    """(ratio, low, high) of median(a) / median(b); a[i] and b[i] come from round i."""
    assert len(a) == len(b) and a
    med = statistics.median
    return bootstrap(blocks, lambda rounds: med(a[i] for i in rounds) / med(b[i] for i in rounds),
                     resamples)


def percentiles(sorted_estimates):
    tail = (1 - LEVEL) / 2
    last = len(sorted_estimates) - 1
    return (sorted_estimates[round(tail * last)], sorted_estimates[round((1 - tail) * last)])


def verdict(low, high, bound):
    """'held' when the whole interval is at or below BOUND, 'missed' when it is above, else
    'within noise' (more runs may decide it)."""
    if high <= bound:
        return "held"
    if low > bound:
        return "missed"
    return "within noise"


# (name, numerator, denominator, bound on the ratio of medians). A configuration is
# (variant, scenario); the scenarios are those of run.sh.
def time_goals(variants):
    goals = []
    for v in variants:
        goals += [
            (f"{v}: notes at or below shrinkwrap", (v, "2"), (v, "4"), 1.0),
            (f"{v}: notes within 3 % of the floor", (v, "2"), (v, "5"), 1.03),
            (f"{v}: ldcache's notes at or below patchelf's", (v, "2"), (v, "3"), 1.0),
            (f"{v}: notes below the stock loader", (v, "2"), (v, "1"), 1.0),
        ]
    if "full" in variants and "shrink" in variants:
        goals.append(("notes with full RUNPATHs within 1 % of notes with shrunk ones",
                      ("full", "2"), ("shrink", "2"), 1.01))
    return goals


def judge(goals, series, blocks, resamples=RESAMPLES):
    """[(name, bound, ratio, low, high, verdict)] for GOALS on SERIES {configuration: [value per
    round]}, rounds grouped in BLOCKS."""
    out = []
    for name, a, b, bound in goals:
        ratio, low, high = ratio_ci(series[a], series[b], blocks, resamples)
        out.append((name, bound, ratio, low, high, verdict(low, high, bound)))
    return out
