#!/usr/bin/python3
"""Run a command under the seccomp part of a systemd unit's sandbox, made with libseccomp rather than by systemd
(no systemd runs as process 1 on the test machines): SystemCallFilter= (its groups expanded by
`systemd-analyze syscall-filter`), SystemCallErrorNumber=, SystemCallArchitectures=native, RestrictAddressFamilies=
and MemoryDenyWriteExecute=, with no_new_privs set, as systemd sets them up. tests/integration/sandbox.sh adds the
rest (the user, no capabilities, a read-only file system but the storage root).

    sandbox.py UNIT COMMAND [ARG...]
"""
import errno
import os
import socket
import subprocess
import sys

import seccomp

PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
AF_MAX = 46


def settings(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and line[0] not in "#;[" and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


_groups = {}


def expand(name):
    """A system call, or every system call of a group (@name), with its nested groups."""
    if not name.startswith("@"):
        return {name}
    if name not in _groups:
        listing = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                                 check=True).stdout
        calls = set()
        for line in listing.splitlines()[1:]:
            line = line.strip()
            if line and not line.startswith("#"):
                calls |= expand(line)
        _groups[name] = calls
    return _groups[name]


def main():
    unit, cmd = sys.argv[1], sys.argv[2:]
    s = settings(unit)
    allowed = set()
    for value in s.get("SystemCallFilter", []):  # an allow list, then what later lines take out of it (~)
        deny = value.startswith("~")
        names = set().union(*(expand(n) for n in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    if not allowed:
        sys.exit("sandbox.py: the unit has no SystemCallFilter= allow list")
    err = s.get("SystemCallErrorNumber", ["EPERM"])[-1]
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(getattr(errno, err)))  # native architecture only
    conditional = {}
    families = s.get("RestrictAddressFamilies", [""])[-1].split()
    if families:
        nums = {getattr(socket, fam) for fam in families}
        conditional["socket"] = [(seccomp.ALLOW, seccomp.Arg(0, seccomp.EQ, n)) for n in sorted(nums)] + \
            [(seccomp.ERRNO(errno.EAFNOSUPPORT), seccomp.Arg(0, seccomp.EQ, n)) for n in range(AF_MAX) if n not in nums]
    if s.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        wx = PROT_WRITE | PROT_EXEC
        for call in ("mmap", "mmap2"):
            conditional[call] = [(seccomp.ALLOW, seccomp.Arg(2, seccomp.MASKED_EQ, wx, v)) for v in (0, PROT_WRITE, PROT_EXEC)]
        for call in ("mprotect", "pkey_mprotect"):
            conditional[call] = [(seccomp.ALLOW, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))]
        conditional["shmat"] = [(seccomp.ALLOW, seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, 0))]
    for call in sorted(allowed):
        try:
            if call in conditional:
                for action, arg in conditional[call]:
                    f.add_rule(action, call, arg)
            else:
                f.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):
            pass  # not a system call of this architecture: systemd skips it too
    f.load()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
