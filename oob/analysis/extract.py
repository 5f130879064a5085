"""The kernel log out of a LOCAL vmcore, with ``makedumpfile --dump-dmesg VMCORE LOGFILE``.

Used when the distribution saved no kernel log beside the dump.  The vmcore is never
copied: makedumpfile reads it where it is.  Every run has a deadline (the process group is
killed on expiry: makedumpfile and anything it started), what it writes is bounded, and a
failure is one :class:`~oob.errors.DumpUnreadable` line naming the dump and makedumpfile's
own reason (a truncated dump: ``check_release: Can't get the address of system_utsname.``).

:func:`run_tool` is the bounded runner :mod:`oob.analysis.crashtool` uses as well.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from oob.dump.formats import HEAD_SIZE, VmcoreFormat, detect_format
from oob.errors import DumpUnreadable
from oob.safetext import printable

#: default deadline for makedumpfile, seconds
DEFAULT_TIMEOUT = 60.0
#: the log kept: its last 16 MiB (the end is where the crash is); the kernel's own buffer
#: is at most 32 MiB (CONFIG_LOG_BUF_SHIFT <= 25)
DEFAULT_MAX_BYTES = 16 << 20
#: makedumpfile is stopped when its output passes this: no real log is that big
HARD_LIMIT = 64 << 20
#: where makedumpfile lives on the distributions oob knows (RHEL: /usr/sbin)
TOOL_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
_POLL = 0.05
_MESSAGE_TAIL = 4096


@dataclass(frozen=True)
class ToolOutcome:
    """How a bounded run ended."""

    returncode: int | None
    timed_out: bool = False
    #: the output passed its limit and the run was stopped
    over_limit: bool = False

    @property
    def signal_name(self) -> str | None:
        """``SIGBUS`` when the process was killed by a signal (and not by us)."""
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


@dataclass(frozen=True)
class ExtractedLog:
    """The kernel log makedumpfile read from a vmcore."""

    text: str
    #: ``makedumpfile --dump-dmesg /var/crash/.../vmcore``: the ``source`` of an analysis
    source: str
    #: bytes makedumpfile wrote
    size: int
    #: True when only the last ``max_bytes`` were kept
    truncated: bool

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "size": self.size, "truncated": self.truncated}


def find_tool(name: str) -> str | None:
    """The path of ``name`` on $PATH or in the usual sbin/bin directories, or None."""
    path = os.environ.get("PATH", "")
    extra = os.pathsep.join(d for d in TOOL_DIRS if d not in path.split(os.pathsep))
    return shutil.which(name, path=os.pathsep.join(p for p in (path, extra) if p))


def tool_env(home: str) -> dict[str, str]:
    """A small, predictable environment: C locale, a private HOME (no ``~/.crashrc``)."""
    return {
        "PATH": os.environ.get("PATH", os.pathsep.join(TOOL_DIRS)),
        "LC_ALL": "C",
        "HOME": home,
    }


def run_tool(
    argv: list[str],
    *,
    output_fd: int,
    timeout: float,
    max_output: int,
    cwd: str,
    watch: tuple[Path, ...] = (),
) -> ToolOutcome:
    """Run ``argv`` with stdin from /dev/null and stdout+stderr into ``output_fd``, in its
    own process group; kill the whole group when ``timeout`` seconds pass or when the
    output (or any file in ``watch``) grows past ``max_output`` bytes."""
    deadline = time.monotonic() + timeout
    # argv is built here, never by a shell
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=tool_env(cwd),
        start_new_session=True,
        close_fds=True,
    )
    timed_out = over_limit = False
    try:
        while True:
            # WNOWAIT: the exited leader stays a zombie, so its pid (the group's id) cannot be
            # reused before the group is killed below
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            if time.monotonic() >= deadline:
                timed_out = True
            elif _largest(output_fd, watch) > max_output:
                over_limit = True
            if timed_out or over_limit:
                break
            time.sleep(_POLL)
    finally:
        # the group goes, leader and whatever it left behind (crash's pipes to tail/grep),
        # before the leader is reaped
        _kill_group(process.pid)
        returncode: int | None = process.wait()
    if timed_out or over_limit:
        returncode = None
    return ToolOutcome(returncode, timed_out=timed_out, over_limit=over_limit)


def _largest(output_fd: int, watch: tuple[Path, ...]) -> int:
    sizes = [os.fstat(output_fd).st_size]
    for path in watch:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            continue
    return max(sizes)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail_lines(path: Path, *, limit: int = _MESSAGE_TAIL) -> list[str]:
    """The non-empty lines of the last ``limit`` bytes of ``path``, made printable."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except OSError:
        return []
    return [printable(line.strip()) for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


def regular_vmcore(vmcore: Path) -> os.stat_result:
    """``stat`` of the dump; DumpUnreadable unless it is a regular file."""
    try:
        info = vmcore.stat()
    except OSError as exc:
        raise DumpUnreadable(f"cannot read {printable(vmcore)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DumpUnreadable(f"{printable(vmcore)} is not a regular file")
    return info


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path`` when it is a regular file, else DumpUnreadable.

    O_NONBLOCK: a FIFO planted where a dump should be must not hang the open."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DumpUnreadable(f"cannot read {printable(path)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DumpUnreadable(f"{printable(path)} is not a regular file")
    return fd


def read_head(vmcore: Path) -> bytes:
    """The first :data:`HEAD_SIZE` bytes of a local dump (DumpUnreadable when unreadable)."""
    fd = open_regular(vmcore)
    try:
        return os.pread(fd, HEAD_SIZE, 0)
    except OSError as exc:
        raise DumpUnreadable(f"cannot read {printable(vmcore)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def refusal(fmt: VmcoreFormat, vmcore: Path, tool: str) -> str | None:
    """Why ``tool`` (makedumpfile, crash) cannot read this format as it is, and what to do
    first; None when it can."""
    name = printable(vmcore)
    if fmt.kind == "empty":
        return f"{name} is empty"
    if fmt.kind == "flattened":
        return (
            f"{name} is a flattened makedumpfile stream, which {tool} does not read: "
            f"rebuild it first with: makedumpfile -R OUTFILE < {name}"
        )
    if fmt.kind in ("gzip", "bzip2", "xz", "lz4"):
        return f"{name} is {fmt.kind}-compressed: unpack it first ({fmt.kind} -dc {name} > OUTFILE)"
    if tool == "makedumpfile" and fmt.kind == "vmware-vmss":
        # VMware's converter takes the checkpoint and its .vmem when the memory is beside it
        memory = vmcore.with_suffix(".vmem")
        convert = printable(
            shlex.join(["vmss2core", "-N6", str(vmcore), *([str(memory)] if memory.is_file() else [])])
        )
        return (
            f"{name} is a {fmt.label} file: makedumpfile reads kdump and ELF vmcores only; crash 7.1.0 and "
            f"later read it directly, or convert it first ({convert}, a Linux guest)"
        )
    if tool == "makedumpfile" and fmt.kind in ("vmware-vmss", "qemu-savevm"):
        return f"{name} is a {fmt.label} file: makedumpfile reads kdump and ELF vmcores only (use crash)"
    return None


def extract_dmesg(
    vmcore: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    makedumpfile: str | None = None,
) -> ExtractedLog:
    """The kernel log of the local dump ``vmcore``, read by ``makedumpfile --dump-dmesg``.

    Raises :class:`DumpUnreadable` (one line: the dump, and makedumpfile's reason or why it
    was not run) when makedumpfile is missing, the file is not a dump it reads as it is
    (flattened, compressed, a hypervisor's suspend file), it fails, or it does not finish
    within ``timeout`` seconds.  Only the last ``max_bytes`` of the log are kept."""
    vmcore = Path(vmcore)
    regular_vmcore(vmcore)
    reason = refusal(detect_format(read_head(vmcore)), vmcore, "makedumpfile")
    if reason:
        raise DumpUnreadable(f"kernel log not extracted: {reason}")
    tool = makedumpfile or find_tool("makedumpfile")
    if tool is None:
        raise DumpUnreadable(
            f"kernel log not extracted from {printable(vmcore)}: makedumpfile is not installed "
            "(apt-get install makedumpfile, dnf install makedumpfile, zypper install makedumpfile)"
        )
    source = f"makedumpfile --dump-dmesg {vmcore}"
    with tempfile.TemporaryDirectory(prefix="oob-dmesg-") as work:
        log = Path(work) / "dmesg.txt"
        messages = Path(work) / "makedumpfile.out"
        fd = os.open(messages, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            outcome = run_tool(
                [tool, "--dump-dmesg", str(vmcore.resolve()), str(log)],
                output_fd=fd,
                timeout=timeout,
                max_output=HARD_LIMIT,
                cwd=work,
                watch=(log,),
            )
        finally:
            os.close(fd)
        if outcome.timed_out:
            raise DumpUnreadable(
                f"makedumpfile did not finish reading the kernel log of {printable(vmcore)} "
                f"within {timeout:g} s (stopped)"
            )
        if outcome.over_limit:
            raise DumpUnreadable(
                f"makedumpfile wrote more than {HARD_LIMIT >> 20} MiB for the kernel log of "
                f"{printable(vmcore)}: no real log is that big (stopped)"
            )
        if outcome.returncode != 0 or not log.is_file():
            raise DumpUnreadable(_failure(vmcore, messages, outcome))
        size = log.stat().st_size
        with open(log, "rb") as handle:
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    return ExtractedLog(data.decode("utf-8", "replace"), source, size, truncated=size > max_bytes)


def _failure(vmcore: Path, messages: Path, outcome: ToolOutcome) -> str:
    lines = [line for line in tail_lines(messages) if line != "makedumpfile Failed."]
    if outcome.signal_name:
        why = f"makedumpfile was killed by {outcome.signal_name}"
    else:
        why = lines[-1][:300] if lines else ""
        why = why or f"makedumpfile exited with status {outcome.returncode}"
    return f"makedumpfile could not read the kernel log of {printable(vmcore)}: {why} (the dump may be cut short or damaged)"
