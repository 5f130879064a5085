"""What the dump watcher reports, as typed records.

Each becomes an :class:`oob.events.Event` (``to_event``) whose ``kind`` is the JSON
``event`` name and whose ``data`` holds the fields below, so renderers, the audit log and
``--json`` need nothing dump-specific:

=====================  ==========  ==============================================================
kind                   level       data
=====================  ==========  ==============================================================
dump_dir_appeared      info        target, directory, location, family, name_time
dump_progress          progress    directory, file, bytes, rate, state, format?
dump_stalled           warning     directory, file, bytes, idle, rule, grace (a stall within --stall-grace)
dump_stalled           error       the :class:`~oob.dump.watcher.DumpResult` fields, file, bytes (final)
dump_dirs_skipped      warning     target, following, skipped (several new directories for a host)
dump_complete          info        the :class:`~oob.dump.watcher.DumpResult` fields
dump_failed            error       the :class:`~oob.dump.watcher.DumpResult` fields
timeout                error       the :class:`~oob.dump.watcher.DumpResult` fields
dump_interrupted       warning     the :class:`~oob.dump.watcher.DumpResult` fields (Ctrl-C)
dump_suspicious        warning     location, problem (a link, FIFO or device: never read)
dump_unattributed      warning     target, directory, identity, problem, candidates
dump_target_problem    warning     target, message
=====================  ==========  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from oob.events import Event, EventKind, Level

if TYPE_CHECKING:
    from oob.dump.watcher import DumpResult


def human_bytes(count: float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


class DumpEvent:
    kind: ClassVar[EventKind]
    level: ClassVar[Level] = Level.INFO
    host: str | None

    def message(self) -> str:
        raise NotImplementedError

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_event(self) -> Event:
        return Event(
            level=self.level, message=self.message(), host=self.host, kind=self.kind, data=self.data()
        )


@dataclass(frozen=True)
class DirAppeared(DumpEvent):
    kind: ClassVar[EventKind] = EventKind.DUMP_DIR_APPEARED
    host: str
    target: str
    directory: str
    location: str
    family: str
    #: the crashed host's local time in the name (informative; its clock may be wrong)
    name_time: str | None

    def message(self) -> str:
        return f"dump directory appeared: {self.location} ({self.family} layout)"

    def data(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "directory": self.directory,
            "location": self.location,
            "family": self.family,
            "name_time": self.name_time,
        }


@dataclass(frozen=True)
class Progress(DumpEvent):
    kind: ClassVar[EventKind] = EventKind.DUMP_PROGRESS
    level: ClassVar[Level] = Level.PROGRESS
    host: str
    directory: str
    file: str | None
    bytes: int
    #: bytes per second over the last few seconds
    rate: float
    #: "writing", or "resumed" after a stall
    state: str
    format: str | None = None

    def message(self) -> str:
        what = self.file or "dump"
        text = f"{what}: {human_bytes(self.bytes)}"
        if self.rate > 0:  # the first look has nothing to compare with
            text += f" at {human_bytes(self.rate)}/s"
        return f"resumed after a stall; {text}" if self.state == "resumed" else text

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "directory": self.directory,
            "file": self.file,
            "bytes": self.bytes,
            "rate": round(self.rate, 1),
            "state": self.state,
        }
        if self.format:
            data["format"] = self.format
        return data


@dataclass(frozen=True)
class Stalled(DumpEvent):
    kind: ClassVar[EventKind] = EventKind.DUMP_STALLED
    level: ClassVar[Level] = Level.WARNING
    host: str
    directory: str
    file: str | None
    bytes: int
    #: seconds without growth
    idle: float
    #: how the layout decides completion
    rule: str
    #: seconds the watch still waits for growth (``--stall-grace``)
    grace: float = 0.0

    def message(self) -> str:
        what = f"{self.file} at {human_bytes(self.bytes)}" if self.file else "no vmcore file yet"
        text = f"dump stalled: no growth for {self.idle:.0f} s while incomplete ({what}; {self.rule})"
        return f"{text}; waiting {self.grace:g} s more for it to grow (--stall-grace)" if self.grace else text

    def data(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "file": self.file,
            "bytes": self.bytes,
            "idle": round(self.idle, 1),
            "rule": self.rule,
            "grace": self.grace,
        }


@dataclass(frozen=True)
class DirsSkipped(DumpEvent):
    """Several new dump directories for one host: the newest is followed, these are not."""

    kind: ClassVar[EventKind] = EventKind.DUMP_DIRS_SKIPPED
    level: ClassVar[Level] = Level.WARNING
    host: str
    #: where the directories are (server and path)
    target: str
    #: the directory followed
    following: str
    #: the other new directories, newest first
    skipped: tuple[str, ...]
    #: True: they appeared after the one followed (not in the same listing)
    later: bool = False

    def message(self) -> str:
        names = ", ".join(self.skipped)
        if self.later:
            return (
                f"another new dump directory appeared in {self.target}: {names}; not followed "
                f"(following {self.following})"
            )
        return (
            f"{len(self.skipped) + 1} new dump directories for this host in {self.target}: following the "
            f"newest, {self.following}; not following {names}"
        )

    def data(self) -> dict[str, Any]:
        return {"target": self.target, "following": self.following, "skipped": list(self.skipped)}


@dataclass(frozen=True)
class Finished(DumpEvent):
    """dump_complete, dump_stalled, dump_failed, timeout or dump_interrupted: the host's
    final result."""

    host: str
    result: DumpResult

    @property
    def kind(self) -> EventKind:  # type: ignore[override]
        return {
            "complete": EventKind.DUMP_COMPLETE,
            "stalled": EventKind.DUMP_STALLED,
            "failed": EventKind.DUMP_FAILED,
            "interrupted": EventKind.DUMP_INTERRUPTED,
        }.get(self.result.state.value, EventKind.TIMEOUT)

    @property
    def level(self) -> Level:  # type: ignore[override]
        return {"complete": Level.INFO, "interrupted": Level.WARNING}.get(
            self.result.state.value, Level.ERROR
        )

    def message(self) -> str:
        return self.result.message

    def data(self) -> dict[str, Any]:
        data = self.result.to_dict()
        data.pop("host", None)
        data.pop("message", None)
        if self.result.state.value == "stalled":
            # the names the stall warning uses, for readers of either
            data["file"] = self.result.vmcore
            data["bytes"] = self.result.size
        return data


@dataclass(frozen=True)
class Unattributed(DumpEvent):
    kind: ClassVar[EventKind] = EventKind.DUMP_UNATTRIBUTED
    level: ClassVar[Level] = Level.WARNING
    target: str
    directory: str
    identity: str | None
    #: "local-form", "unknown", "ambiguous"
    problem: str
    candidates: tuple[str, ...] = ()
    host: None = None

    def message(self) -> str:
        if self.problem == "ambiguous":
            return (
                f"new dump directory {self.directory} on {self.target} could belong to "
                f"{', '.join(self.candidates)}; ignored (give each host distinct addresses)"
            )
        if self.problem == "local-form":
            return (
                f"new dump directory {self.directory} on {self.target} has no host address in its "
                "name and several watched hosts use this target; ignored"
            )
        return (
            f"new dump directory {self.directory} on {self.target} names {self.identity}, which is no "
            "watched host's address, alias or name; ignored (add it to the host's aliases?)"
        )

    def data(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "directory": self.directory,
            "identity": self.identity,
            "problem": self.problem,
            "candidates": list(self.candidates),
        }


@dataclass(frozen=True)
class TargetProblem(DumpEvent):
    kind: ClassVar[EventKind] = EventKind.DUMP_TARGET_PROBLEM
    level: ClassVar[Level] = Level.WARNING
    target: str
    problem: str
    host: None = None

    def message(self) -> str:
        return f"{self.target}: {self.problem} (still trying)"

    def data(self) -> dict[str, Any]:
        return {"target": self.target, "problem": self.problem}


@dataclass(frozen=True)
class Suspicious(DumpEvent):
    """An entry the watcher will not touch: a symbolic link, FIFO, device or socket where a
    dump file or directory belongs.  Its target and content are never read."""

    kind: ClassVar[EventKind] = EventKind.DUMP_SUSPICIOUS
    level: ClassVar[Level] = Level.WARNING
    host: str | None
    #: where the entry is (server and path)
    location: str
    problem: str

    def message(self) -> str:
        return f"suspicious entry {self.location}: {self.problem}"

    def data(self) -> dict[str, Any]:
        return {"location": self.location, "problem": self.problem}
