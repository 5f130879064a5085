"""Follow kdump output for many hosts until each dump is complete, failed, or late.

    async with DumpWatcher(hosts, WatchOptions(), emit=renderer.event) as watcher:
        baseline = await watcher.take_baseline()          # before the NMI
        ...                                               # send the NMI
        results = await watcher.watch(baseline)

States of each host::

    waiting -> appeared -> writing -> complete
                              |-----> stalled (no growth for stall_after + stall_grace while incomplete)
                              '-----> failed  (the layout or the file says so)
    any state not final at the deadline -> timeout
    any state not final when the watch is stopped (Ctrl-C: :meth:`DumpWatcher.interrupt`) -> interrupted

A dump that stops growing is said stalled after ``stall_after`` and the watch stops waiting
for it then (a stalled dump is final: kdump gave up, or its target did), unless
``stall_grace`` asks for that much longer: the stall is then reported at once
(``dump_stalled``, a warning), growth in the grace resumes the dump, and it ends stalled
when the grace has passed too.

New means *not in the baseline* (or, with ``since``, changed on the server at or after
that time): never the time in a directory's name, which is the crashed host's clock.
When several new directories are attributed to one host (``--since`` an hour ago, and a
crash before this one), the newest (by the server's time) is followed and the others are
named in a ``dump_dirs_skipped`` warning; so is one that appears later, while the target is
still listed for another host.

Cost per interval: one listing of each target directory that still has hosts waiting for
their dump to appear, plus one listing of each dump directory being followed.  A dump
file is never copied: the first bytes give its format, the last 16 bytes whether a
flattened stream is whole, and the end of the dmesg file the panic lines.

Deadlines hold: every call on a target is bounded by ``op_timeout`` and by the watch's
deadline (:func:`oob.dump.targets.call_bounds`); a call that does not answer makes the
target *stalled* (a ``dump_target_problem`` naming the server and path) and the watch still
ends at its deadline.  Each target directory is polled on its own, so one hung server does
not hold up the others.

Only regular files count.  A symbolic link, FIFO, device or socket in a dump directory
(``vmcore -> /some/big/file``, ``vmcore-dmesg.txt -> /etc/shadow``) is never read and never
counts toward completion: it is reported once (``dump_suspicious``) and the dump is not
complete (it ends ``failed`` when kdump's own log says it finished, else ``timeout``, naming
what was refused), because a vmcore that is a link proves nothing about this crash.  A
refused kernel log alone does not stop a real vmcore from completing the dump (it then has
no panic lines).  A dump directory that is a symbolic link is not
followed either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from oob import asyncbridge
from oob.analysis import Analysis, analyze_bytes
from oob.dump import events as ev
from oob.dump.formats import HEAD_SIZE, TAIL_SIZE, VmcoreFormat, detect_format, needs_tail
from oob.dump.layouts import (
    COMPLETION_RULES,
    DirName,
    Family,
    FileInfo,
    Verdict,
    assess,
    families_for,
    parse_dir_name,
    texts_needed,
)
from oob.dump.matching import HostMatcher
from oob.dump.panic import MAX_LINE, NO_PANIC, PanicInfo, decode_log, panic_lines
from oob.dump.targets import MAX_READ, DumpTarget, Listing, Targets, call_bounds, parse_target
from oob.errors import DumpTargetError, DumpTimeout, UsageError
from oob.events import Emit, discard
from oob.model import Host
from oob.ssh import SshOptions

#: README.txt and logs are small; never read more of them than this
TEXT_LIMIT = 64 * 1024
#: window over which the write rate is computed
RATE_WINDOW = 5.0
#: seconds past the deadline the watch waits for its calls (each one is bounded by the
#: deadline already: this only catches a bug)
DEADLINE_GRACE = 2.0
#: the exit code of a watch stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED_EXIT = 130

_KIND_WORDS = {
    "dir": "a directory",
    "symlink": "a symbolic link",
    "other": "a FIFO, device or socket",
    "file": "a regular file",
}


class DumpState(StrEnum):
    WAITING = "waiting"
    APPEARED = "appeared"
    WRITING = "writing"
    COMPLETE = "complete"
    STALLED = "stalled"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self in (
            DumpState.COMPLETE,
            DumpState.STALLED,
            DumpState.FAILED,
            DumpState.TIMEOUT,
            DumpState.INTERRUPTED,
        )


@dataclass(frozen=True)
class WatchOptions:
    #: seconds between two looks at each target
    interval: float = 0.5
    #: seconds without growth, while incomplete, before a dump is reported stalled (and,
    #: without ``stall_grace``, no longer waited for)
    stall_after: float = 120.0
    #: seconds to keep waiting for a stalled dump to grow again before it ends stalled
    stall_grace: float = 0.0
    #: seconds from the start (the NMI) to give up
    timeout: float = 1800.0
    #: at most one dump_progress event per host per this many seconds
    progress_every: float = 1.0
    #: seconds one listing, stat or read of a target may take before the target is
    #: reported stalled (it is retried at the next look; the deadline bounds it too)
    op_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("interval", "stall_after", "timeout", "op_timeout"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name.replace('_', '-')} must be more than 0 seconds")
        if self.progress_every < 0:
            raise UsageError("progress-every must not be negative")
        if self.stall_grace < 0:
            raise UsageError("stall-grace must not be negative")


@dataclass(frozen=True)
class Baseline:
    """What existed on each target before the trigger."""

    #: target key -> names of the entries present then
    names: Mapping[str, frozenset[str]]
    #: when the baseline was taken (this machine's clock, seconds since the epoch)
    taken_at: float
    #: instead of the names: a directory is new if the server changed it at or after this
    #: time (seconds since the epoch; ``oob watch --since``)
    since: float | None = None

    def knows(self, target_key: str) -> bool:
        return self.since is not None or target_key in self.names

    def is_new(self, target_key: str, entry: FileInfo) -> bool:
        if self.since is not None:
            return entry.mtime >= self.since
        return entry.name not in self.names.get(target_key, frozenset())

    def to_dict(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at,
            "since": self.since,
            "names": {key: sorted(names) for key, names in self.names.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(
            names={key: frozenset(names) for key, names in dict(data.get("names") or {}).items()},
            taken_at=float(data["taken_at"]),
            since=None if data.get("since") is None else float(data["since"]),
        )


@dataclass(frozen=True)
class DumpResult:
    """Where a host's watch ended."""

    host: str
    state: DumpState
    target: str
    message: str
    #: the dump directory's name, its full path on the target, and where to fetch it from
    directory: str | None = None
    path: str | None = None
    location: str | None = None
    family: str | None = None
    #: the file holding the memory image, and its size in bytes
    vmcore: str | None = None
    size: int = 0
    format: VmcoreFormat | None = None
    panic: PanicInfo = NO_PANIC
    #: what the kernel log says about why the host hung (None: no log read)
    analysis: Analysis | None = None
    #: seconds from the start of the watch (the NMI, for ``oob crash``) to this result
    seconds: float | None = None
    #: what the host's state was when the deadline passed (timeout only)
    last_state: str | None = None
    #: lines from kdump's own log explaining a failure
    details: tuple[str, ...] = ()
    #: seconds the dump had not grown when it was given up on (stalled only)
    idle: float | None = None

    @property
    def ok(self) -> bool:
        return self.state is DumpState.COMPLETE

    @property
    def exit_code(self) -> int:
        if self.state is DumpState.INTERRUPTED:
            return INTERRUPTED_EXIT
        return 0 if self.ok else DumpTimeout.exit_code

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "state": self.state.value,
            "target": self.target,
            "directory": self.directory,
            "path": self.path,
            "location": self.location,
            "family": self.family,
            "vmcore": self.vmcore,
            "size": self.size,
            "format": self.format.to_dict() if self.format else None,
            "panic": list(self.panic.lines),
            "panic_cause": self.panic.cause,
            "analysis": self.analysis.to_dict() if self.analysis else None,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "message": self.message,
        }
        if self.last_state:
            data["last_state"] = self.last_state
        if self.details:
            data["details"] = list(self.details)
        if self.idle is not None:
            data["idle"] = round(self.idle, 1)
        return data


@dataclass
class _Track:
    """One host's progress (mutable, private to the watcher)."""

    host: Host
    root: _Root
    families: tuple[Family, ...]
    state: DumpState = DumpState.WAITING
    dirname: DirName | None = None
    appeared_at: float = 0.0
    signature: tuple[tuple[str, int], ...] = ()
    last_change: float = 0.0
    bytes: int = 0
    verdict: Verdict | None = None
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    fmt: VmcoreFormat | None = None
    fmt_file: str | None = None
    panic: PanicInfo | None = None
    analysis: Analysis | None = None
    readme: tuple[tuple[int, float], str] | None = None
    last_progress: float = float("-inf")
    idle_checked: bool = False
    #: the stall was reported and the watch waits ``stall_grace`` for growth
    stall_reported: bool = False
    settle_signature: tuple[tuple[str, int], ...] | None = None
    truncated_seen: bool = False
    vanished: bool = False
    #: entries of the dump directory refused (name -> what it is): reported once each
    refused: dict[str, str] = field(default_factory=dict)
    #: the last error on this host's dump directory (None once a look succeeds)
    problem: str | None = None
    result: DumpResult | None = None


@dataclass
class _Root:
    """One target directory and the watched hosts that dump into it."""

    target: DumpTarget
    tracks: list[_Track]
    matcher: HostMatcher
    families: tuple[Family, ...]
    #: names already attributed or ignored: looked at once
    seen: set[str] = field(default_factory=set)
    problem: str | None = None
    #: listing warnings already reported (too many entries, impossible names)
    told: set[tuple[str, str]] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.target.spec.key


class DumpWatcher:
    """Watches the dump targets of many hosts at once (one SSH connection per server)."""

    def __init__(
        self,
        hosts: Sequence[Host],
        options: WatchOptions | None = None,
        *,
        targets: Targets | None = None,
        ssh: SshOptions | None = None,
        emit: Emit = discard,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not hosts:
            raise UsageError("no hosts to watch")
        self.options = options or WatchOptions()
        self.targets = targets or Targets(ssh)
        self._own_targets = targets is None
        self._emit = emit
        self.clock = clock
        self.wall = wall
        self._roots: dict[str, _Root] = {}
        self._tracks: list[_Track] = []
        self._baseline: Baseline | None = None
        self._started = 0.0
        by_root: dict[str, list[tuple[Host, tuple[Family, ...]]]] = {}
        specs = {}
        for host in hosts:
            if not host.dump.target:
                raise UsageError(f"host '{host.name}' has no dump.target in the inventory (or pass --target)")
            try:
                spec = parse_target(host.dump.target)
                families = families_for(host.dump.layout)
            except UsageError as exc:
                raise exc.for_host(host.name) from None
            specs[spec.key] = spec
            by_root.setdefault(spec.key, []).append((host, families))
        for key, members in by_root.items():
            union = tuple(dict.fromkeys(f for _, families in members for f in families))
            root = _Root(
                target=self.targets.get(specs[key]),
                tracks=[],
                matcher=HostMatcher([host for host, _ in members]),
                families=union,
            )
            for host, families in members:
                track = _Track(host=host, root=root, families=families)
                root.tracks.append(track)
            self._roots[key] = root
        order = {host.name: index for index, host in enumerate(hosts)}
        self._tracks = sorted(
            (t for r in self._roots.values() for t in r.tracks), key=lambda t: order[t.host.name]
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_targets:
            await self.targets.close()

    @property
    def connections_opened(self) -> int:
        return self.targets.connections_opened

    # -- baseline ----------------------------------------------------------------------------

    async def take_baseline(self, since: float | None = None, *, deadline: float | None = None) -> Baseline:
        """List every target now.  Raises :class:`DumpTargetError` if one cannot be read
        (an unknown host key, a wrong path, no answer within ``op_timeout`` or by
        ``deadline``, on the watcher's clock): better before the NMI than after it."""
        taken_at = self.wall()
        roots = list(self._roots.values())
        with call_bounds(self.options.op_timeout, self._loop_time(deadline)):
            listings = await asyncio.gather(*(root.target.listdir() for root in roots))
        names = {}
        for root, listing in zip(roots, listings, strict=True):
            names[root.key] = frozenset(e.name for e in listing or ())
            if listing is not None:
                self._listing_warnings(root, listing)
        return Baseline(names=names, taken_at=taken_at, since=since)

    def _loop_time(self, when: float | None) -> float | None:
        """A time on the watcher's clock, on the event loop's clock (which bounds calls)."""
        if when is None:
            return None
        return asyncio.get_running_loop().time() + (when - self.clock())

    # -- watching ----------------------------------------------------------------------------

    def begin(self, baseline: Baseline, started: float | None = None) -> None:
        """Start following from ``baseline``; ``started`` (the watcher's clock) is when the
        NMI went out, for the deadline and the reported durations."""
        missing = [root.target.spec.url for root in self._roots.values() if not baseline.knows(root.key)]
        if missing:
            raise UsageError(f"the baseline does not cover {', '.join(missing)}")
        self._baseline = baseline
        self._started = self.clock() if started is None else started

    @property
    def deadline(self) -> float:
        return self._started + self.options.timeout

    async def watch(self, baseline: Baseline, *, started: float | None = None) -> list[DumpResult]:
        """Poll until every host is complete or failed, or the deadline passes.

        Each target directory is polled on its own schedule, so a target that stopped
        answering holds up only its own hosts.  Cancelled (Ctrl-C), it ends at once, not
        waiting for calls under way; :meth:`interrupt` then says where each host was."""
        self.begin(baseline, started)
        remaining = self.deadline - self.clock()
        with call_bounds(self.options.op_timeout, self._loop_time(self.deadline)):
            if remaining > 0:
                guard = asyncio.timeout(remaining + DEADLINE_GRACE)
                try:
                    async with guard:
                        await asyncio.gather(*(self._follow_root(root) for root in self._roots.values()))
                except TimeoutError:
                    if not guard.expired():
                        raise
        self.expire()
        return self.results()

    async def _follow_root(self, root: _Root) -> None:
        while not all(track.state.final for track in root.tracks):
            round_start = self.clock()
            if round_start >= self.deadline:
                return
            await self._poll_root(root, round_start)
            pause = self.options.interval - (self.clock() - round_start)
            await asyncio.sleep(max(0.0, min(pause, self.deadline - self.clock())))

    async def poll(self) -> bool:
        """One look at every target; True once every host has a final state."""
        if self._baseline is None:
            raise RuntimeError("call begin() (or watch()) first")
        now = self.clock()
        await asyncio.gather(*(self._poll_root(root, now) for root in self._roots.values()))
        return all(track.state.final for track in self._tracks)

    def expire(self) -> None:
        """Whatever is not final now is late: report it as timed out."""
        now = self.clock()
        for track in self._tracks:
            if not track.state.final:
                self._finish(
                    track,
                    DumpState.TIMEOUT,
                    self._timeout_message(track, now),
                    now,
                    last_state=self._state_word(track),
                )

    def interrupt(self) -> None:
        """The watch was stopped (Ctrl-C): whatever is not final is reported as interrupted,
        with where it was and what it was waiting on (call after cancelling :meth:`watch`,
        on its event loop)."""
        now = self.clock()
        for track in self._tracks:
            if not track.state.final:
                where = self._where_message(track)
                waiting = track.root.target.pending_calls()
                if waiting:
                    where += f"; waiting on {', '.join(waiting)}"
                self._finish(
                    track,
                    DumpState.INTERRUPTED,
                    f"interrupted after {now - self._started:.0f} s: {where}",
                    now,
                    last_state=self._state_word(track),
                )

    def results(self) -> list[DumpResult]:
        return [track.result or self._snapshot(track) for track in self._tracks]

    def state_of(self, host: str) -> DumpState:
        return next(track.state for track in self._tracks if track.host.name == host)

    # -- one target --------------------------------------------------------------------------

    async def _poll_root(self, root: _Root, now: float) -> None:
        if any(track.state is DumpState.WAITING for track in root.tracks):
            try:
                entries = await root.target.listdir()
            except DumpTargetError as exc:
                self._target_problem(root, exc.message)
            else:
                root.problem = None
                if entries is not None:
                    self._listing_warnings(root, entries)
                self._discover(root, list(entries or ()), now)
        active = [t for t in root.tracks if t.dirname is not None and not t.state.final]
        if active:
            await asyncio.gather(*(self._follow(track, now) for track in active))

    def _discover(self, root: _Root, entries: list[FileInfo], now: float) -> None:
        assert self._baseline is not None
        # per host, the new directories found in this listing, oldest first (the server's
        # time, then the name): the newest is followed
        found: dict[str, list[tuple[FileInfo, DirName]]] = {}
        for entry in sorted(entries, key=lambda e: (e.mtime, e.name)):
            if entry.kind == "file" or entry.name in root.seen:
                continue
            if not self._baseline.is_new(root.key, entry):
                continue
            root.seen.add(entry.name)
            dirname = parse_dir_name(entry.name, root.families)
            if dirname is None:
                continue  # lost+found, kexec_cmd, someone's notes: not a dump
            attribution = root.matcher.attribute(dirname)
            if not entry.is_dir:
                # named like a dump directory, but a link (to a real dump elsewhere, or to
                # anything on the server): never followed
                self._send(
                    ev.Suspicious(
                        host=attribution.host,
                        location=root.target.spec.location(entry.name),
                        problem=f"named like a dump directory but {_KIND_WORDS[entry.kind]}; not followed",
                    )
                )
                continue
            if attribution.host is None:
                self._send(
                    ev.Unattributed(
                        target=root.target.spec.location(),
                        directory=entry.name,
                        identity=dirname.identity,
                        problem=attribution.problem or "unknown",
                        candidates=attribution.candidates,
                    )
                )
                continue
            track = next(t for t in root.tracks if t.host.name == attribution.host)
            allowed = tuple(f for f in dirname.families if f in track.families)
            if not allowed:
                continue
            if track.dirname is not None:
                # one more, while an earlier one is followed: named, not followed
                self._send(
                    ev.DirsSkipped(
                        host=track.host.name,
                        target=root.target.spec.location(),
                        following=track.dirname.name,
                        skipped=(entry.name,),
                        later=True,
                    )
                )
                continue
            found.setdefault(track.host.name, []).append(
                (entry, dataclasses.replace(dirname, families=allowed))
            )
        for track in root.tracks:
            candidates = found.get(track.host.name)
            if candidates:
                self._follow_new(track, candidates, now)

    def _follow_new(self, track: _Track, candidates: list[tuple[FileInfo, DirName]], now: float) -> None:
        """Start following the newest of a host's new directories; name the others."""
        root = track.root
        entry, dirname = candidates[-1]
        track.dirname = dirname
        track.state = DumpState.APPEARED
        track.appeared_at = now
        track.last_change = now
        track.samples.append((now, 0))
        self._send(
            ev.DirAppeared(
                host=track.host.name,
                target=root.target.spec.url,
                directory=entry.name,
                location=root.target.spec.location(entry.name),
                # "rhel/suse-old" until the files inside tell them apart
                family="/".join(f.value for f in dirname.families),
                name_time=dirname.stamp.isoformat(sep=" ") if dirname.stamp else None,
            )
        )
        if len(candidates) > 1:
            self._send(
                ev.DirsSkipped(
                    host=track.host.name,
                    target=root.target.spec.location(),
                    following=entry.name,
                    skipped=tuple(other.name for other, _ in reversed(candidates[:-1])),
                )
            )

    # -- one dump directory ------------------------------------------------------------------

    async def _follow(self, track: _Track, now: float) -> None:
        assert track.dirname is not None
        target = track.root.target
        try:
            listing = await target.listdir(track.dirname.name)
        except DumpTargetError as exc:
            track.problem = exc.message
            self._target_problem(track.root, exc.message)
            return
        track.problem = None
        if listing is None:
            if not track.vanished:
                track.vanished = True
                self._send(
                    ev.TargetProblem(
                        target=target.spec.location(track.dirname.name),
                        problem="the dump directory disappeared",
                    )
                )
            return
        track.vanished = False
        self._listing_warnings(track.root, listing, track.dirname.name)
        self._refuse_odd_entries(track, listing)
        # regular files only: a link or a FIFO named vmcore is not a dump
        files = {entry.name: entry for entry in listing if entry.is_regular}
        signature = tuple(sorted((entry.name, entry.size) for entry in files.values()))
        changed = signature != track.signature
        if changed:
            track.signature = signature
            track.last_change = now
            track.idle_checked = False
        try:
            texts = await self._texts(track, files)
            verdict = assess(track.dirname, files, texts)
            track.verdict = verdict
            track.bytes = sum(files[name].size for name in verdict.vmcore if name in files)
            track.samples.append((now, track.bytes))
            if verdict.status == "complete" and verdict.settle and not self._settled(track, changed):
                verdict = dataclasses.replace(verdict, status="writing")
            if verdict.status == "complete":
                await self._complete(track, verdict, files, now)
            elif verdict.status == "failed":
                await self._failed(track, verdict.reason, verdict, files, now)
            else:
                await self._writing(track, verdict, files, changed, now)
        except DumpTargetError as exc:
            track.problem = exc.message
            self._target_problem(track.root, exc.message)

    def _refuse_odd_entries(self, track: _Track, listing: Listing) -> None:
        assert track.dirname is not None
        for entry in listing:
            if entry.kind in ("file", "dir") or track.refused.get(entry.name) == entry.kind:
                continue
            track.refused[entry.name] = entry.kind
            self._send(
                ev.Suspicious(
                    host=track.host.name,
                    location=track.root.target.spec.location(track.dirname.name, entry.name),
                    problem=f"{_KIND_WORDS[entry.kind]}; not read and not counted toward a complete dump",
                )
            )

    def _listing_warnings(self, root: _Root, listing: Listing, directory: str | None = None) -> None:
        location = root.target.spec.location(*((directory,) if directory else ()))
        for warning in listing.warnings():
            if (location, warning) not in root.told:
                root.told.add((location, warning))
                self._send(ev.TargetProblem(target=location, problem=warning))

    def _settled(self, track: _Track, changed: bool) -> bool:
        # a file written in place under its final name is done when it stops changing
        if changed or track.settle_signature != track.signature:
            track.settle_signature = track.signature
            return False
        return True

    async def _texts(self, track: _Track, files: Mapping[str, FileInfo]) -> dict[str, str]:
        assert track.dirname is not None
        texts: dict[str, str] = {}
        for name in texts_needed(track.dirname, files):
            entry = files[name]
            key = (entry.size, entry.mtime)
            if track.readme is None or track.readme[0] != key:
                data = await track.root.target.read_head(track.dirname.name, name, size=TEXT_LIMIT)
                track.readme = (key, decode_log(data))
            texts[name] = track.readme[1]
        return texts

    async def _writing(
        self, track: _Track, verdict: Verdict, files: Mapping[str, FileInfo], changed: bool, now: float
    ) -> None:
        assert track.dirname is not None
        vmcore = verdict.vmcore_name
        if vmcore and vmcore in files:
            reads: list[Coroutine[Any, Any, None]] = []
            if track.fmt is None and files[vmcore].size >= HEAD_SIZE:
                reads.append(self._read_format(track, vmcore, tail=False))
            if track.panic is None and verdict.dmesg and not verdict.dmesg.endswith("-incomplete.txt"):
                # the kernel log is written before the vmcore: final by now
                reads.append(self._read_panic(track, verdict.dmesg))
            if reads:
                await asyncio.gather(*reads)
        if changed:
            resumed = track.stall_reported
            track.stall_reported = False
            first = track.state is DumpState.APPEARED and track.bytes > 0
            if track.bytes > 0 or resumed:
                track.state = DumpState.WRITING
            due = resumed or first or now - track.last_progress >= self.options.progress_every
            if due and track.state is DumpState.WRITING:
                track.last_progress = now
                self._send(
                    ev.Progress(
                        host=track.host.name,
                        directory=track.dirname.name,
                        file=vmcore,
                        bytes=track.bytes,
                        rate=self._rate(track),
                        state="resumed" if resumed else "writing",
                        format=track.fmt.label if track.fmt else None,
                    )
                )
            return
        idle = now - track.last_change
        if vmcore and vmcore in files and not track.idle_checked:
            # growth paused: makedumpfile sets a flag in the header when it gives up (disk
            # full); one look per pause costs a few KiB
            track.idle_checked = True
            await self._read_format(track, vmcore, tail=False)
            if track.fmt is not None and track.fmt.marked_incomplete:
                await self._failed(
                    track,
                    f"makedumpfile gave up: {vmcore} carries its incomplete flag "
                    f"({track.fmt.label}); the target filled up or a write failed",
                    verdict,
                    files,
                    now,
                )
                return
        if idle < self.options.stall_after:
            return
        grace = self.options.stall_grace
        file = vmcore if vmcore and vmcore in files else None
        if idle >= self.options.stall_after + grace:
            what = f"{file} at {ev.human_bytes(track.bytes)}" if file else "no vmcore file yet"
            waited = f" and --stall-grace {grace:g} s more" if grace else ""
            self._finish(
                track,
                DumpState.STALLED,
                f"dump stalled: no growth for {idle:.0f} s while incomplete ({what}; "
                f"{COMPLETION_RULES[verdict.family]}); stopped waiting after --stall-after "
                f"{self.options.stall_after:g} s{waited}{self._trouble(track)}",
                now,
                verdict=verdict,
                idle=idle,
            )
        elif not track.stall_reported:
            track.stall_reported = True
            self._send(
                ev.Stalled(
                    host=track.host.name,
                    directory=track.dirname.name,
                    file=file,
                    bytes=track.bytes,
                    idle=idle,
                    rule=COMPLETION_RULES[verdict.family],
                    grace=grace,
                )
            )

    async def _complete(
        self, track: _Track, verdict: Verdict, files: Mapping[str, FileInfo], now: float
    ) -> None:
        assert track.dirname is not None
        vmcore = verdict.vmcore_name
        reads: list[Coroutine[Any, Any, None]] = []
        if vmcore:
            reads.append(self._read_format(track, vmcore, tail=True))
            # the evidence may postdate the listing (SUSE's README is read after it): the
            # sizes are taken again, after it
            reads.append(self._restat(track, verdict.vmcore))
        if (track.panic is None or track.panic.cause == "none") and verdict.dmesg:
            reads.append(self._read_panic(track, verdict.dmesg))
        await asyncio.gather(*reads)
        fmt = track.fmt
        if fmt is not None and fmt.marked_incomplete:
            await self._failed(
                track, f"{vmcore} is marked incomplete by makedumpfile ({fmt.label})", verdict, files, now
            )
            return
        if fmt is not None and fmt.end_marker is False:
            if not track.truncated_seen:
                # a network file system may show the rename before the last bytes: look again
                track.truncated_seen = True
                return
            await self._failed(
                track,
                f"{vmcore} is a flattened stream without its end marker: truncated",
                verdict,
                files,
                now,
            )
            return
        size = track.bytes
        self._finish(
            track,
            DumpState.COMPLETE,
            f"dump complete: {track.root.target.spec.location(track.dirname.name, vmcore or '')} "
            f"({ev.human_bytes(size)}, {fmt.label if fmt else 'no vmcore'}; {verdict.reason})",
            now,
            verdict=verdict,
        )

    async def _failed(
        self, track: _Track, reason: str, verdict: Verdict, files: Mapping[str, FileInfo], now: float
    ) -> None:
        assert track.dirname is not None
        reads: list[Coroutine[Any, Any, None]] = []
        vmcore = verdict.vmcore_name
        if vmcore and vmcore in files and track.fmt is None and files[vmcore].size > 0:
            reads.append(self._read_format(track, vmcore, tail=False))
        if (track.panic is None or track.panic.cause == "none") and verdict.dmesg:
            reads.append(self._read_panic(track, verdict.dmesg))
        details: list[str] = []
        if "kexec-dmesg.log" in files:
            reads.append(self._read_log_lines(track, "kexec-dmesg.log", details))
        await asyncio.gather(*reads)
        if track.fmt is not None and track.fmt.marked_incomplete and "incomplete flag" not in reason:
            reason += (
                f"; {vmcore} carries makedumpfile's incomplete flag (the target filled up or a write failed)"
            )
        self._finish(
            track,
            DumpState.FAILED,
            f"dump failed: {reason}{self._trouble(track)}",
            now,
            verdict=verdict,
            details=tuple(details),
        )

    # -- reads -------------------------------------------------------------------------------

    async def _read_format(self, track: _Track, name: str, *, tail: bool) -> None:
        assert track.dirname is not None
        target = track.root.target
        head = await target.read_head(track.dirname.name, name, size=HEAD_SIZE)
        fmt = detect_format(head)
        if tail and needs_tail(fmt):
            end = await target.read_tail(track.dirname.name, name, size=TAIL_SIZE)
            fmt = detect_format(head, end)
        track.fmt = fmt
        track.fmt_file = name

    async def _restat(self, track: _Track, names: Sequence[str]) -> None:
        assert track.dirname is not None
        target = track.root.target
        found = await asyncio.gather(*(target.stat(track.dirname.name, name) for name in names))
        track.bytes = sum(entry.size for entry in found if entry is not None and entry.is_regular)

    async def _read_panic(self, track: _Track, name: str) -> None:
        """The kernel log: its panic lines and the analysis of why the host hung."""
        assert track.dirname is not None
        data = await track.root.target.read_tail(track.dirname.name, name, size=MAX_READ)
        track.panic = panic_lines(decode_log(data))
        # a big log takes a few hundred milliseconds: not on the loop that watches the others
        track.analysis = await asyncio.to_thread(
            analyze_bytes,
            data,
            source=track.root.target.spec.location(track.dirname.name, name),
            cut=len(data) >= MAX_READ,
        )

    async def _read_log_lines(self, track: _Track, name: str, out: list[str]) -> None:
        assert track.dirname is not None
        data = await track.root.target.read_tail(track.dirname.name, name, size=TEXT_LIMIT)
        lines = [line.strip() for line in decode_log(data).splitlines()]
        chosen = [line for line in lines if "fail" in line.lower() or "error" in line.lower()][-5:]
        out.extend(line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in chosen)

    # -- results and events ------------------------------------------------------------------

    def _rate(self, track: _Track) -> float:
        if len(track.samples) < 2:
            return 0.0
        latest_time, latest_bytes = track.samples[-1]
        for when, count in track.samples:
            if latest_time - when <= RATE_WINDOW and latest_time > when:
                return max(0.0, (latest_bytes - count) / (latest_time - when))
        return 0.0

    def _snapshot(
        self,
        track: _Track,
        state: DumpState | None = None,
        message: str = "",
        now: float | None = None,
        **extra: Any,
    ) -> DumpResult:
        spec = track.root.target.spec
        dirname = track.dirname
        verdict: Verdict | None = extra.pop("verdict", None) or track.verdict
        return DumpResult(
            host=track.host.name,
            state=state or track.state,
            target=spec.url,
            message=message or f"{track.state.value}",
            directory=dirname.name if dirname else None,
            path=spec.path_of(dirname.name) if dirname else None,
            location=spec.location(dirname.name) if dirname else None,
            family=(verdict.family.value if verdict else (dirname.family.value if dirname else None)),
            vmcore=verdict.vmcore_name if verdict else None,
            size=track.bytes,
            format=track.fmt,
            panic=track.panic or NO_PANIC,
            analysis=self._with_handoff(track, verdict),
            seconds=None if now is None else now - self._started,
            **extra,
        )

    @staticmethod
    def _with_handoff(track: _Track, verdict: Verdict | None) -> Analysis | None:
        """The analysis, with how to open this dump in crash once it has a vmcore."""
        analysis = track.analysis
        if analysis is None or track.dirname is None or verdict is None or not verdict.vmcore_name:
            return analysis
        # here: oob.analysis.handoff reads dump formats, whose package imports this module
        from oob.analysis.handoff import handoff_for_dump

        spec = track.root.target.spec
        server = None if spec.scheme == "file" else f"{spec.user}@{spec.server_address}"
        handoff = handoff_for_dump(
            spec.path_of(track.dirname.name, verdict.vmcore_name),
            server=server,
            fmt=track.fmt,
            release=analysis.facts.release,
        )
        return dataclasses.replace(analysis, handoff=handoff)

    def _finish(self, track: _Track, state: DumpState, message: str, now: float, **extra: Any) -> None:
        track.state = state
        track.result = self._snapshot(track, state, message, now, **extra)
        self._send(ev.Finished(host=track.host.name, result=track.result))

    def _timeout_message(self, track: _Track, now: float) -> str:
        waited = now - self._started
        location = track.root.target.spec.location()
        if track.dirname is None:
            problem = f"; last error: {track.root.problem}" if track.root.problem else ""
            return (
                f"no new dump directory for this host appeared in {location} within {waited:.0f} s{problem}"
            )
        verdict = track.verdict
        rule = COMPLETION_RULES[verdict.family] if verdict else ""
        what = (
            f"{verdict.vmcore_name} at {ev.human_bytes(track.bytes)}"
            if verdict and verdict.vmcore_name
            else "no vmcore file yet"
        )
        return (
            f"dump in {track.root.target.spec.location(track.dirname.name)} still incomplete after "
            f"{waited:.0f} s ({self._state_word(track)}: {what}; {rule}){self._trouble(track)}"
        )

    def _where_message(self, track: _Track) -> str:
        if track.dirname is None:
            problem = f"; last error: {track.root.problem}" if track.root.problem else ""
            return f"waiting for a new dump directory in {track.root.target.spec.location()}{problem}"
        verdict = track.verdict
        what = (
            f"{verdict.vmcore_name} at {ev.human_bytes(track.bytes)}"
            if verdict and verdict.vmcore_name
            else "no vmcore file yet"
        )
        return (
            f"dump in {track.root.target.spec.location(track.dirname.name)} still incomplete "
            f"({self._state_word(track)}: {what}){self._trouble(track)}"
        )

    @staticmethod
    def _state_word(track: _Track) -> str:
        """Where a host was, for messages: ``stalled`` while in its stall grace."""
        return DumpState.STALLED.value if track.stall_reported else track.state.value

    @staticmethod
    def _trouble(track: _Track) -> str:
        text = ""
        if track.refused:
            refused = ", ".join(
                f"{name} ({_KIND_WORDS[kind]})" for name, kind in sorted(track.refused.items())
            )
            text += f"; refused: {refused}"
        if track.problem:
            text += f"; last error: {track.problem}"
        return text

    def _target_problem(self, root: _Root, problem: str) -> None:
        if root.problem != problem:
            root.problem = problem
            location = root.target.spec.location()
            self._send(ev.TargetProblem(target=location, problem=problem.removeprefix(f"{location}: ")))

    def _send(self, event: ev.DumpEvent) -> None:
        self._emit(event.to_event())


# ---------------------------------------------------------------------------------------------
# Synchronous use


class BlockingDumpWatcher:
    """A :class:`DumpWatcher` for synchronous callers, run through :mod:`oob.asyncbridge`.

    The baseline and the watch run on the bridge's one loop, so the SSH connection opened
    for the baseline (before the NMI) is the one the watch uses.  Events are emitted from
    the loop's thread.  ``cancel`` (a :class:`threading.Event`) stops waiting for a watch
    at once (:class:`concurrent.futures.CancelledError`); the watch is cancelled on the loop.
    """

    def __init__(self, hosts: Sequence[Host], options: WatchOptions | None = None, **kwargs: Any) -> None:
        self.watcher = DumpWatcher(hosts, options, **kwargs)

    def take_baseline(self, since: float | None = None) -> Baseline:
        return asyncbridge.run(self.watcher.take_baseline(since))

    def watch(
        self, baseline: Baseline, *, started: float | None = None, cancel: threading.Event | None = None
    ) -> list[DumpResult]:
        return asyncbridge.run(self.watcher.watch(baseline, started=started), cancel=cancel)

    @property
    def connections_opened(self) -> int:
        return self.watcher.connections_opened

    def close(self) -> None:
        asyncbridge.run(self.watcher.close())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watch_dumps(
    hosts: Sequence[Host],
    options: WatchOptions | None = None,
    *,
    baseline: Baseline | None = None,
    since: float | None = None,
    ssh: SshOptions | None = None,
    emit: Emit = discard,
) -> list[DumpResult]:
    """Baseline (now, or ``since``, unless given) and watch, in one call."""

    async def run() -> list[DumpResult]:
        async with DumpWatcher(hosts, options, ssh=ssh, emit=emit) as watcher:
            base = baseline or await watcher.take_baseline(since)
            return await watcher.watch(base)

    return asyncbridge.run(run())


__all__ = [
    "Baseline",
    "BlockingDumpWatcher",
    "DumpResult",
    "DumpState",
    "DumpWatcher",
    "WatchOptions",
    "watch_dumps",
]
