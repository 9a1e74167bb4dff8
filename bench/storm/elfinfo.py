"""The few ELF facts the storm benchmark needs, read from the program headers (stdlib only)."""

import mmap
import os
import struct

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 5, 14, 15, 29
ET_DYN = 3
EM_X86_64 = 62


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def read(path):
    """A dict of facts, or None when PATH is not a 64-bit little-endian x86-64 ELF file.

    Keys: type, interp, dynamic, needed, soname, runpath, rpath, loads (number of PT_LOAD),
    nixos_note (a PT_NOTE holds a note of owner "NixOS": a resolution cache)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 64:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _parse(data)


def _parse(data):
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_machine != EM_X86_64:
        return None
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    info = {"type": e_type, "interp": None, "dynamic": False, "needed": [], "soname": None,
            "runpath": None, "rpath": None, "loads": 0, "nixos_note": False}
    loads, dynamic = [], None
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + 56 > len(data):
            break
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, off)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            info["interp"] = data[p_offset:p_offset + p_filesz].split(b"\0")[0].decode()
        elif p_type == PT_NOTE:
            info["nixos_note"] |= has_nixos_note(data, p_offset, p_offset + p_filesz)
    info["loads"] = len(loads)
    if dynamic is None:
        return info
    info["dynamic"] = True
    entries = []
    for off in range(dynamic[0], min(len(data), sum(dynamic)) - 15, 16):
        tag, value = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        entries.append((tag, value))
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    base = next((strtab - vaddr + offset for vaddr, offset, size in loads
                 if strtab is not None and vaddr <= strtab < vaddr + size), None)
    if base is None:
        return info

    def string(index):
        end = data.find(b"\0", base + index)
        return data[base + index:end].decode("utf-8", "replace")

    for tag, value in entries:
        if tag == DT_NEEDED:
            info["needed"].append(string(value))
        elif tag in (DT_SONAME, DT_RPATH, DT_RUNPATH):
            key = {DT_SONAME: "soname", DT_RPATH: "rpath", DT_RUNPATH: "runpath"}[tag]
            info[key] = string(value)
    return info


def has_nixos_note(data, offset, end):
    end = min(end, len(data))
    while offset + 12 <= end:
        namesz, descsz, _ = struct.unpack_from("<III", data, offset)
        if data[offset + 12:offset + 12 + namesz].rstrip(b"\0") == b"NixOS":
            return True
        offset += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def walk_files(root):
    """Every regular file and symbolic link under ROOT, sorted, as absolute paths."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            yield os.path.join(dirpath, name)
