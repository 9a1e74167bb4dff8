#!/usr/bin/python3
"""Helpers of tests/corpus/run.sh and bench/embed.sh (standard library only).

  corpus.py layout STORE DEBDIR PATCHELF
      Lay out a Nix-like store: the ELF files of /usr/bin, /usr/sbin and /usr/lib/x86_64-linux-gnu
      grouped by owning Debian package (store/<hash>-sys-<package>/{bin,sbin,lib}), every .deb of
      DEBDIR unpacked into store/<hash>-<package>-<version>; then give each dynamically linked
      x86-64 ELF file a store-like DT_RUNPATH (patchelf --set-rpath) and write STORE/../manifest.json.
  corpus.py probe MANIFEST STORE OUT.json --dlopen-helper H [--kinds programs,dlopen,elflint]
                  [--previous PREVIOUS.json]
      Run every eligible program with --version and --help, dlopen every shared library, run
      eu-elflint on every dynamic ELF file; write the observations.  With --previous: run only the
      programs run there (and that did not time out there).
  corpus.py compare BEFORE.json BEFORE2.json AFTER.json KIND REPRO PRISTINE STORE
      Compare the observations of one kind (programs, dlopen, elflint); exit 1 on a change.
  corpus.py notes LDCACHE PRISTINE STORE CHANGED.list OUTDIR
      `ldcache verify` and `ldcache show --json` on every changed file: OUTDIR/verify.out and
      OUTDIR/show.out list the files rejected.
  corpus.py sizes MANIFEST PRISTINE WORK
      Size growth of the files that changed (JSON on stdout).
"""

import concurrent.futures
import hashlib
import json
import mmap
import os
import random
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile

SYSTEM_DIRS = [("/usr/bin", "bin"), ("/usr/sbin", "sbin"), ("/usr/lib/x86_64-linux-gnu", "lib")]
PT_DYNAMIC, PT_INTERP, PT_LOAD = 2, 3, 1
DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 5, 14, 15, 29
EM_X86_64 = 62
ET_DYN = 3
JOBS = max(1, min(2, os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------------
# ELF facts

def elf_info(path):
    """The dynamic-linking facts of an ELF file, or None when it is not a (readable) ELF file."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return None
            size = os.fstat(f.fileno()).st_size
            if size < 64:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return _parse(m, size)
    except (OSError, ValueError, struct.error):
        return None


def _parse(m, size):
    cls, data = m[4], m[5]
    if cls not in (1, 2) or data not in (1, 2):
        return None
    e = "<" if data == 1 else ">"
    if cls == 2:
        e_type, e_machine = struct.unpack_from(e + "HH", m, 16)
        e_phoff, = struct.unpack_from(e + "Q", m, 32)
        e_phentsize, e_phnum = struct.unpack_from(e + "HH", m, 54)
        ph_fmt, dyn_fmt = e + "IIQQQQQQ", e + "qQ"
    else:
        e_type, e_machine = struct.unpack_from(e + "HH", m, 16)
        e_phoff, = struct.unpack_from(e + "I", m, 28)
        e_phentsize, e_phnum = struct.unpack_from(e + "HH", m, 42)
        ph_fmt, dyn_fmt = e + "IIIIIIII", e + "iI"
    info = {"class": 64 if cls == 2 else 32, "machine": e_machine, "type": e_type,
            "interp": None, "dynamic": False, "needed": [], "soname": None,
            "runpath": None, "rpath": None}
    loads, dyn = [], None
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + struct.calcsize(ph_fmt) > size:
            return info
        v = struct.unpack_from(ph_fmt, m, off)
        if cls == 2:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = v
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _flags, _align = v
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dyn = (p_offset, p_filesz)
        elif p_type == PT_INTERP and p_offset + p_filesz <= size:
            info["interp"] = bytes(m[p_offset:p_offset + p_filesz]).split(b"\0")[0].decode("latin-1")
    if dyn is None:
        return info
    info["dynamic"] = True
    entsize = struct.calcsize(dyn_fmt)
    entries = []
    off, end = dyn[0], min(dyn[0] + dyn[1], size)
    while off + entsize <= end:
        tag, val = struct.unpack_from(dyn_fmt, m, off)
        if tag == 0:
            break
        entries.append((tag, val))
        off += entsize
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        return info
    base = None
    for vaddr, offset, filesz in loads:
        if vaddr <= strtab < vaddr + filesz:
            base = strtab - vaddr + offset
    if base is None:
        return info

    def string(i):
        start = base + i
        stop = m.find(b"\0", start)
        return bytes(m[start:stop]).decode("latin-1") if 0 <= start < size and stop > 0 else ""

    for tag, val in entries:
        if tag == DT_NEEDED:
            info["needed"].append(string(val))
        elif tag == DT_SONAME:
            info["soname"] = string(val)
        elif tag == DT_RUNPATH:
            info["runpath"] = string(val)
        elif tag == DT_RPATH:
            info["rpath"] = string(val)
    return info


def note_facts(path):
    """Bytes of the NixOS-owned note records (headers, name, descriptor, padding) that PT_NOTE
    segments map, and how many load segments (mappings at start-up) the file has."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        cls, data = m[4], m[5]
        e = "<" if data == 1 else ">"
        if cls == 2:
            e_phoff, = struct.unpack_from(e + "Q", m, 32)
            e_phentsize, e_phnum = struct.unpack_from(e + "HH", m, 54)
            ph_fmt = e + "IIQQQQQQ"
        else:
            e_phoff, = struct.unpack_from(e + "I", m, 28)
            e_phentsize, e_phnum = struct.unpack_from(e + "HH", m, 42)
            ph_fmt = e + "IIIIIIII"
        total, loads = 0, 0
        for i in range(e_phnum):
            v = struct.unpack_from(ph_fmt, m, e_phoff + i * e_phentsize)
            p_type = v[0]
            p_offset, p_filesz = (v[2], v[5]) if cls == 2 else (v[1], v[4])
            loads += p_type == 1  # PT_LOAD
            if p_type != 4:  # PT_NOTE
                continue
            off, end = p_offset, p_offset + p_filesz
            while off + 12 <= end:
                namesz, descsz, _ = struct.unpack_from(e + "III", m, off)
                size = 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
                if bytes(m[off + 12:off + 12 + namesz]).rstrip(b"\0") == b"NixOS":
                    total += size
                off += size
        return total, loads


# ---------------------------------------------------------------------------------------------
# layout

def store_hash(text):
    """32 characters of Nix's base-32 alphabet derived from TEXT, as in a store path."""
    digest = hashlib.sha256(text.encode()).digest()
    alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
    n = int.from_bytes(digest[:20], "big")
    return "".join(alphabet[(n >> (5 * i)) & 31] for i in range(32))


def store_name(name):
    return store_hash("ldcache-corpus:" + name) + "-" + name


def dpkg_owners():
    """Map of canonical path -> owning Debian package, from dpkg's file lists."""
    owners = {}
    info = "/var/lib/dpkg/info"
    for entry in sorted(os.listdir(info)):
        if not entry.endswith(".list"):
            continue
        package = entry[:-5].split(":")[0]
        with open(os.path.join(info, entry), encoding="utf-8", errors="replace") as f:
            for line in f:
                path = line.rstrip("\n")
                if not path.startswith("/"):
                    continue
                owners.setdefault(canonical(path), package)
    return owners


def canonical(path):
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def strip_special_bits(path):
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o6000:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o6000)


def copy_system(store, log):
    owners = dpkg_owners()
    copied = {}  # (dev, ino) -> destination, to keep hard links hard links
    count = 0
    for source_root, sub in SYSTEM_DIRS:
        for dirpath, dirnames, filenames in os.walk(source_root):
            dirnames.sort()
            # Symbolic links to directories show up among dirnames: keep them as links.
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                source = os.path.join(dirpath, name)
                st = os.lstat(source)
                is_link = stat.S_ISLNK(st.st_mode)
                if not is_link and not (stat.S_ISREG(st.st_mode) and elf_info(source) is not None):
                    continue
                package = owners.get(canonical(source), "unowned")
                relative = os.path.relpath(source, source_root)
                dest = os.path.join(store, store_name("sys-" + package), sub, relative)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if is_link:
                    os.symlink(os.readlink(source), dest)
                    continue
                key = (st.st_dev, st.st_ino)
                if key in copied:
                    os.link(copied[key], dest)
                else:
                    shutil.copy2(source, dest)
                    strip_special_bits(dest)
                    copied[key] = dest
                count += 1
    log(f"copied {count} ELF files of the system directories")


def unpack_debs(store, debdir, log):
    debs = sorted(d for d in os.listdir(debdir) if d.endswith(".deb"))
    for deb in debs:
        path = os.path.join(debdir, deb)
        fields = subprocess.run(["dpkg-deb", "-f", path, "Package", "Version"], check=True,
                                capture_output=True, text=True).stdout
        meta = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
        version = re.sub(r"[^A-Za-z0-9.+_-]", "_", meta["Version"])
        dest = os.path.join(store, store_name(f"{meta['Package']}-{version}"))
        subprocess.run(["dpkg-deb", "-x", path, dest], check=True)
        for dirpath, _dirs, files in os.walk(dest):
            for name in files:
                strip_special_bits(os.path.join(dirpath, name))
    log(f"unpacked {len(debs)} packages")


def is_library_name(name):
    return re.search(r"\.so(\.|$)", name) is not None


def scan_store(store):
    """All files of the store: (package dir name, relative path, is symlink)."""
    for package in sorted(os.listdir(store)):
        root = os.path.join(store, package)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                path = os.path.join(dirpath, name)
                yield package, path, os.path.islink(path)


def layout(store, debdir, patchelf):
    def log(msg):
        print(f"corpus: {msg}", file=sys.stderr, flush=True)

    os.makedirs(store)
    copy_system(store, log)
    unpack_debs(store, debdir, log)

    providers = {}  # soname -> [lib dirs]
    lib_dirs = set()
    files = []
    for package, path, is_link in scan_store(store):
        name = os.path.basename(path)
        if is_library_name(name):
            directory = os.path.dirname(path)
            lib_dirs.add(directory)
            dirs = providers.setdefault(name, [])
            if directory not in dirs:
                dirs.append(directory)
        if not is_link and os.path.isfile(path):
            files.append((package, path))
    lib_dirs = sorted(lib_dirs)

    manifest, plan, seen = [], [], set()
    sys_prefix = {sub: src for src, sub in SYSTEM_DIRS}
    for package, path in files:
        info = elf_info(path)
        if info is None:
            continue
        rel = os.path.relpath(path, store)
        entry = {"path": rel, "package": package, "class": info["class"],
                 "machine": info["machine"], "type": info["type"],
                 "interp": info["interp"], "dynamic": info["dynamic"],
                 "needed": info["needed"], "soname": info["soname"]}
        parts = rel.split("/")
        if package.split("-", 1)[1].startswith("sys-") and parts[1] in sys_prefix:
            entry["system_path"] = os.path.join(sys_prefix[parts[1]], *parts[2:])
        manifest.append(entry)
        st = os.stat(path)
        if (st.st_dev, st.st_ino) in seen:  # a hard link to a file already planned
            continue
        seen.add((st.st_dev, st.st_ino))
        if (info["dynamic"] and info["needed"] and info["machine"] == EM_X86_64
                and info["class"] == 64 and not package.endswith("-sys-libc6")):
            plan.append((path, runpath_for(store, package, path, info, providers, lib_dirs)))

    log(f"setting DT_RUNPATH of {len(plan)} files")

    def set_rpath(item):
        path, runpath = item
        r = subprocess.run([patchelf, "--set-rpath", runpath, path], capture_output=True, text=True)
        return path, runpath, r.returncode, r.stderr.strip()

    failed = []
    by_path = {os.path.join(store, e["path"]): e for e in manifest}
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        for path, runpath, rc, err in pool.map(set_rpath, plan):
            entry = by_path[path]
            if rc == 0:
                entry["runpath"] = runpath
            else:
                failed.append(path)
                entry["set_rpath_error"] = err
    log(f"patchelf --set-rpath failed on {len(failed)} files (left as they were)")
    with open(os.path.join(os.path.dirname(store), "manifest.json"), "w") as f:
        json.dump({"store": store, "files": manifest}, f, indent=0)


def runpath_for(store, package, path, info, providers, lib_dirs):
    """A Nix-like run path: the file's own $ORIGIN entries, every store directory that holds one of
    its needed sonames (its own package's first), three irrelevant store library directories mixed
    in, and /lib/x86_64-linux-gnu last so that what is not in the store is still found."""
    old = (info["runpath"] or info["rpath"] or "").split(":")
    kept = [d for d in old if "$ORIGIN" in d or "${ORIGIN}" in d]
    own_root = os.path.join(store, package) + "/"
    own, others = [], []
    for soname in info["needed"]:
        for directory in providers.get(soname, []):
            target = own if directory.startswith(own_root) else others
            if directory not in own and directory not in others:
                target.append(directory)
    relevant = own + others
    rng = random.Random(path)
    candidates = [d for d in rng.sample(lib_dirs, min(len(lib_dirs), 8)) if d not in relevant][:3]
    entries = list(relevant)
    for directory in candidates:
        entries.insert(rng.randint(len(own), len(entries)), directory)
    return ":".join(kept + entries + ["/lib/x86_64-linux-gnu"])


# ---------------------------------------------------------------------------------------------
# probe: behaviour of programs, dlopen of libraries, eu-elflint

DENY = re.compile(
    r"^(reboot|shutdown|halt|poweroff|init|telinit|runlevel|kill.*|pkill|skill|snice|xkill|mkfs.*|"
    r"mke2fs|mkswap|mkdosfs|mklost\+found|fsck.*|e2fsck|debugfs|tune2fs|resize2fs|e2label|e2image|"
    r"e4crypt|e4defrag|badblocks|dumpe2fs|fdisk|sfdisk|cfdisk|parted|partx|addpart|delpart|"
    r"resizepart|partprobe|wipefs|blkdiscard|blockdev|fstrim|fsfreeze|losetup|zramctl|swaplabel|dd|"
    r"shred|rm|rmdir|unlink|truncate|userdel|useradd|usermod|groupdel|groupadd|groupmod|passwd|"
    r"chpasswd|chgpasswd|gpasswd|adduser|addgroup|deluser|delgroup|newusers|vipw|vigr|pwck|grpck|"
    r"pwconv|pwunconv|grpconv|grpunconv|chage|chsh|chfn|expiry|newgrp|sg|faillog|lastlog|"
    r"systemctl|systemd.*|journalctl|loginctl|hostnamectl|timedatectl|localectl|busctl|networkctl|"
    r"service|invoke-rc\.d|start-stop-daemon|apt.*|dpkg.*|update-.*|ldconfig.*|ip|ifup|ifdown|"
    r"ifconfig|route|arp|tc|bridge|ethtool|iptables.*|ip6tables.*|nft|ebtables.*|arptables.*|"
    r"xtables.*|dhclient|mount|umount|swapon|swapoff|sysctl|modprobe|insmod|rmmod|depmod|kmod|"
    r"lsmod|modinfo|chroot|pivot_root|switch_root|su|sudo|sudoedit|runuser|login|sulogin|agetty|"
    r"getty|nologin|setpriv|nsenter|unshare|capsh|setcap|chcpu|ctrlaltdel|hwclock|rtcwake|wall|"
    r"write|mesg|logsave|chattr|chmod|chown|chgrp|chcon|mv|cp|ln|install|mknod|mkfifo|mktemp|touch|"
    r"sync|tee|split|csplit|ldattach|readprofile|rfkill|renice|ionice|chrt|taskset|setsid|nohup|"
    r"timeout|watch|xargs|env|nice|stdbuf|script|scriptlive|scriptreplay|flock|fuser|locale-gen|"
    r"vi|vim.*|nano|editor|pager|less|more|most|sensible-.*|x-.*|top|htop|tmux|screen|ssh.*|scp|"
    r"sftp|rsync|curl|wget|git.*|gpg.*|dirmngr|pinentry.*|dbus-.*|gdbus|gsettings|gio|"
    r"pip.*|python.*|perl.*|node|npm|npx|ruby.*|tclsh.*|wish.*|.*-daemon|sshd|cron|crond|atd|anacron|"
    r"rsyslogd|udevd|udevadm|containerd.*|dockerd|docker.*|ctr|runc|inetd|xinetd|avahi.*|cupsd|nscd|"
    r"dnsmasq|ntpd|chronyd|getcap|iconvconfig|zic|sln|pam.*|unix_chkpwd|mkhomedir_helper|"
    r"cpgr|cppw|visudo|reset|tput|tset|clear|stty|setterm|openvt|chvt|fgconsole|kbd_mode|loadkeys|"
    r"setfont|dumpkeys|showkey|setleds|setmetamode|deallocvt)$")


def helpers_env(scratch):
    return {"LC_ALL": "C", "HOME": scratch, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "TERM": "dumb"}


def drop_privileges_prefix():
    """Run probes as nobody without new privileges when that can work (we are root)."""
    if (os.geteuid() != 0 or shutil.which("setpriv") is None
            or os.environ.get("LDCACHE_CORPUS_AS_ROOT") == "1"):
        return []
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"]


def run_one(argv, timeout=5):
    """Run argv in a fresh scratch directory; (status, stdout) where status is an int exit code,
    'signal N' or 'timeout'."""
    scratch = tempfile.mkdtemp(prefix="ldcache-corpus-")
    os.chmod(scratch, 0o777)
    try:
        p = subprocess.Popen(drop_privileges_prefix() + argv, cwd=scratch, env=helpers_env(scratch),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
            status = p.returncode if p.returncode >= 0 else f"signal {-p.returncode}"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            out, _ = p.communicate()
            status = "timeout"
        return status, out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def digest(out):
    return hashlib.sha256(out).hexdigest()


def eligible_programs(manifest):
    progs = []
    for e in manifest["files"]:
        sp = e.get("system_path", "")
        if not (sp.startswith("/usr/bin/") or sp.startswith("/usr/sbin/")):
            continue
        if not (e["dynamic"] and e["interp"] and e["machine"] == EM_X86_64):
            continue
        if DENY.match(os.path.basename(sp)):
            continue
        progs.append(e)
    return progs


def libraries(manifest):
    return [e for e in manifest["files"]
            if e["type"] == ET_DYN and e["dynamic"] and e["machine"] == EM_X86_64
            and e["class"] == 64
            and (e["soname"] or (is_library_name(os.path.basename(e["path"])) and not e["interp"]))]


def probe(manifest_path, store, out_path, only_from, dlopen_helper, kinds):
    with open(manifest_path) as f:
        manifest = json.load(f)
    previous = None
    if only_from:
        with open(only_from) as f:
            previous = json.load(f)
    result = {"programs": {}, "dlopen": {}, "elflint": {}}
    pool = concurrent.futures.ThreadPoolExecutor(JOBS)

    # Programs: eligible when the system's own copy prints a version in time.
    if "programs" not in kinds:
        jobs = []
    elif previous is None:
        progs = eligible_programs(manifest)

        def precondition(e):
            status, out = run_one([e["system_path"], "--version"])
            return e, status != "timeout" and out.strip() != b""

        progs = [e for e, ok in pool.map(precondition, progs) if ok]
        jobs = [(e["path"], mode) for e in progs for mode in ("--version", "--help")]
        result["eligible_programs"] = len(progs)
    else:
        jobs = [tuple(k.rsplit(" ", 1)) for k, v in previous["programs"].items()
                if v["status"] != "timeout"]
        result["eligible_programs"] = previous["eligible_programs"]

    def run_program(job):
        rel, mode = job
        status, out = run_one([os.path.join(store, rel), mode])
        return f"{rel} {mode}", {"status": status, "stdout": digest(out), "bytes": len(out),
                                 "head": out[:200].decode("utf-8", "replace")}

    result["programs"] = dict(pool.map(run_program, jobs))

    # Libraries.
    libs = [e["path"] for e in libraries(manifest)] if "dlopen" in kinds else []

    def run_dlopen(rel):
        status, out = run_one([dlopen_helper, os.path.join(store, rel)])
        return rel, {"status": status, "message": out.decode("utf-8", "replace").strip()}

    result["dlopen"] = dict(pool.map(run_dlopen, libs))

    # eu-elflint.
    dynamic = sorted(e["path"] for e in manifest["files"] if e["dynamic"]) if "elflint" in kinds else []

    def run_elflint(rel):
        path = os.path.join(store, rel)
        p = subprocess.run(["eu-elflint", "--gnu-ld", "-q", path], capture_output=True, text=True,
                           errors="replace", timeout=600)
        lines = [l.replace(path, "FILE") for l in (p.stdout + p.stderr).splitlines() if l.strip()]
        return rel, {"status": p.returncode, "messages": lines}

    result["elflint"] = dict(pool.map(run_elflint, dynamic))
    pool.shutdown()
    with open(out_path, "w") as f:
        json.dump(result, f, indent=0, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# compare

# The one message eu-elflint is expected to add: it does not know the NixOS note types.
NOTE_MESSAGE = re.compile(r"^(phdr\[\d+\]|section \[\s*\d+\] '\.note\.nixos\.ldcache'): "
                          r"unknown object file note type \d+ with owner name 'NixOS' at offset \d+$")


def outputs_overlap(pristine_program, embedded_program, mode, seen_before, after, runs=10):
    """Whether the pristine and the embedded program can print the same thing.

    Some programs are not deterministic (groff --version collects its subprograms' output in an
    order that varies about one run in ten), so one differing run proves nothing: run both
    again, alternating, and stop as soon as one output was seen from both."""
    seen_before, seen_after = set(seen_before), {after}
    for _ in range(runs):
        status, out = run_one([pristine_program, mode])
        seen_before.add((status, digest(out)))
        status, out = run_one([embedded_program, mode])
        seen_after.add((status, digest(out)))
        if seen_before & seen_after:
            return True
    return False


def compare(before_path, before2_path, after_path, kind, repro, pristine, store):
    with open(before_path) as f:
        before_all = json.load(f)
    before = before_all[kind]
    with open(after_path) as f:
        after = json.load(f)[kind]
    before2 = {}
    if before2_path != "-":
        with open(before2_path) as f:
            before2 = json.load(f)[kind]
    compared, unstable, changes, timeouts, flaky = 0, [], [], 0, []
    allowed_new = {}
    for key, b in sorted(before.items()):
        if kind == "programs" and b["status"] == "timeout":
            timeouts += 1
            continue
        if key not in after:
            changes.append((key, "missing after"))
            continue
        a = after[key]
        if kind == "programs":
            seen_before = {(b["status"], b["stdout"])}
            b2 = before2.get(key)
            if b2 is not None:
                seen_before.add((b2["status"], b2["stdout"]))
            if len(seen_before) > 1:
                unstable.append(key)
            compared += 1
            if (a["status"], a["stdout"]) not in seen_before:
                rel, mode = key.rsplit(" ", 1)
                if outputs_overlap(os.path.join(pristine, rel), os.path.join(store, rel), mode,
                                   seen_before, (a["status"], a["stdout"])):
                    flaky.append(key)
                else:
                    changes.append((key, f"before: {b['status']} {b['head']!r} after: "
                                         f"{a['status']} {a['head']!r}"))
        elif kind == "dlopen":
            compared += 1
            if (a["status"] == 0) != (b["status"] == 0) or (
                    b["status"] != 0 and not isinstance(b["status"], int)
                    and a["status"] != b["status"]):
                changes.append((key, f"before: {b['status']} {b['message']} after: "
                                     f"{a['status']} {a['message']}"))
        else:
            compared += 1
            new = [m for m in a["messages"] if m not in b["messages"]]
            other = [m for m in new if not NOTE_MESSAGE.search(m)]
            for m in new:
                if NOTE_MESSAGE.search(m):
                    pattern = re.sub(r"\d+", "N", m)
                    allowed_new.setdefault(pattern, set()).add(key)
            if other:
                changes.append((key, "new messages: " + " | ".join(other[:5])))
    for key, detail in changes[:50]:
        print(f"  {kind} changed: {key}: {detail}")
        rel = key.rsplit(" ", 1)[0] if kind == "programs" else key
        directory = os.path.join(repro, kind, rel.replace("/", "_"))
        os.makedirs(directory, exist_ok=True)
        shutil.copy2(os.path.join(pristine, rel), os.path.join(directory, "pristine"))
        shutil.copy2(os.path.join(store, rel), os.path.join(directory, "embedded"))
        with open(os.path.join(directory, "README"), "w") as f:
            f.write(f"{kind}: {key}\n{detail}\nThe embedded file was {os.path.join(store, rel)}\n")
    if changes:
        print(f"  repro files under {repro}/{kind}/")
    for m, files in sorted(allowed_new.items()):
        print(f"  {kind}: expected new message on {len(files)} files: {m}")
    summary = {"compared": compared, "changed": len(changes), "unstable": len(unstable),
               "timeouts": timeouts}
    if kind == "programs":
        summary["flaky"] = len(flaky)
    if kind == "programs":
        ok = sum(1 for k, v in before.items() if k in after and v["status"] == 0)
        summary["exit_0_before"] = ok
        summary["programs"] = before_all.get("eligible_programs")
    if kind == "dlopen":
        summary["loaded_before"] = sum(1 for v in before.values() if v["status"] == 0)
        summary["loaded_after"] = sum(1 for v in after.values() if v["status"] == 0)
    print("  " + json.dumps(summary))
    if flaky:
        print(f"  {kind}: {len(flaky)} differed once but printed what the pristine program printed on a rerun: "
              + ", ".join(flaky[:5]))
    if unstable:
        print(f"  {kind}: {len(unstable)} gave two outputs before embedding (compared by "
              "rerunning both), e.g. " + ", ".join(unstable[:5]))
    # A program that timed out is not compared: more than a few of them would hide changes.
    too_many_timeouts = timeouts > max(2, compared // 50)
    if too_many_timeouts:
        print(f"  {kind}: {timeouts} timed out before embedding, more than 2 % of those compared")
    # Nor may reruns explain away more than a few differences.
    too_many_flaky = len(flaky) > max(2, compared // 100)
    if too_many_flaky:
        print(f"  {kind}: {len(flaky)} passed only on a rerun, more than 1 % of those compared")
    return 1 if changes or too_many_timeouts or too_many_flaky else 0


# ---------------------------------------------------------------------------------------------
# notes: ldcache verify and ldcache show on every changed file

def notes(ldcache, pristine, store, changed_list, out_dir):
    with open(changed_list) as f:
        changed = [line.rstrip("\n") for line in f if line.strip()]

    def one(rel):
        v = subprocess.run([ldcache, "verify", os.path.join(pristine, rel), os.path.join(store, rel)],
                           capture_output=True, text=True, errors="replace")
        verify = None if v.returncode == 0 else (v.stdout + v.stderr).strip().replace("\n", " ")
        s = subprocess.run([ldcache, "show", "--json", os.path.join(store, rel)],
                           capture_output=True, text=True, errors="replace")
        show = None
        try:
            j = json.loads(s.stdout)
            if s.returncode != 0 or not j["note"] or not j["current"]:
                show = f"exit {s.returncode}, note {j['note']}, current {j['current']}: {j['reason']}"
        except (ValueError, KeyError):
            show = f"exit {s.returncode}: {(s.stdout + s.stderr).strip()[:300]}"
        return rel, verify, show

    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        results = list(pool.map(one, changed))
    with open(os.path.join(out_dir, "verify.out"), "w") as f:
        for rel, verify, _ in results:
            if verify:
                f.write(f"{rel}: {verify}\n")
    with open(os.path.join(out_dir, "show.out"), "w") as f:
        for rel, _, show in results:
            if show:
                f.write(f"{rel}: {show}\n")


# ---------------------------------------------------------------------------------------------
# sizes

def sizes(manifest_path, pristine, work):
    with open(manifest_path) as f:
        manifest = json.load(f)
    growth, seen, note_bytes, more_loads = [], set(), [], 0
    for e in manifest["files"]:
        st = os.lstat(os.path.join(work, e["path"]))
        if st.st_ino in seen:  # hard links count once
            continue
        seen.add(st.st_ino)
        a = os.lstat(os.path.join(pristine, e["path"])).st_size
        b = st.st_size
        if a != b or not same_bytes(os.path.join(pristine, e["path"]), os.path.join(work, e["path"])):
            growth.append(b - a)
            try:
                note, loads_after = note_facts(os.path.join(work, e["path"]))
                _, loads_before = note_facts(os.path.join(pristine, e["path"]))
            except (OSError, ValueError, struct.error):
                note, loads_after, loads_before = 0, 0, 0
            note_bytes.append(note)
            more_loads += loads_after > loads_before
    growth.sort()
    note_bytes.sort()

    def pct(p):
        return growth[min(len(growth) - 1, int(p * len(growth)))] if growth else 0

    median = growth[len(growth) // 2] if growth else 0
    print(json.dumps({"changed": len(growth), "median": median, "p90": pct(0.9),
                      "max": growth[-1] if growth else 0, "total": sum(growth),
                      "same_size": sum(1 for g in growth if g == 0),
                      "more_loads": more_loads,
                      "note_median": note_bytes[len(note_bytes) // 2] if note_bytes else 0}))


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("layout")
    p.add_argument("store")
    p.add_argument("debdir")
    p.add_argument("patchelf")
    p = sub.add_parser("probe")
    p.add_argument("manifest")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--dlopen-helper", required=True)
    p.add_argument("--kinds", default="programs,dlopen,elflint")
    p.add_argument("--previous")
    p = sub.add_parser("compare")
    for name in ("before", "before2", "after", "kind", "repro", "pristine", "store"):
        p.add_argument(name)
    p = sub.add_parser("notes")
    for name in ("ldcache", "pristine", "store", "changed", "out_dir"):
        p.add_argument(name)
    p = sub.add_parser("sizes")
    for name in ("manifest", "pristine", "work"):
        p.add_argument(name)
    p = sub.add_parser("info")
    p.add_argument("paths", nargs="*")
    a = parser.parse_args(argv[1:])
    if a.command == "layout":
        layout(a.store, a.debdir, a.patchelf)
    elif a.command == "probe":
        probe(a.manifest, a.store, a.out, a.previous, a.dlopen_helper, a.kinds.split(","))
    elif a.command == "compare":
        return compare(a.before, a.before2, a.after, a.kind, a.repro, a.pristine, a.store)
    elif a.command == "notes":
        notes(a.ldcache, a.pristine, a.store, a.changed, a.out_dir)
    elif a.command == "sizes":
        sizes(a.manifest, a.pristine, a.work)
    else:
        for path in a.paths:
            print(path, json.dumps(elf_info(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
