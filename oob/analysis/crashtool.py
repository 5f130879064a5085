"""Run ``crash`` in batch mode on a local vmcore and save what it says.

``crash -s -i COMMANDS VMLINUX VMCORE`` with stdin from /dev/null: ``-s`` starts silently
and sends no output to a pager, ``-i`` runs the command file, and the file ends with
``quit``.  The commands are the seed's first look (crash's own help texts, crash 8.0.2):

- ``bt -a``: the stack of the active task on every CPU;
- ``log | tail -n 60``: the end of the kernel log (crash pipes to the shell);
- ``ps -m | grep UN``: tasks in D state (``ps -m`` prints ``[UN]`` with the time since each
  task last ran); ``foreach UN bt``: their stacks;
- ``kmem -i``: memory usage.

The run has a deadline (the process group is killed on expiry), its output is bounded,
and it is saved to a new file: an existing name is never overwritten (``-1``, ``-2``...
are tried) and a symlink is never followed.  crash reads no ``~/.crashrc``: its HOME and
working directory are private.  Missing crash or vmlinux is a result ("not run: ..."),
not an error: the analysis stands without it.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from oob.analysis.extract import find_tool, read_head, refusal, regular_vmcore, run_tool, tail_lines
from oob.dump.formats import detect_format
from oob.errors import DumpUnreadable
from oob.safetext import printable

#: what crash is asked, in this order
BATCH_COMMANDS: tuple[str, ...] = (
    "bt -a",
    "log | tail -n 60",
    "ps -m | grep UN",
    "foreach UN bt",
    "kmem -i",
    "quit",
)
#: crash reads the vmlinux (hundreds of MB of DWARF) before the first command: minutes
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_BYTES = 8 << 20
CRASH_INSTALL = "apt-get install crash, dnf install crash, zypper install crash"
_MAX_NAME_TRIES = 100


class CrashRunStatus(StrEnum):
    #: crash ran every command; the output is saved
    DONE = "done"
    #: crash was not started: it, the vmlinux or a readable dump is missing
    NOT_RUN = "not_run"
    #: crash started and failed (its own words are in ``message`` and the saved output)
    FAILED = "failed"
    #: the deadline passed; what crash printed until then is saved
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class CrashRun:
    """What running crash gave."""

    status: CrashRunStatus
    #: one line for people: "crash ran: output in ...", "not run: ...", "crash failed: ..."
    message: str
    #: the command line, quoted for a shell
    command: str
    output: Path | None = None
    output_bytes: int = 0
    #: the output passed its bound and was cut
    truncated: bool = False
    returncode: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "message": self.message,
            "command": self.command,
            "output": str(self.output) if self.output else None,
            "output_bytes": self.output_bytes,
            "truncated": self.truncated,
            "returncode": self.returncode,
        }


def crash_argv(crash: str, commands_file: str, vmlinux: Path, vmcore: Path) -> list[str]:
    """``crash -s -i FILE VMLINUX VMCORE``."""
    return [crash, "-s", "-i", commands_file, str(vmlinux), str(vmcore)]


def run_crash(
    vmcore: Path,
    vmlinux: Path | None,
    output: Path,
    *,
    commands: tuple[str, ...] = BATCH_COMMANDS,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    crash: str | None = None,
    vmlinux_hint: str | None = None,
) -> CrashRun:
    """Run crash in batch mode on the local dump ``vmcore`` and save its output at
    ``output`` (or the first free ``output-N`` name beside it).

    ``vmlinux_hint`` says how to get the vmlinux when it is missing ("install
    linux-image-6.1.0-50-amd64-dbg: apt-get install ..."), from the hand-off."""
    tool = crash or find_tool("crash")
    shown = shlex.join(crash_argv(tool or "crash", "COMMANDS", vmlinux or Path("VMLINUX"), vmcore))
    if tool is None:
        return CrashRun(CrashRunStatus.NOT_RUN, f"not run: crash is not installed ({CRASH_INSTALL})", shown)
    if vmlinux is None or not vmlinux.is_file():
        where = f" at {printable(vmlinux)}" if vmlinux is not None else ""
        hint = f" ({printable(vmlinux_hint)})" if vmlinux_hint else ""
        return CrashRun(CrashRunStatus.NOT_RUN, f"not run: no vmlinux with debug info{where}{hint}", shown)
    try:
        regular_vmcore(vmcore)
        reason = refusal(detect_format(read_head(vmcore)), vmcore, "crash")
    except DumpUnreadable as exc:
        return CrashRun(CrashRunStatus.NOT_RUN, f"not run: {exc.message}", shown)
    if reason:
        return CrashRun(CrashRunStatus.NOT_RUN, f"not run: {reason}", shown)

    with tempfile.TemporaryDirectory(prefix="oob-crash-") as work:
        commands_file = Path(work) / "commands"
        commands_file.write_text("".join(f"{command}\n" for command in commands))
        try:
            fd, saved = open_new(output)
        except DumpUnreadable as exc:
            return CrashRun(CrashRunStatus.NOT_RUN, f"not run: {exc.message}", shown)
        try:
            outcome = run_tool(
                crash_argv(tool, str(commands_file), vmlinux.resolve(), vmcore.resolve()),
                output_fd=fd,
                timeout=timeout,
                max_output=max_bytes,
                cwd=work,
            )
            size = os.fstat(fd).st_size
            if size > max_bytes:
                os.ftruncate(fd, max_bytes)
                size = max_bytes
            if outcome.over_limit:
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, f"\n[oob: crash's output passed {max_bytes} bytes; stopped]\n".encode())
        finally:
            os.close(fd)
    where = printable(saved)
    if outcome.timed_out:
        return CrashRun(
            CrashRunStatus.TIMED_OUT,
            f"crash did not finish within {timeout:g} s (stopped); what it printed is in {where}",
            shown,
            saved,
            size,
        )
    if outcome.over_limit:
        return CrashRun(
            CrashRunStatus.DONE,
            f"crash ran; its output passed {max_bytes >> 20} MiB and was cut: {where}",
            shown,
            saved,
            size,
            truncated=True,
        )
    if outcome.returncode != 0:
        if outcome.signal_name:
            why = f"crash was killed by {outcome.signal_name} (the dump may be cut short)"
        else:
            lines = _own_words(tail_lines(saved))
            why = lines[-1][:300] if lines else f"exit status {outcome.returncode}"
        return CrashRun(
            CrashRunStatus.FAILED,
            f"crash failed: {why}; its output is in {where}",
            shown,
            saved,
            size,
            returncode=outcome.returncode,
        )
    return CrashRun(CrashRunStatus.DONE, f"crash ran: output in {where}", shown, saved, size, returncode=0)


def open_new(path: Path) -> tuple[int, Path]:
    """A new file at ``path``, or at ``stem-1.suffix``, ``stem-2.suffix``... when taken:
    created exclusively (O_EXCL never follows a symlink), mode 0600, in a directory opened
    without following a symlink either."""
    directory = path.parent
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise DumpUnreadable(
            f"cannot save crash's output in {printable(directory)}: {exc.strerror}"
        ) from None
    try:
        for attempt in range(_MAX_NAME_TRIES):
            name = path.name if attempt == 0 else f"{path.stem}-{attempt}{path.suffix}"
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
            except FileExistsError:
                continue
            except OSError as exc:
                raise DumpUnreadable(
                    f"cannot save crash's output as {printable(directory / name)}: {exc.strerror}"
                ) from None
            return fd, directory / name
    finally:
        os.close(dir_fd)
    raise DumpUnreadable(
        f"cannot save crash's output: {printable(path)} and {_MAX_NAME_TRIES} other names are taken"
    )


def _own_words(lines: list[str]) -> list[str]:
    """crash's complaint: its ``crash: ...`` lines before any usage text it appends."""
    if "Usage:" in lines:
        lines = lines[: lines.index("Usage:")]
    return [line for line in lines if line.startswith("crash: ")] or lines
