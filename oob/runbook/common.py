"""What every runbook shares: per-host outcomes and running hosts concurrently."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from oob.errors import OobError
from oob.model import Host
from oob.runbook.methods import DriverOptions  # noqa: F401 - where the commands import it from

log = logging.getLogger("oob.runbook")

_R = TypeVar("_R")


class Status(StrEnum):
    """How one command ended for one host (``status`` in reports)."""

    OK = "ok"
    DRY_RUN = "dry-run"
    FAILED = "failed"
    #: refused for safety: nothing was sent
    REFUSED = "refused"
    #: the request left and no answer came back: it may have been applied
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    """The result of one command for one host; the report and the exit code come from these."""

    host: str
    action: str
    status: Status
    exit_code: int = 0
    via: str | None = None
    error: OobError | None = None
    fallback_reason: str | None = None
    warnings: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_error(cls, host: str, action: str, error: OobError, **kwargs: Any) -> Outcome:
        status = {"refused_for_safety": Status.REFUSED, "outcome_unknown": Status.UNKNOWN}.get(
            error.kind, Status.FAILED
        )
        return cls(host=host, action=action, status=status, exit_code=error.exit_code, error=error, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": self.host, "action": self.action, "status": self.status}
        if self.via:
            data["via"] = self.via
        if self.fallback_reason:
            data["fallback_reason"] = self.fallback_reason
        data.update(self.detail)
        if self.error is not None:
            data.update(self.error.report_fields())
        if self.warnings:
            data["warnings"] = list(self.warnings)
        data["exit_code"] = self.exit_code
        return data


def run_per_host(
    hosts: Sequence[Host],
    work: Callable[[Host], _R],
    parallel: int,
    on_bug: Callable[[Host, Exception], _R] | None = None,
) -> list[_R]:
    """Run ``work`` for every host, at most ``parallel`` at once; results in input order.

    ``on_bug`` turns an exception that is not an ``OobError`` (a bug, or hostile data
    that slipped past a check) into that host's result, so one host can never take the
    others' results with it."""

    def guarded(host: Host) -> _R:
        try:
            return work(host)
        except OobError:
            raise
        except Exception as exc:
            if on_bug is None:
                raise
            # the report carries the one line; the traceback only with -v
            log.debug("%s: internal error", host.name, exc_info=True)
            return on_bug(host, exc)

    if len(hosts) <= 1 or parallel <= 1:
        return [guarded(host) for host in hosts]
    with ThreadPoolExecutor(max_workers=min(parallel, len(hosts)), thread_name_prefix="oob-host") as pool:
        return list(pool.map(guarded, hosts))


def internal_error(host: Host, exc: Exception) -> OobError:
    """The report's error for a bug met while handling ``host``."""
    return OobError(
        f"internal error: {type(exc).__name__}: {exc} (a bug: run with -v and report it)", host=host.name
    )
