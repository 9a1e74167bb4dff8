"""The few ELF facts the storm benchmark needs, read by the corpus suite's reader (stdlib only)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "corpus"))
import corpus  # noqa: E402

ET_DYN = 3
EM_X86_64 = 62


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def read(path):
    """A dict of facts, or None when PATH is not a 64-bit x86-64 ELF file.

    Keys: those of corpus.elf_info (type, interp, dynamic, needed, soname, runpath, rpath, ...),
    loads (number of PT_LOAD) and nixos_note (a PT_NOTE holds a note of owner "NixOS": a
    resolution cache)."""
    info = corpus.elf_info(path)
    if info is None or info["class"] != 64 or info["machine"] != EM_X86_64:
        return None
    nixos_bytes, loads = corpus.note_facts(path)
    return dict(info, loads=loads, nixos_note=nixos_bytes > 0)


def walk_files(root):
    """Every regular file and symbolic link under ROOT, sorted, as absolute paths."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            yield os.path.join(dirpath, name)
