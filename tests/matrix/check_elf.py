#!/usr/bin/python3
"""Checks of the matrix scripts that read readelf's and eu-elflint's output.

check_elf.py notecover FILE
    The resolution-cache note (owner NixOS) is where the loader can read it: `readelf -lW` shows a
    PT_NOTE whose file range holds the whole `.note.nixos.ldcache` section (`readelf -SW`; without
    section headers, the NixOS notes found in the PT_NOTE segments), the notes of that PT_NOTE parse
    exactly to its end, p_filesz == p_memsz, and a read-only PT_LOAD maps it at the PT_NOTE's
    p_vaddr. Exit 1 with the reasons otherwise.

check_elf.py elflint ORIGINAL REWRITTEN
    `eu-elflint --gnu-ld` on both; prints the messages of REWRITTEN that ORIGINAL does not have
    (offsets inside note segments/sections normalised away), leaving out "unknown object file note
    type ... with owner name 'NixOS'" (eu-elflint does not know the ldcache note types). Exit 1 if
    any is left.

check_elf.py elflint-raw FILE
    The normalised message set of one file (for the README).
"""

import re
import struct
import subprocess
import sys

SECTION = ".note.nixos.ldcache"


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=False)


def readelf_header(path):
    out = run("readelf", "-hW", path).stdout
    little = "little endian" in out
    klass = 64 if "ELF64" in out else 32
    return ("<" if little else ">"), klass


def segments(path):
    """[(type, offset, vaddr, filesz, memsz, flags, align)] from readelf -lW."""
    out = run("readelf", "-lW", path).stdout
    segs = []
    for line in out.splitlines():
        m = re.match(
            r"\s+([A-Z_a-z0-9+]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+"
            r"(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]+?)\s+(0x[0-9a-f]+)\s*$",
            line,
        )
        if m:
            segs.append(
                (
                    m.group(1),
                    int(m.group(2), 16),
                    int(m.group(3), 16),
                    int(m.group(5), 16),
                    int(m.group(6), 16),
                    m.group(7).replace(" ", ""),
                    int(m.group(8), 16),
                )
            )
    return segs


def note_section(path):
    """(offset, size) of .note.nixos.ldcache from readelf -SW, None if absent, or 'noshdr'."""
    out = run("readelf", "-SW", path).stdout
    if "There are no sections in this file" in out:
        return "noshdr"
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m and m.group(1) == SECTION:
            if m.group(2) != "NOTE":
                raise SystemExit("%s has type %s, not NOTE" % (SECTION, m.group(2)))
            return int(m.group(4), 16), int(m.group(5), 16)
    return None


def walk_notes(data, endian, offset, size):
    """[(noteoffset, notesize, owner, type)] of the notes in data[offset:offset+size], or raise."""
    notes = []
    pos, end = offset, offset + size
    while pos < end:
        if end - pos < 12:
            raise ValueError("trailing %d bytes at 0x%x" % (end - pos, pos))
        namesz, descsz, ntype = struct.unpack(endian + "III", data[pos : pos + 12])
        total = 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        if pos + total > end:
            raise ValueError("note at 0x%x overruns its segment" % pos)
        owner = data[pos + 12 : pos + 12 + namesz].rstrip(b"\0").decode("latin-1")
        notes.append((pos, total, owner, ntype))
        pos += total
    return notes


def notecover(path):
    errors = []
    endian, _ = readelf_header(path)
    data = open(path, "rb").read()
    segs = segments(path)
    if not segs:
        raise SystemExit("readelf -lW shows no program headers")
    notes = [s for s in segs if s[0] == "NOTE"]
    sec = note_section(path)
    if sec is None:
        raise SystemExit("no %s section" % SECTION)

    # Where the NixOS notes are, per PT_NOTE.
    nixos = []
    for s in notes:
        try:
            # An 8-aligned PT_NOTE (GNU property notes) has the same layout for 4-byte fields.
            parsed = walk_notes(data, endian, s[1], s[3])
        except ValueError as e:
            errors.append("PT_NOTE at 0x%x: %s" % (s[1], e))
            continue
        for n in parsed:
            if n[2] == "NixOS":
                nixos.append((s, n))
    if not nixos:
        errors.append("no PT_NOTE holds a NixOS note")
    if sec == "noshdr":
        regions = sorted({(n[0], n[0] + n[1]) for _, n in nixos})
        if regions:
            lo, hi = regions[0][0], regions[-1][1]
            sec = (lo, hi - lo)
    if isinstance(sec, tuple):
        off, size = sec
        covering = [s for s in notes if s[1] <= off and off + size <= s[1] + s[3]]
        if not covering:
            errors.append("no PT_NOTE covers %s [0x%x, 0x%x)" % (SECTION, off, off + size))
        for s, n in nixos:
            if not (off <= n[0] and n[0] + n[1] <= off + size):
                errors.append("NixOS note at 0x%x outside %s" % (n[0], SECTION))
    for s in {s for s, _ in nixos}:
        _, off, vaddr, filesz, memsz, _, align = s
        if filesz != memsz:
            errors.append("PT_NOTE at 0x%x: filesz 0x%x != memsz 0x%x" % (off, filesz, memsz))
        if align not in (4, 8):
            errors.append("PT_NOTE at 0x%x: alignment %d" % (off, align))
        loads = [l for l in segs if l[0] == "LOAD" and l[1] <= off and off + filesz <= l[1] + l[3]]
        if not loads:
            errors.append("PT_NOTE at 0x%x (size 0x%x) is in no PT_LOAD's file range" % (off, filesz))
        for l in loads:
            if l[2] + (off - l[1]) != vaddr:
                errors.append(
                    "PT_NOTE at 0x%x: p_vaddr 0x%x, but its PT_LOAD maps it at 0x%x"
                    % (off, vaddr, l[2] + (off - l[1]))
                )
            if "W" in l[5]:
                errors.append("PT_NOTE at 0x%x is in a writable PT_LOAD" % off)
    if errors:
        print("\n".join(errors))
        return 1
    return 0


def elflint_messages(path):
    out = run("eu-elflint", "--gnu-ld", path)
    msgs = set()
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if not line or line == "No errors":
            continue
        line = re.sub(r"\bat offset \d+", "at offset N", line)
        line = re.sub(r"^phdr\[\d+\]", "phdr[N]", line)
        msgs.add(line)
    return msgs


def elflint(orig, new):
    before = elflint_messages(orig)
    after = elflint_messages(new)
    allowed = re.compile(r"unknown object file note type \d+ with owner name 'NixOS'")
    added = sorted(m for m in after - before if not allowed.search(m))
    for m in added:
        print("new eu-elflint message: " + m)
    return 1 if added else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "notecover":
        return notecover(sys.argv[2])
    if len(sys.argv) == 4 and sys.argv[1] == "elflint":
        return elflint(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == "elflint-raw":
        for m in sorted(elflint_messages(sys.argv[2])):
            print(m)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
