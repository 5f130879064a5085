"""A guest's memory written to a file by its hypervisor (``virsh dump --memory-only``).

Formats, in the order tried when the caller leaves the choice to oob:

1. ``kdump-zlib``: memory-only, kdump-compressed with zlib (``virsh dump --memory-only
   --format kdump-zlib``), what ``crash`` and ``makedumpfile`` read, and much smaller than
   the guest's memory.  QEMU 2.0 and later write it; older ones refuse it.
2. ``elf``: memory-only ELF (``--memory-only`` alone), which every QEMU that dumps writes.
3. ``native``: the hypervisor's own core file (``virDomainCoreDump`` without
   ``VIR_DUMP_MEMORY_ONLY``), only for a driver that is not QEMU (whose non-memory-only
   dump is a migration stream ``crash`` cannot read).  Xen's libxl driver has no
   ``virDomainCoreDumpWithFormat`` (VIR_ERR_NO_SUPPORT) and takes only ``VIR_DUMP_LIVE`` and
   ``VIR_DUMP_CRASH``: it writes the ELF core ``xl dump-core`` writes (libxl_domain_core_dump),
   which ``crash`` reads; ``--after reset`` is refused there.  The test driver writes a
   15-byte stand-in.

A format is left for the next one only when libvirt refused it by its error code (the
driver does not offer it, or an argument it does not take): nothing was written then.

The dump call blocks for as long as the dump takes; it runs in its own thread while this
one polls the job's progress (``virDomainGetJobStats``) and keeps the deadline: at the
deadline (or on Ctrl-C) oob asks libvirt to abort the job (``virDomainAbortJob``) and
says what became of it.  libvirt refuses to abort a memory-only QEMU dump
(VIR_ERR_OPERATION_INVALID, "cannot abort memory-only dump": seen with libvirt 9.0 and
QEMU 7.2 in tests/vm): the hypervisor then goes on writing, and oob says so rather than
wait past its deadline (a few seconds more: a dump that ends meanwhile is written).  Without ``live`` libvirt pauses the
guest for the dump and resumes it afterwards (``after`` "resume"), or resets it
(``VIR_DUMP_RESET``) or leaves it stopped as crashed (``VIR_DUMP_CRASH``, "off").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oob.drivers.libvirt.calls import CallTimedOut, call_with_deadline
from oob.drivers.libvirt.codes import (
    REFUSED_BEFORE_ACTING,
    UNSUPPORTED,
    code_name,
    codes,
    error_code,
    error_words,
)
from oob.errors import ActionUnsupported, BmcRefused, DumpTargetError, DumpTimeout, UsageError

if TYPE_CHECKING:
    from oob.drivers.libvirt.driver import LibvirtDriver

#: what ``fmt`` may be: "auto" tries them in this order
DUMP_FORMATS = ("kdump-zlib", "elf", "native")
#: what happens to a guest paused for the dump (not ``live``) once it is written
AFTER_CHOICES = ("resume", "reset", "off")


@dataclass(frozen=True)
class DumpProgress:
    elapsed_s: float
    #: bytes of guest memory written so far and in all; None when the hypervisor does not say
    processed: int | None = None
    total: int | None = None

    @property
    def percent(self) -> float | None:
        if self.processed is None or not self.total:
            return None
        return min(100.0, 100.0 * self.processed / self.total)


@dataclass(frozen=True)
class MemoryDump:
    path: str
    #: "kdump-zlib", "elf" or "native"
    format: str
    #: formats refused before this one, with libvirt's reason
    skipped: tuple[str, ...]
    #: the hypervisor reported the dump's progress (virDomainGetJobStats)
    progress_reported: bool


def _flags(libvirt: Any, fmt: str, live: bool, after: str) -> int:
    flags = 0 if fmt == "native" else libvirt.VIR_DUMP_MEMORY_ONLY
    if live:
        flags |= libvirt.VIR_DUMP_LIVE
    if after == "reset":
        flags |= libvirt.VIR_DUMP_RESET
    elif after == "off":
        flags |= libvirt.VIR_DUMP_CRASH
    return flags


def _format_number(libvirt: Any, fmt: str) -> int:
    if fmt == "kdump-zlib":
        return int(libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB)
    return int(libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_RAW)  # ELF with the memory-only flag


def check_choices(fmt: str, live: bool, after: str) -> None:
    if fmt != "auto" and fmt not in DUMP_FORMATS:
        raise UsageError(f"--format must be auto or one of {', '.join(DUMP_FORMATS)}, not '{fmt}'")
    if after not in AFTER_CHOICES:
        raise UsageError(f"--after must be one of {', '.join(AFTER_CHOICES)}, not '{after}'")
    if live and after != "resume":
        # libvirt refuses --live with --crash; a reset after a live dump resets a guest that ran on
        raise UsageError("--live keeps the guest running: --after reset|off only without --live")


def dump_memory(
    driver: LibvirtDriver,
    path: str,
    *,
    live: bool,
    after: str = "resume",
    fmt: str = "auto",
    progress: Callable[[DumpProgress], None] | None = None,
    deadline_s: float = 3600.0,
    poll_s: float = 1.0,
    cancel: threading.Event | None = None,
) -> MemoryDump:
    """Write the guest's memory to ``path`` (on the hypervisor's machine) and say how."""
    check_choices(fmt, live, after)
    libvirt = driver._libvirt
    is_qemu = driver.driver_type() == "QEMU"
    formats = [f for f in DUMP_FORMATS if not (f == "native" and is_qemu)] if fmt == "auto" else [fmt]
    skipped: list[str] = []
    started = time.monotonic()
    for index, candidate in enumerate(formats):
        try:
            reported = _one_dump(
                driver,
                path,
                candidate,
                _flags(libvirt, candidate, live, after),
                progress,
                started,
                deadline_s,
                poll_s,
                cancel,
            )
        except libvirt.libvirtError as exc:
            code = error_code(exc)
            name = code_name(libvirt, code) if code is not None else "no error code"
            words = error_words(exc)
            not_taken = codes(libvirt, UNSUPPORTED) | {libvirt.VIR_ERR_INVALID_ARG}
            if code in not_taken and index + 1 < len(formats):
                skipped.append(f"{candidate}: {name} ({words})")
                continue
            if code in not_taken:
                tried = "; ".join([*skipped, f"{candidate}: {name} ({words})"])
                raise ActionUnsupported(
                    f"the hypervisor writes none of the dump formats oob asked for ({tried})",
                    host=driver.host.name,
                    bmc_message=words,
                ) from None
            if code in codes(libvirt, REFUSED_BEFORE_ACTING):
                raise BmcRefused(
                    f"libvirt refused the dump ({name})", host=driver.host.name, bmc_message=words
                ) from None
            raise DumpTargetError(
                f"the hypervisor could not write the dump ({name}): {words}", host=driver.host.name
            ) from None
        return MemoryDump(path, candidate, tuple(skipped), reported)
    raise AssertionError("unreachable: the loop returns or raises")


def _one_dump(
    driver: LibvirtDriver,
    path: str,
    fmt: str,
    flags: int,
    progress: Callable[[DumpProgress], None] | None,
    started: float,
    deadline_s: float,
    poll_s: float,
    cancel: threading.Event | None,
) -> bool:
    """One dump call; True when the hypervisor reported progress while it ran."""
    dom = driver.domain
    libvirt = driver._libvirt
    if fmt == "native":
        call: Callable[[], Any] = lambda: dom.coreDump(path, flags)  # noqa: E731 - libxl has no WithFormat
    else:
        number = _format_number(libvirt, fmt)
        call = lambda: dom.coreDumpWithFormat(path, number, flags)  # noqa: E731
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, name="libvirt dump", daemon=True)
    worker.start()
    reported = False
    stats_offered = True
    while True:
        worker.join(poll_s)
        if not worker.is_alive():
            break
        elapsed = time.monotonic() - started
        interrupted = cancel is not None and cancel.is_set()
        if interrupted or elapsed >= deadline_s:
            stopped = _stop(driver, worker, box, flags)
            if stopped is None:
                break  # libvirt could not abort it, and it was written meanwhile
            if interrupted:
                raise DumpTargetError(f"interrupted: {stopped}", host=driver.host.name)
            raise DumpTimeout(
                f"the dump was not written within {deadline_s:g} s: {stopped}", host=driver.host.name
            )
        processed = total = None
        if stats_offered:
            stats = _job_stats(driver)
            if stats is None:
                stats_offered = False
            else:
                processed, total = stats
                reported = reported or total is not None
        if progress is not None:
            progress(DumpProgress(elapsed, processed, total))
    if "error" in box:
        raise box["error"]
    return reported


def _job_stats(driver: LibvirtDriver) -> tuple[int | None, int | None] | None:
    """(processed, total) bytes of the running dump job; None when not offered."""
    libvirt = driver._libvirt
    try:
        stats = call_with_deadline(
            lambda: driver.domain.jobStats(), min(driver.timeout, 5.0), "read the job's progress"
        )
    except CallTimedOut:
        return (None, None)
    except libvirt.libvirtError:
        return None
    if not isinstance(stats, dict):
        return None

    def number(key: str) -> int | None:
        value = stats.get(key)
        return value if isinstance(value, int) and value >= 0 else None

    return number("memory_processed"), number("memory_total")


def _stop(
    driver: LibvirtDriver, worker: threading.Thread, box: dict[str, BaseException], flags: int
) -> str | None:
    """Ask libvirt to abort the running dump, wait a little for the dump call to end, and
    say what became of the dump: aborted, or not (libvirt refuses to abort a memory-only
    QEMU dump) and then failed or still being written; None when it was not aborted and
    was written meanwhile (the dump is complete: nothing to refuse)."""
    refused = _abort(driver)
    worker.join(min(driver.timeout, 10.0))
    if refused is None:
        confirmed = "" if not worker.is_alive() else " (libvirt has not confirmed the abort yet)"
        return f"the dump job was aborted{confirmed}; the file is incomplete"
    if worker.is_alive():
        paused = "" if flags & driver._libvirt.VIR_DUMP_LIVE else "; the guest stays paused until it is done"
        return (
            f"libvirt could not abort the dump ({refused}): the hypervisor goes on writing the file{paused}"
        )
    if "error" in box:
        return f"libvirt could not abort the dump ({refused}), which then failed: {error_words(box['error'])}"
    return None


def _abort(driver: LibvirtDriver) -> str | None:
    """None once libvirt aborted the job, else why it did not (its error code and words)."""
    libvirt = driver._libvirt
    seconds = min(driver.timeout, 10.0)
    try:
        call_with_deadline(lambda: driver.domain.abortJob(), seconds, "abort the dump job")
    except CallTimedOut:
        return f"no answer within {seconds:g} s"
    except libvirt.libvirtError as exc:
        code = error_code(exc)
        return f"{code_name(libvirt, code) if code is not None else 'no error code'}: {error_words(exc)}"
    except Exception as exc:  # noqa: BLE001 - said, whatever it is: the dump's outcome matters more
        return f"{type(exc).__name__}"
    return None
