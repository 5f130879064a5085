"""Write crash dumps the way each distribution's kdump does, for the mock fleet and tests.

    writer = KdumpWriter(root, DumpSpec(layout="rhel-ssh", identity="192.0.2.11", hostname="web01"))
    while (step := writer.step()) is not None:    # deterministic: one action per call
        ...                                       # step.wait = seconds kdump would pause now
    writer.start()                                # or: a background thread on the real clock

A simulated host calls this after an NMI: the writer makes the directory, writes the
kernel log (with the real text of an unknown-NMI panic; with ``hang_kind``, the whole log of
a host hung that way, :mod:`mocks.kernellog`), grows the vmcore in chunks under
its incomplete name with a real header for its format, then renames it / rewrites the
README, exactly in that distribution's order (docs/KDUMP.md).

Layouts (``DumpSpec.layout``); ``identity`` (IP or host name) switches any of them to the
name form of a dump sent over the network (``<identity>-<stamp>``):

==================  ========================================================================
rhel-local          ``127.0.0.1-%Y-%m-%d-%H:%M:%S``; vmcore-dmesg-incomplete.txt ->
                    vmcore-dmesg.txt; vmcore-incomplete -> vmcore (kdump-compressed);
                    kexec-dmesg.log.  ``rhel-nfs`` is the same with an identity.
rhel-ssh            as rhel-local, but vmcore-incomplete -> vmcore.flat (flattened)
rhel-scp            core_collector scp: vmcore-incomplete -> vmcore (ELF)
rhel-old            names before 2015: ``%Y.%m.%d-%H:%M:%S``
rhel-raw            raw target saved by kdumpctl at the next boot: ``%Y-%m-%d-%H:%M``, vmcore
                    written in place, no kernel log
rhel-test           ``kdumpctl test``: ``kdump-test-<id>``
suse                kdump >= 1.9: ``%Y-%m-%d-%H-%M``; README.txt placeholder, dmesg, vmcore in
                    place (kdump-compressed), README.txt rewritten "saved successfully"
suse-ssh            the same over ssh: the vmcore is flattened
suse-old            kdump <= 1.8: ``%Y-%m-%d-%H:%M``; dmesg.txt, vmcore, README.txt last
suse-old-ssh        the same, each file as ``<name>-incomplete`` then renamed; flattened
debian              ``%Y%m%d%H%M``; dmesg.<stamp>; dump-incomplete -> dump.<stamp>
debian-ssh          the same, flattened
debian-compressed   dump-incomplete.gz -> dump.<stamp>.gz (``compression``: gz, bz2, xz, lz4)
debian-vmcore       makedumpfile failed, fallback copy: vmcore-incomplete -> vmcore.<stamp> (ELF)
==================  ========================================================================

Faults (``DumpSpec.fault``): ``stall`` (stops writing part-way, forever), ``disk_full`` (stops
with a partial file, marks the header incomplete where the format allows, then does what
that kdump does on failure), ``not_armed`` (kdump not loaded: writes nothing).
"""

from __future__ import annotations

import bz2
import lzma
import os
import random
import struct
import threading
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from .host import Clock, RealClock
from .kernellog import build_kernel_log, hang_kind


@dataclass(frozen=True)
class WriterLayout:
    name: str
    family: str
    #: prefix of a local-form name (RHEL writes 127.0.0.1), or None
    local_prefix: str | None
    #: strftime pattern of the name's time stamp
    stamp_format: str
    #: "kdump-compressed", "flattened", "elf"
    vmcore_format: str
    #: over ssh: old SUSE writes every file as <name>-incomplete, then renames it
    ssh_renames: bool = False


LAYOUTS: dict[str, WriterLayout] = {
    layout.name: layout
    for layout in (
        WriterLayout("rhel-local", "rhel", "127.0.0.1", "%Y-%m-%d-%H:%M:%S", "kdump-compressed"),
        WriterLayout("rhel-nfs", "rhel", "127.0.0.1", "%Y-%m-%d-%H:%M:%S", "kdump-compressed"),
        WriterLayout("rhel-ssh", "rhel", "127.0.0.1", "%Y-%m-%d-%H:%M:%S", "flattened"),
        WriterLayout("rhel-scp", "rhel", "127.0.0.1", "%Y-%m-%d-%H:%M:%S", "elf"),
        WriterLayout("rhel-old", "rhel", "127.0.0.1", "%Y.%m.%d-%H:%M:%S", "kdump-compressed"),
        WriterLayout("rhel-raw", "rhel", None, "%Y-%m-%d-%H:%M", "kdump-compressed"),
        WriterLayout("rhel-test", "rhel", None, "kdump-test-%Y%m%d%H%M%S", "kdump-compressed"),
        WriterLayout("suse", "suse", None, "%Y-%m-%d-%H-%M", "kdump-compressed"),
        WriterLayout("suse-ssh", "suse", None, "%Y-%m-%d-%H-%M", "flattened"),
        WriterLayout("suse-old", "suse-old", None, "%Y-%m-%d-%H:%M", "kdump-compressed"),
        WriterLayout("suse-old-ssh", "suse-old", None, "%Y-%m-%d-%H:%M", "flattened", ssh_renames=True),
        WriterLayout("debian", "debian", None, "%Y%m%d%H%M", "kdump-compressed"),
        WriterLayout("debian-ssh", "debian", None, "%Y%m%d%H%M", "flattened"),
        WriterLayout("debian-compressed", "debian", None, "%Y%m%d%H%M", "kdump-compressed"),
        WriterLayout("debian-vmcore", "debian", None, "%Y%m%d%H%M", "elf"),
    )
}

FAULTS = (None, "stall", "disk_full", "not_armed")
PANICS = ("unknown_nmi", "iock_nmi", "hpwdt_nmi", "sysrq")
COMPRESSIONS = ("gz", "bz2", "xz", "lz4")

PAGE = 4096


@dataclass(frozen=True)
class DumpSpec:
    layout: str = "rhel-local"
    #: IP or host name for a dump sent over the network (``<identity>-<stamp>``); None: local form
    identity: str | None = None
    #: the crashed host's name, written into the kdump header, kernel log and README
    hostname: str = "host01"
    #: bytes of memory image (the vmcore file is a little larger: headers, records)
    size: int = 256 * 1024
    #: bytes per write
    chunk: int = 64 * 1024
    #: bytes per second, before the time scale
    rate: float = 50e6
    #: seconds from the NMI until the capture kernel makes the directory
    boot_delay: float = 15.0
    #: seconds kdump spends on the kernel log before the vmcore
    dmesg_delay: float = 1.0
    fault: str | None = None
    #: fraction of the image written before a stall or a full disk
    fault_at: float = 0.5
    panic: str = "unknown_nmi"
    #: debian-compressed only
    compression: str = "gz"
    #: the crashed host's local clock at the crash (its names); default: now
    crash_time: datetime | None = None
    kernel: str = "5.14.0-427.13.1.el9_4.x86_64"
    cpu: int = 0
    seed: int = 0
    #: how the host hung before the NMI (:data:`mocks.kernellog.HANG_KINDS`): the kernel log
    #: then shows that hang's reports before the NMI panic; None: the plain NMI panic alone
    hang_kind: str | None = None
    #: seconds the host had been up at the NMI (the log's time stamps); None: a day or so
    uptime: float | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown dump layout {self.layout!r}; known: {', '.join(LAYOUTS)}")
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {FAULTS[1:]}")
        if self.panic not in PANICS:
            raise ValueError(f"unknown panic {self.panic!r}; known: {PANICS}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {self.compression!r}; known: {COMPRESSIONS}")
        if self.size <= 0 or self.chunk <= 0 or self.rate <= 0:
            raise ValueError("size, chunk and rate must be positive")
        if not 0.0 <= self.fault_at <= 1.0:
            raise ValueError("fault_at is a fraction from 0 to 1")
        if self.hang_kind is not None:
            object.__setattr__(self, "hang_kind", hang_kind(self.hang_kind).value)
        if self.uptime is not None and not 0 <= self.uptime < 10 * 365 * 86_400:
            raise ValueError("uptime is seconds since boot, from 0 to ten years")
        if self.layout == "rhel-raw" and self.identity:
            raise ValueError("rhel-raw dumps are saved on the host itself at the next boot: no identity")

    @property
    def writer_layout(self) -> WriterLayout:
        return LAYOUTS[self.layout]


@dataclass(frozen=True)
class Step:
    """One thing kdump did; ``wait`` is how long it takes before the next (unscaled seconds)."""

    action: str
    path: str | None = None
    wait: float = 0.0
    bytes: int = 0


@dataclass
class KdumpWriter:
    root: Path
    spec: DumpSpec = field(default_factory=DumpSpec)
    clock: Clock = field(default_factory=RealClock)
    #: multiplies every wait (0.01: a hundred times faster)
    scale: float = 1.0
    #: "idle", "panicked", "dumping", "done", "stalled", "failed", "not-armed"
    state: str = "idle"
    directory: Path | None = None
    #: the complete dump file, once renamed (or written in place and finished)
    final_path: Path | None = None
    #: clock.now() when the dump became complete by its layout's rule (final rename/README)
    completed_at: float | None = None
    written: int = 0
    history: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        self._crash_time = datetime.now()
        self._actions = self._plan()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()

    # -- driving -------------------------------------------------------------------------------

    def step(self) -> Step | None:
        """Do the next action now; None when kdump has nothing more to do."""
        with self._lock:
            step = next(self._actions, None)
            if step is None:
                self.finished.set()
                return None
            self.history.append(step)
            return step

    def steps(self) -> Iterator[Step]:
        while (step := self.step()) is not None:
            yield step

    def run(self) -> None:
        """Every action, pausing ``wait * scale`` on the clock between them."""
        try:
            for step in self.steps():
                self._pause(step.wait * self.scale)
                if self._stop.is_set():
                    return
        finally:
            self.finished.set()

    def start(self) -> threading.Thread:
        """Run in a background thread (daemon); :meth:`stop` ends it early."""
        if self._thread is not None:
            raise RuntimeError("this writer was already started")
        self._thread = threading.Thread(target=self.run, name=f"kdump-{self.spec.hostname}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def _pause(self, seconds: float) -> None:
        # in slices, so that stop() is prompt on the real clock
        remaining = seconds
        while remaining > 0 and not self._stop.is_set():
            piece = min(remaining, 0.05)
            self.clock.sleep(piece)
            remaining -= piece

    # -- what kdump does ------------------------------------------------------------------------

    def directory_name(self) -> str:
        layout = self.spec.writer_layout
        when = self.spec.crash_time or self._crash_time
        stamp = when.strftime(layout.stamp_format)
        # kdump.sh writes IPv6 addresses bare, colons and all
        prefix = self.spec.identity or layout.local_prefix
        return f"{prefix}-{stamp}" if prefix else stamp

    def _plan(self) -> Iterator[Step]:
        spec = self.spec
        if spec.fault == "not_armed":
            self.state = "not-armed"
            yield Step("no crash kernel loaded: the host reboots without a dump")
            return
        self.state = "panicked"
        yield Step("panic", wait=spec.boot_delay)
        self.state = "dumping"
        self.directory = self.root / self.directory_name()
        self.directory.mkdir(parents=True, exist_ok=True)
        yield Step("mkdir", str(self.directory), wait=0.0)
        family = spec.writer_layout.family
        if family == "rhel":
            yield from self._rhel()
        elif family == "suse":
            yield from self._suse()
        elif family == "suse-old":
            yield from self._suse_old()
        else:
            yield from self._debian()

    def _rhel(self) -> Iterator[Step]:
        spec = self.spec
        assert self.directory is not None
        raw = spec.layout == "rhel-raw"
        if not raw:
            yield self._write("vmcore-dmesg-incomplete.txt", dmesg_text(spec).encode(), wait=spec.dmesg_delay)
            yield self._rename("vmcore-dmesg-incomplete.txt", "vmcore-dmesg.txt")
        if raw:
            # kdumpctl restores the raw partition straight into vmcore
            outcome = yield from self._vmcore("vmcore", spec.writer_layout.vmcore_format)
            if outcome == "ok":
                self._completed(self.directory / "vmcore")
                yield Step("saved", str(self.directory / "vmcore"))
            return
        outcome = yield from self._vmcore("vmcore-incomplete", spec.writer_layout.vmcore_format)
        if outcome == "stalled":
            return
        if outcome == "ok":
            final = "vmcore.flat" if spec.layout == "rhel-ssh" else "vmcore"
            yield self._rename("vmcore-incomplete", final, complete=True)
        yield self._write("kexec-dmesg.log", kexec_log(spec, self.directory.name, outcome == "ok").encode())

    def _suse(self) -> Iterator[Step]:
        spec = self.spec
        yield self._write("README.txt", SUSE_PLACEHOLDER.encode())
        yield self._write("dmesg", dmesg_text(spec).encode(), wait=spec.dmesg_delay)
        outcome = yield from self._vmcore("vmcore", spec.writer_layout.vmcore_format)
        if outcome == "stalled":
            return
        ok = outcome == "ok"
        yield self._write("README.txt", suse_readme(spec, self._crash_time, ok).encode(), complete=ok)

    def _suse_old(self) -> Iterator[Step]:
        spec = self.spec
        over_ssh = spec.writer_layout.ssh_renames

        def staged(name: str, data: bytes, wait: float = 0.0, complete: bool = False) -> Iterator[Step]:
            if over_ssh:
                yield self._write(f"{name}-incomplete", data)
                yield self._rename(f"{name}-incomplete", name, complete=complete, wait=wait)
            else:
                yield self._write(name, data, complete=complete, wait=wait)

        yield from staged("dmesg.txt", dmesg_text(spec).encode(), wait=spec.dmesg_delay)
        vmcore_name = "vmcore-incomplete" if over_ssh else "vmcore"
        outcome = yield from self._vmcore(vmcore_name, spec.writer_layout.vmcore_format)
        if outcome != "ok":
            return  # hung, or kdumptool stopped with an error: no README
        if over_ssh:
            yield self._rename("vmcore-incomplete", "vmcore")
        yield from staged("README.txt", suse_old_readme(spec, self._crash_time).encode(), complete=True)

    def _debian(self) -> Iterator[Step]:
        spec = self.spec
        assert self.directory is not None
        stamp = (spec.crash_time or self._crash_time).strftime("%Y%m%d%H%M")
        yield self._write(f"dmesg.{stamp}", dmesg_text(spec).encode(), wait=spec.dmesg_delay)
        if spec.layout == "debian-vmcore":
            outcome = yield from self._vmcore("vmcore-incomplete", "elf")
            if outcome == "ok":
                yield self._rename("vmcore-incomplete", f"vmcore.{stamp}", complete=True)
            return
        ext = f".{spec.compression}" if spec.layout == "debian-compressed" else ""
        wrapper = spec.compression if ext else None
        outcome = yield from self._vmcore(f"dump-incomplete{ext}", spec.writer_layout.vmcore_format, wrapper)
        if outcome == "ok":
            yield self._rename(f"dump-incomplete{ext}", f"dump.{stamp}{ext}", complete=True)

    # -- file operations -------------------------------------------------------------------------

    def _vmcore(self, name: str, fmt: str, wrapper: str | None = None) -> Generator[Step, None, str]:
        """Grow ``name`` chunk by chunk; returns "ok", "stalled" (kdump hangs: nothing more
        happens) or "failed" (it gives up and goes on to its failure path)."""
        spec = self.spec
        assert self.directory is not None
        path = self.directory / name
        limit = spec.size if spec.fault not in ("stall", "disk_full") else int(spec.size * spec.fault_at)
        stream = image_stream(spec, fmt, wrapper)
        path.write_bytes(b"")
        image_bytes = 0
        with open(path, "r+b") as handle:
            for piece in stream:
                if spec.fault in ("stall", "disk_full") and image_bytes >= limit:
                    break
                handle.seek(0, os.SEEK_END)
                handle.write(piece)
                handle.flush()
                image_bytes += len(piece)
                self.written += len(piece)
                yield Step("write", str(path), wait=len(piece) / spec.rate, bytes=len(piece))
            else:
                return "ok"
            if spec.fault == "stall":
                self.state = "stalled"
                yield Step("stall", str(path), wait=0.0)
                return "stalled"
            # disk full: makedumpfile marks what it can, then gives up
            mark_incomplete(handle, fmt if wrapper is None else "wrapped")
        self.state = "failed"
        yield Step("disk full", str(path), wait=0.0)
        return "failed"

    def _write(self, name: str, data: bytes, wait: float = 0.0, complete: bool = False) -> Step:
        assert self.directory is not None
        path = self.directory / name
        path.write_bytes(data)
        if complete:
            self._completed(self.directory / self._main_file())
        return Step("write", str(path), wait=wait, bytes=len(data))

    def _rename(self, old: str, new: str, complete: bool = False, wait: float = 0.0) -> Step:
        assert self.directory is not None
        os.rename(self.directory / old, self.directory / new)
        if complete:
            self._completed(self.directory / (new if new != "README.txt" else self._main_file()))
        return Step("rename", f"{self.directory / old} -> {new}", wait=wait)

    def _main_file(self) -> str:
        return "vmcore"

    def _completed(self, path: Path) -> None:
        self.final_path = path
        self.completed_at = self.clock.now()
        self.state = "done"

    @property
    def final_size(self) -> int | None:
        return self.final_path.stat().st_size if self.final_path and self.final_path.exists() else None


# ---------------------------------------------------------------------------------------------
# Images with real headers


def image_stream(spec: DumpSpec, fmt: str, wrapper: str | None = None) -> Iterator[bytes]:
    """The bytes of a dump file in ``fmt`` (optionally compressed), in ``spec.chunk`` pieces."""
    inner = _flattened(spec) if fmt == "flattened" else _plain(spec, fmt)
    if wrapper is None:
        yield from inner
        return
    yield from _wrapped(inner, wrapper, spec.chunk)


def _payload(spec: DumpSpec, total: int) -> Iterator[bytes]:
    rng = random.Random(spec.seed)
    left = total
    while left > 0:
        size = min(spec.chunk, left)
        yield rng.randbytes(size)
        left -= size


def kdump_header(spec: DumpSpec, status: int = 0x2) -> bytes:
    """disk_dump_header (``KDUMP   ``, version 6) and the kdump sub-header, one page each."""
    uts = b"".join(
        field_text.encode()[:64].ljust(65, b"\0")
        for field_text in ("Linux", spec.hostname, spec.kernel, "#1 SMP PREEMPT_DYNAMIC", "x86_64", "(none)")
    )
    pages = max(1, spec.size // PAGE)
    header = b"KDUMP   " + struct.pack("<i", 6) + uts
    header = header.ljust(408, b"\0")  # struct timeval is 8-aligned on x86_64
    header += struct.pack("<qq", 1_700_000_000, 0)
    header += struct.pack("<IiiIIIIIIi", status, PAGE, 1, 2, pages, pages, pages, pages, spec.cpu, 4)
    return header.ljust(PAGE, b"\0") + b"\0" * PAGE


def elf_header(phnum: int = 2) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    note = struct.pack("<IIQQQQQQ", 4, 0, PAGE, 0, 0, 0x400, 0x400, 0)
    load = struct.pack("<IIQQQQQQ", 1, 7, 2 * PAGE, 0xFFFFFFFF81000000, 0x1000000, 0, 0, PAGE)
    return (header + note + load).ljust(2 * PAGE, b"\0")


def _plain(spec: DumpSpec, fmt: str) -> Iterator[bytes]:
    head = kdump_header(spec) if fmt == "kdump-compressed" else elf_header()
    yield head
    yield from _payload(spec, max(0, spec.size - len(head)))


def _flattened(spec: DumpSpec) -> Iterator[bytes]:
    # makedumpfile -F: a 0x1000 header, then (offset, size, data) records, then 16 x 0xFF
    yield (b"makedumpfile\0\0\0\0" + struct.pack(">qq", 1, 1)).ljust(0x1000, b"\0")
    head = kdump_header(spec)
    yield struct.pack(">qq", 0, len(head)) + head
    offset = len(head)
    for piece in _payload(spec, max(0, spec.size - len(head))):
        yield struct.pack(">qq", offset, len(piece)) + piece
        offset += len(piece)
    yield b"\xff" * 16


def _wrapped(inner: Iterator[bytes], kind: str, chunk: int) -> Iterator[bytes]:
    if kind == "lz4":
        yield from _lz4_frame(inner)
        return
    compressor: Any
    if kind == "gz":
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    elif kind == "bz2":
        compressor = bz2.BZ2Compressor(9)
    else:
        compressor = lzma.LZMACompressor()
    pending = b""
    for piece in inner:
        pending += compressor.compress(piece)
        while len(pending) >= chunk:
            yield pending[:chunk]
            pending = pending[chunk:]
    pending += compressor.flush()
    while pending:
        yield pending[:chunk]
        pending = pending[chunk:]


def _lz4_frame(inner: Iterator[bytes]) -> Iterator[bytes]:
    # a valid LZ4 frame of stored (uncompressed) blocks: no lz4 library needed
    descriptor = bytes([0x60, 0x40])  # version 1, independent blocks; max block 64 KiB
    yield b"\x04\x22\x4d\x18" + descriptor + bytes([(xxh32(descriptor) >> 8) & 0xFF])
    for piece in inner:
        for start in range(0, len(piece), 65536):
            block = piece[start : start + 65536]
            yield struct.pack("<I", len(block) | 0x80000000) + block
    yield b"\0\0\0\0"


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32 (the LZ4 frame header checksum)."""
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    def round_(acc: int, lane: int) -> int:
        return (rotl((acc + lane * p2) & mask, 13) * p1) & mask

    index, length = 0, len(data)
    if length >= 16:
        v = [(seed + p1 + p2) & mask, (seed + p2) & mask, seed & mask, (seed - p1) & mask]
        while index + 16 <= length:
            lanes = struct.unpack_from("<4I", data, index)
            v = [round_(acc, lane) for acc, lane in zip(v, lanes, strict=True)]
            index += 16
        acc = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & mask
    else:
        acc = (seed + p5) & mask
    acc = (acc + length) & mask
    while index + 4 <= length:
        (lane,) = struct.unpack_from("<I", data, index)
        acc = (rotl((acc + lane * p3) & mask, 17) * p4) & mask
        index += 4
    while index < length:
        acc = (rotl((acc + data[index] * p5) & mask, 11) * p1) & mask
        index += 1
    acc ^= acc >> 15
    acc = (acc * p2) & mask
    acc ^= acc >> 13
    acc = (acc * p3) & mask
    acc ^= acc >> 16
    return acc


def mark_incomplete(handle: BinaryIO, fmt: str) -> None:
    """What makedumpfile does to a dump it cannot finish (ENOSPC): set the incomplete flag
    in the header where the file can be rewritten (not in a stream or a compressed wrapper)."""
    if fmt == "kdump-compressed":
        handle.seek(424)
        (status,) = struct.unpack("<I", handle.read(4))
        handle.seek(424)
        handle.write(struct.pack("<I", status | 0x8))
    elif fmt == "elf":
        handle.seek(48)
        (flags,) = struct.unpack("<I", handle.read(4))
        handle.seek(48)
        handle.write(struct.pack("<I", flags | 0x1))
    handle.flush()


# ---------------------------------------------------------------------------------------------
# Texts


_PANIC_TEXTS: dict[str, list[str]] = {
    # arch/x86/kernel/nmi.c: unknown_nmi_error() with kernel.unknown_nmi_panic=1
    "unknown_nmi": [
        "Uhhuh. NMI received for unknown reason 3d on CPU {cpu}.",
        "Do you have a strange power saving mode enabled?",
        "Kernel panic - not syncing: NMI: Not continuing",
    ],
    # io_check_error() with kernel.panic_on_io_nmi=1
    "iock_nmi": [
        "NMI: IOCK error (debug interrupt?) for reason 75 on CPU {cpu}.",
        "Kernel panic - not syncing: NMI IOCK error: Not continuing",
    ],
    # drivers/watchdog/hpwdt.c
    "hpwdt_nmi": [
        (
            "Kernel panic - not syncing: An NMI occurred. Depending on your system the reason for the NMI "
            "is logged in any one of the following resources:"
        ),
        "1. Integrated Management Log (IML)",
        "2. OA Syslog",
        "3. OA Forward Progress Log",
        "4. iLO Event Log",
    ],
    # drivers/tty/sysrq.c
    "sysrq": [
        "sysrq: Trigger a crash",
        "Kernel panic - not syncing: sysrq triggered crash",
    ],
}


def dmesg_text(spec: DumpSpec, uptime: float = 86_412.345678) -> str:
    """A kernel log ending the way the chosen panic ends it (what vmcore-dmesg extracts).

    With ``spec.hang_kind`` and the BMC's NMI (``unknown_nmi``), the log of a host hung
    that way (:mod:`mocks.kernellog`); otherwise the panic alone after a few boot lines.
    """
    if spec.uptime is not None:
        uptime = spec.uptime
    if spec.hang_kind is not None and spec.panic == "unknown_nmi":
        return build_kernel_log(
            spec.hang_kind, hostname=spec.hostname, release=spec.kernel, uptime=uptime, seed=spec.seed
        ).text
    lines = [
        (
            0.0,
            (
                f"Linux version {spec.kernel} (mockbuild@x86-vm-07.build.eng.example.com) (gcc (GCC) 11.4.1 "
                "20231218, GNU ld version 2.35.2-43.el9) #1 SMP PREEMPT_DYNAMIC Thu Apr 4 20:44:13 EDT 2024"
            ),
        ),
        (
            0.0,
            (
                f"Command line: BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{spec.kernel} root=/dev/mapper/rhel-root ro "
                "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M"
            ),
        ),
        (0.0, "Reserving 256MB of memory at 3072MB for crashkernel (System RAM: 65536MB)"),
        (1.234567, "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter."),
        (uptime - 120.0, f"{spec.hostname} systemd[1]: Started Session 12 of User root."),
    ]
    text = [f"[{when:12.6f}] {line}" for when, line in lines]
    stamp = uptime
    for line in _PANIC_TEXTS[spec.panic]:
        text.append(f"[{stamp:12.6f}] {line.format(cpu=spec.cpu)}")
        stamp += 0.000012
    tail = [
        f"CPU: {spec.cpu} PID: 0 Comm: swapper/{spec.cpu} Kdump: loaded Not tainted {spec.kernel} #1",
        "Hardware name: HPE ProLiant DL380 Gen10/ProLiant DL380 Gen10, BIOS U30 11/24/2023",
        "Call Trace:",
        " <NMI>",
        " dump_stack_lvl+0x34/0x48",
        " panic+0x102/0x2d4",
        " nmi_panic.cold+0xc/0xc",
        " unknown_nmi_error.cold+0x3c/0x3c" if spec.panic == "unknown_nmi" else " default_do_nmi+0x49/0x120",
        " exc_nmi+0x104/0x130",
        " end_repeat_nmi+0x16/0x67",
        " </NMI>",
        "Kernel Offset: 0x2a200000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)",
    ]
    for line in tail:
        text.append(f"[{stamp:12.6f}] {line}")
        stamp += 0.000012
    return "\n".join(text) + "\n"


def kexec_log(spec: DumpSpec, directory: str, ok: bool) -> str:
    """What RHEL's kdump.sh saves as kexec-dmesg.log, on success or failure."""
    base = f"/sysroot/var/crash/{directory}"
    lines = [
        "kdump: dump target is /dev/mapper/rhel-root",
        f"kdump: saving to {base}/",
        f"kdump: saving vmcore-dmesg.txt to {base}/",
        "kdump: saving vmcore-dmesg.txt complete",
        "kdump: saving vmcore",
    ]
    if ok:
        lines.append("kdump: saving vmcore complete")
    else:
        lines += [
            "makedumpfile: write_buffer: Can't write the dump file(vmcore-incomplete). No space left on device",
            "kdump: saving vmcore failed, exitcode:1",
        ]
    lines.append(f"kdump: saving the /run/initramfs/kexec-dmesg.log to {base}/")
    return "\n".join(lines) + "\n"


SUSE_PLACEHOLDER = (
    "This directory holds a kernel crash dump that is still being saved.\n"
    "If you can read this text after the system rebooted, the crash dump is likely incomplete.\n"
)


def suse_readme(spec: DumpSpec, crash_time: datetime, ok: bool) -> str:
    status = "saved successfully" if ok else "failed (makedumpfile exit code 1)"
    return (
        "Kernel crashdump\n"
        "----------------\n\n"
        f"Crash time     : {(spec.crash_time or crash_time).strftime('%Y-%m-%d %H:%M')}\n"
        f"Kernel version : {spec.kernel}\n"
        f"Host           : {spec.hostname}\n"
        "Dump level     : 31\n"
        "Dump format    : compressed\n\n"
        f"vmcore status: {status}\n"
    )


def suse_old_readme(spec: DumpSpec, crash_time: datetime) -> str:
    return (
        "Kernel crashdump\n"
        "----------------\n\n"
        f"Crash time     : {(spec.crash_time or crash_time).strftime('%Y-%m-%d %H:%M')}\n"
        f"Kernel version : {spec.kernel}\n"
        "Dump level     : 31\n"
        "Dump format    : compressed\n"
    )
