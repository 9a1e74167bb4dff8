#!/usr/bin/python3
"""Resolve the run-time dependency closure of a Debian package from the system's apt lists.

  closure.py PACKAGE [--exclude NAME]...   JSON on stdout

Depends and Pre-Depends, recursively (breadth first from PACKAGE). Of each group of alternatives
the first installable one is taken: a real package with a candidate version, or a virtual package
with a provider (a provider already in the closure if there is one, else the first by name).
Excluded packages (libc6: glibc comes from our own build) satisfy a group but are not followed.
Version constraints are not checked: the candidates of one Debian release satisfy each other.

Output: {"root": NAME, "order": [names, BFS order], "excluded": [...], "unsatisfied": [...],
         "packages": {NAME: {"version", "arch", "deb", "deps": [chosen names, in order]}}}
"deb" is the file name `apt-get download NAME=VERSION` writes.
"""

import json
import re
import subprocess
import sys


def apt_cache(*args):
    return subprocess.run(["apt-cache", *args], capture_output=True, text=True).stdout


def paragraphs(text):
    """RFC 822 paragraphs as dicts (continuation lines joined)."""
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Package" in fields:
            yield fields


class Apt:
    """Candidate records and providers, asked of apt-cache in batches and remembered."""

    def __init__(self):
        self.records = {}       # name -> record, or None for "no candidate"
        self.providers_of = {}  # virtual name -> provider names with a candidate

    def prefetch(self, names):
        """Ask for the records of NAMES, then for the providers of those without one."""
        missing = sorted({n for n in names if n not in self.records})
        if not missing:
            return
        for rec in paragraphs(apt_cache("show", "--no-all-versions", *missing)):
            self.records.setdefault(rec["Package"], rec)
        virtual = [n for n in missing if self.records.setdefault(n, None) is None]
        if virtual:
            found = self.reverse_provides(virtual)
            self.prefetch([p for names in found.values() for p in names])
            for name in virtual:
                self.providers_of[name] = [p for p in found.get(name, []) if self.records.get(p)]

    @staticmethod
    def reverse_provides(names):
        """{name: sorted provider names} from one `apt-cache showpkg` call."""
        found, current, in_section = {}, None, False
        for line in apt_cache("showpkg", *names).splitlines():
            if line.startswith("Package: "):
                current, in_section = line.split()[1], False
            elif line.startswith("Reverse Provides:"):
                in_section = True
            elif re.match(r"^[A-Z][A-Za-z ]*: ?$", line) or not line.strip():
                in_section = False
            elif in_section and current:
                found.setdefault(current, set()).add(line.split()[0])
        return {name: sorted(providers) for name, providers in found.items()}

    def record(self, name):
        self.prefetch([name])
        return self.records[name]

    def providers(self, name):
        self.prefetch([name])
        return self.providers_of.get(name, [])


def groups(record):
    """The Pre-Depends and Depends of a record: a list of groups of alternative names."""
    text = ", ".join(record[f] for f in ("Pre-Depends", "Depends") if record.get(f))
    result = []
    for group in filter(None, (g.strip() for g in text.split(","))):
        alternatives = []
        for alt in group.split("|"):
            name = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alt).strip()
            alternatives.append(name.split(":")[0])  # python3:any, foo:amd64
        result.append(alternatives)
    return result


def choose(apt, alternatives, chosen, excluded):
    """The package satisfying a group: a name, "" for an excluded one, None if none can."""
    for name in alternatives:
        if name in excluded:
            return ""
        if apt.records.get(name):
            return name
        providers = apt.providers(name)
        if providers:
            return next((p for p in providers if p in chosen), providers[0])
    return None


def deb_name(record):
    version = record["Version"].replace(":", "%3a")
    return f"{record['Package']}_{version}_{record['Architecture']}.deb"


def closure(root, excluded):
    apt = Apt()
    if not apt.record(root):
        raise SystemExit(f"closure.py: no installable package {root!r} in the apt lists")
    packages, order, queue, unsatisfied, seen_excluded = {}, [], [root], [], set()
    chosen = {root}
    while queue:
        level, queue = queue, []
        apt.prefetch(level)
        apt.prefetch([a for name in level for g in groups(apt.record(name)) for a in g])
        for name in level:
            record = apt.record(name)
            deps = []
            for alternatives in groups(record):
                pick = choose(apt, alternatives, chosen, excluded)
                if pick is None:
                    unsatisfied.append(f"{name}: {' | '.join(alternatives)}")
                elif pick == "":
                    seen_excluded.update(a for a in alternatives if a in excluded)
                elif pick not in deps:
                    deps.append(pick)
                    if pick not in chosen:
                        chosen.add(pick)
                        queue.append(pick)
            packages[name] = {"version": record["Version"], "arch": record["Architecture"],
                              "deb": deb_name(record), "deps": deps}
            order.append(name)
    return {"root": root, "order": order, "excluded": sorted(seen_excluded),
            "unsatisfied": unsatisfied, "packages": packages}


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package")
    parser.add_argument("--exclude", action="append", default=[])
    a = parser.parse_args(argv[1:])
    json.dump(closure(a.package, set(a.exclude)), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv)
