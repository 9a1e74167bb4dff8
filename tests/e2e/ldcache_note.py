#!/usr/bin/env python3
"""Write, edit and break ldcache notes for the end-to-end tests.

  asm OUT.s --runpath R [--kind K] (--need SONAME | --entry SONAME=PATHS)...
      Assembly for a `.note.nixos.ldcache` section to link into an object:
      the cache note (resolved against R like patchelf does, or the given
      PATHS) and, unless K is 0, the fingerprint note of R for the search
      step of kind K (1 = DT_RUNPATH, 2 = DT_RPATH).
  seed OUT --runpath R --entry SONAME=PATHS...
      The same notes as raw segment bytes (a fuzzing seed, alignment byte
      first).
  edit-dynstr FILE OLD NEW
      Replace the string OLD in FILE's .dynstr by NEW of the same length
      (an in-place DT_RUNPATH edit that leaves the notes alone).
  mutate IN OUT SEED
      Copy IN to OUT with its ldcache notes or their PT_NOTE header broken
      in a way chosen by SEED; prints what was done.

Only 64-bit little-endian ELF (the test machine's) is handled.
"""

import argparse
import os
import random
import shutil
import struct
import sys

NT_LDCACHE = 0x63A86CB6
NT_LDCACHE_FINGERPRINT = 0x63A86CB7
DT_RPATH, DT_RUNPATH = 15, 29
PT_NOTE = 4
SECTION = b".note.nixos.ldcache"


def resolve(runpath, soname):
    """Path list for SONAME along RUNPATH, as patchelf 0.19 records it."""
    entries = []
    for d in runpath.split(":"):
        if (not d.startswith("/") or "$" in d
                or os.path.isdir(os.path.join(d, "glibc-hwcaps"))):
            entries.append("?" + d)
        elif os.path.isfile(os.path.join(d, soname)):
            entries.append("=" + os.path.join(d, soname))
    return ":".join(entries)


MASK = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def rotl(x, n):
    return ((x << n) | (x >> (64 - n))) & MASK


def xxh_round(acc, lane):
    return rotl((acc + lane * P2) & MASK, 31) * P1 & MASK


def xxh64(data):
    """The XXH64 hash (seed 0) the fingerprint note carries (version 2)."""
    word = lambda at, n: int.from_bytes(data[at:at + n], "little")
    at, n = 0, len(data)
    if n >= 32:
        lanes = [(P1 + P2) & MASK, P2, 0, -P1 & MASK]
        while n - at >= 32:
            lanes = [xxh_round(lane, word(at + 8 * i, 8)) for i, lane in enumerate(lanes)]
            at += 32
        h = (rotl(lanes[0], 1) + rotl(lanes[1], 7) + rotl(lanes[2], 12)
             + rotl(lanes[3], 18)) & MASK
        for lane in lanes:
            h = ((h ^ xxh_round(0, lane)) * P1 + P4) & MASK
    else:
        h = P5
    h = (h + n) & MASK
    while n - at >= 8:
        h = (rotl(h ^ xxh_round(0, word(at, 8)), 27) * P1 + P4) & MASK
        at += 8
    if n - at >= 4:
        h = (rotl(h ^ (word(at, 4) * P1 & MASK), 23) * P2 + P3) & MASK
        at += 4
    for b in data[at:]:
        h = rotl(h ^ (b * P5 & MASK), 11) * P1 & MASK
    h ^= h >> 33
    h = h * P2 & MASK
    h ^= h >> 29
    h = h * P3 & MASK
    return h ^ (h >> 32)


def pad4(data):
    return data + b"\0" * (-len(data) % 4)


def note(ntype, desc):
    return struct.pack("<III", 6, len(desc), ntype) + pad4(b"NixOS\0") + pad4(desc)


def notes(args):
    """The bytes of the notes that ARGS ask for."""
    pairs = [(e.split("=", 1)[0], e.split("=", 1)[1]) for e in args.entry]
    pairs += [(s, resolve(args.runpath, s)) for s in args.need]
    desc = b"".join(s.encode() + b"\0" + p.encode() + b"\0"
                    for s, p in sorted(pairs) if p) + b"\0"
    data = note(NT_LDCACHE, desc)
    if args.kind:
        tag = DT_RUNPATH if args.kind == 1 else DT_RPATH
        path = args.runpath.encode()
        data += note(NT_LDCACHE_FINGERPRINT,
                     struct.pack("<IIIIQ", 2, tag, len(path), 0, xxh64(path)))
    return data


def cmd_asm(args):
    data = notes(args)
    lines = ['\t.section .note.GNU-stack,"",@progbits',
             '\t.section .note.nixos.ldcache,"a",@note', "\t.balign 4"]
    lines += ["\t.byte " + ",".join(str(b) for b in data[i:i + 16])
              for i in range(0, len(data), 16)]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


def cmd_seed(args):
    with open(args.out, "wb") as f:
        f.write(b"\0" + notes(args))


class Elf:
    """Section and program headers of a 64-bit little-endian ELF file."""

    def __init__(self, data):
        self.data = data
        (self.phoff, self.shoff) = struct.unpack_from("<QQ", data, 0x20)
        (self.phentsize, self.phnum, self.shentsize, self.shnum,
         shstrndx) = struct.unpack_from("<HHHHH", data, 0x36)
        names = self.section(shstrndx)
        self.sections = {}
        for i in range(self.shnum):
            name_off, = struct.unpack_from("<I", data, self.shoff + i * self.shentsize)
            name = bytes(data[names[0] + name_off:data.index(b"\0", names[0] + name_off)])
            self.sections[name] = self.section(i)

    def section(self, i):
        """(file offset, size) of section I."""
        return struct.unpack_from("<QQ", self.data, self.shoff + i * self.shentsize + 0x18)

    def phdr_covering(self, ptype, offset):
        """File offset of the program header of type PTYPE covering OFFSET."""
        for i in range(self.phnum):
            at = self.phoff + i * self.phentsize
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", self.data, at)
            if p_type == ptype and p_offset <= offset < p_offset + p_filesz:
                return at
        sys.exit(f"no program header of type {ptype} covers offset {offset}")


def cmd_edit_dynstr(args):
    old, new = args.old.encode() + b"\0", args.new.encode() + b"\0"
    if len(old) != len(new):
        sys.exit("edit-dynstr: OLD and NEW must have the same length")
    with open(args.file, "r+b") as f:
        data = bytearray(f.read())
        start, size = Elf(data).sections[b".dynstr"]
        at = data.find(old, start, start + size)
        if at < 0:
            sys.exit(f"edit-dynstr: {args.old!r} not in .dynstr")
        f.seek(at)
        f.write(new)


def layout(data):
    """Where the ldcache notes of DATA are: the section's (offset, size),
    (header offset, descsz) of each note, and the covering PT_NOTE header's
    offset."""
    elf = Elf(data)
    start, size = elf.sections[SECTION]
    heads, off = [], start
    while off < start + size:
        descsz, = struct.unpack_from("<I", data, off + 4)
        heads.append((off, descsz))
        off += 12 + 8 + descsz + (-descsz % 4)
    return start, size, heads, elf.phdr_covering(PT_NOTE, start)


def mutate(data, rng, where):
    """Break the ldcache notes in DATA (a bytearray) in place, at the places
    WHERE (from layout()); return what was done."""
    start, size, heads, phdr = where
    head, descsz = rng.choice(heads)
    desc = head + 20
    word = rng.choice([0, 1, 3, 5, 6, 7, 8, 255, 4095, 0x7fffffff, 0xfffffff0, 0xffffffff,
                       descsz - 1, descsz + 1, descsz + 4, size])
    big = rng.choice([1, 2, 3, 5, 7, 16, 64, 4096, 1 << 20, 1 << 32, 1 << 62, (1 << 64) - 1])
    kind = rng.randrange(13)
    if kind == 0:
        struct.pack_into("<I", data, head, word)
        return f"namesz={word}"
    if kind == 1:
        struct.pack_into("<I", data, head + 4, word)
        return f"descsz={word}"
    if kind == 2:
        data[head + 12 + rng.randrange(8)] ^= 1 << rng.randrange(8)
        return "owner name bit flip"
    if kind == 3:
        for i in range(desc, desc + descsz):
            if data[i] == 0:
                data[i] = ord("A")
        return "no NUL in descriptor"
    if kind == 4:
        data[desc + descsz - 1] = ord("x")
        return "last byte of descriptor set"
    if kind == 5:
        cut = rng.randrange(descsz)
        struct.pack_into("<I", data, head + 4, cut)
        return f"descriptor truncated to {cut}"
    if kind == 6:
        struct.pack_into("<Q", data, phdr + 0x30, big)
        return f"PT_NOTE p_align={big}"
    if kind == 7:
        memsz, = struct.unpack_from("<Q", data, phdr + 0x28)
        new = (memsz + big) % (1 << 64)
        struct.pack_into("<QQ", data, phdr + 0x20, new, new)
        return f"PT_NOTE p_filesz=p_memsz={new}"
    if kind == 8:
        vaddr, = struct.unpack_from("<Q", data, phdr + 0x10)
        new = (vaddr + rng.choice([1, 2, 4, 8, 0x1000, 1 << 40, -4])) % (1 << 64)
        struct.pack_into("<Q", data, phdr + 0x10, new)
        return f"PT_NOTE p_vaddr={new:#x}"
    if kind == 9:
        n = rng.randrange(1, 9)
        for _ in range(n):
            data[start + rng.randrange(size)] = rng.randrange(256)
        return f"{n} random bytes"
    if kind == 10:
        for i in range(start, start + size):
            data[i] = rng.randrange(256)
        return "all random"
    if kind == 11:
        struct.pack_into("<I", data, head + 8, rng.choice([NT_LDCACHE, NT_LDCACHE_FINGERPRINT]))
        return "note type swapped"
    at = desc + rng.randrange(max(descsz, 1))
    data[at] = rng.choice([0, ord(":"), ord("="), ord("?"), ord("/"), ord("$")])
    return f"descriptor byte {at - desc} = {chr(data[at])!r}"


def cmd_mutate(args):
    shutil.copy2(args.input, args.out)
    with open(args.out, "r+b") as f:
        data = bytearray(f.read())
        rng = random.Random(args.seed)
        where = layout(data)
        what = [mutate(data, rng, where) for _ in range(rng.choice([1, 1, 2, 3]))]
        f.seek(0)
        f.write(data)
    print("; ".join(what))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("asm", cmd_asm), ("seed", cmd_seed)):
        p = sub.add_parser(name)
        p.add_argument("out")
        p.add_argument("--runpath", required=True)
        p.add_argument("--kind", type=int, default=1)
        p.add_argument("--need", action="append", default=[])
        p.add_argument("--entry", action="append", default=[])
        p.set_defaults(func=func)
    p = sub.add_parser("edit-dynstr")
    p.add_argument("file")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=cmd_edit_dynstr)
    p = sub.add_parser("mutate")
    p.add_argument("input")
    p.add_argument("out")
    p.add_argument("seed", type=int)
    p.set_defaults(func=cmd_mutate)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
