"""Refusals counted by reason, each reason with its own bound (shared by the corpus suites).

A reason's kind is its text with numbers replaced by N, so that one cause counts once whatever
offsets it names. A refusal by the injector's own check is a defect of the injector: bound 0."""

import re
from collections import Counter

# Reasons known on real files, and the share of the files each may reach (percent).
KNOWN = {
    # patchelf 0.14/0.15 moved .dynstr past the segments it mapped (see patchelf-versions.sh).
    "unreadable ELF: DT_STRTAB N+N is not inside any loaded segment's file bytes": 0.5,
}
OTHER = 0.1  # any other reason, each
TOTAL = 1.0  # all reasons together
SELF_CHECK = "the injector's own check"


def kind(reason):
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "N", reason)


def judge(reasons, files):
    """(ok, lines): every kind of reason within its bound, and all of them within TOTAL."""
    counts = Counter(kind(r) for r in reasons)
    ok, lines = True, []
    for reason, n in counts.most_common():
        bound = 0.0 if SELF_CHECK in reason else KNOWN.get(reason, OTHER)
        share = 100.0 * n / max(1, files)
        within = share <= bound
        ok &= within
        lines.append(f"{n} ({share:.2f} %, bound {bound} %) {reason}{'' if within else '  <- over'}")
    total = 100.0 * len(reasons) / max(1, files)
    ok &= total <= TOTAL
    lines.append(f"all reasons: {len(reasons)} of {files} ({total:.2f} %, bound {TOTAL} %)")
    return ok, lines
