"""Medians with bootstrap confidence intervals, and the timing goals (stdlib only).

Times come in rounds: one run of every configuration per round, in a shuffled order, so two
configurations' runs of one round saw the same machine. The bootstrap resamples whole rounds,
which keeps that pairing: a drift that slows every configuration of a round cancels out of a
ratio instead of widening its interval.
"""

import random
import statistics

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20261201  # fixed: the same times give the same intervals


def bootstrap(n, statistic, resamples=RESAMPLES):
    """(estimate, low, high): STATISTIC of rounds 0..N-1, with a percentile interval at LEVEL from
    STATISTIC of resampled lists of rounds."""
    rng = random.Random(SEED)
    estimates = sorted(statistic(rng.choices(range(n), k=n)) for _ in range(resamples))
    return statistic(range(n)), *percentiles(estimates)


def median_ci(values, resamples=RESAMPLES):
    """(median, low, high) of a list of numbers."""
    return bootstrap(len(values), lambda rounds: statistics.median(values[i] for i in rounds),
                     resamples)


def ratio_ci(a, b, resamples=RESAMPLES):
    """(ratio, low, high) of median(a) / median(b); a[i] and b[i] come from round i."""
    assert len(a) == len(b) and a
    med = statistics.median
    return bootstrap(len(a), lambda rounds: med(a[i] for i in rounds) / med(b[i] for i in rounds),
                     resamples)


def ratio_of_ratios_ci(a, b, c, d, resamples=RESAMPLES):
    """(r, low, high) of (median(a) / median(b)) / (median(c) / median(d)), all from the same
    rounds: a comparison with the same comparison of a control taken out."""
    med = statistics.median

    def value(rounds):
        return (med(a[i] for i in rounds) / med(b[i] for i in rounds)) / (
            med(c[i] for i in rounds) / med(d[i] for i in rounds))

    return bootstrap(len(a), value, resamples)


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


def judge(goals, series, resamples=RESAMPLES):
    """[(name, bound, ratio, low, high, verdict)] for GOALS on SERIES {configuration: [value per
    round]}."""
    out = []
    for name, a, b, bound in goals:
        ratio, low, high = ratio_ci(series[a], series[b], resamples)
        out.append((name, bound, ratio, low, high, verdict(low, high, bound)))
    return out
