"""File descriptors at fleet scale.

A run over hundreds of hosts holds two lock files per host for its whole length, and one
session socket or more per BMC: past the soft RLIMIT_NOFILE many shells start with (1024),
and past FD_SETSIZE (1024), the most a select(2) can watch — which pyghmi's I/O thread
uses (oob's own IPMI sessions no longer go through it; other libraries' waits may). So the limit is raised to what the process may take, and descriptors oob
keeps for long (its locks) are moved above FD_SETSIZE, leaving the numbers below it to
the sockets of libraries that wait with select.
"""

from __future__ import annotations

import fcntl
import os
import resource

#: the most a select(2) can watch: descriptors at or above it are out of its reach
FD_SETSIZE = 1024
#: an unlimited hard limit still stops at the kernel's fs.nr_open (1,048,576 by default)
_NR_OPEN_DEFAULT = 1 << 20


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (never lowers it); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _NR_OPEN_DEFAULT if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):  # more than the kernel grants: keep what we have
            pass
    return soft, hard


def above_select_range(fd: int) -> int:
    """``fd`` moved to a number at or above FD_SETSIZE (close-on-exec), the original closed;
    ``fd`` itself when it is there already or the limit leaves no room (a small run)."""
    if fd >= FD_SETSIZE:
        return fd
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FD_SETSIZE)
    except OSError:
        return fd
    os.close(fd)
    return high
