"""What every runbook shares: per-host outcomes and running hosts concurrently."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from oob.errors import OobError
from oob.model import Host

_R = TypeVar("_R")


@dataclass(frozen=True)
class Outcome:
    """The result of one command for one host; the report and the exit code come from these."""

    host: str
    action: str
    #: "ok", "dry-run", "failed", "refused", "unknown"
    status: str
    exit_code: int = 0
    via: str | None = None
    error: OobError | None = None
    fallback_reason: str | None = None
    warnings: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_error(cls, host: str, action: str, error: OobError, **kwargs: Any) -> Outcome:
        status = {"refused_for_safety": "refused", "outcome_unknown": "unknown"}.get(error.kind, "failed")
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


def run_per_host(hosts: Sequence[Host], work: Callable[[Host], _R], parallel: int) -> list[_R]:
    """Run ``work`` for every host, at most ``parallel`` at once; results in input order."""
    if len(hosts) <= 1 or parallel <= 1:
        return [work(host) for host in hosts]
    with ThreadPoolExecutor(max_workers=min(parallel, len(hosts)), thread_name_prefix="oob-host") as pool:
        return list(pool.map(work, hosts))


def methods_for(host: Host, via: str | None) -> tuple[str, ...]:
    return (via,) if via else host.bmc.effective_methods


@dataclass(frozen=True)
class DriverOptions:
    via: str | None = None
    insecure: bool = False
    connect_attempts: int = 3


def with_first_method(
    host: Host,
    options: DriverOptions,
    work: Callable[[Any], _R],
    on_retry: Callable[[str], None] | None = None,
) -> tuple[str, _R, str | None, tuple[str, ...]]:
    """Run ``work(driver)`` with the first method that certainly can.

    Moves to the next method only on ``NmiNotSent`` (nothing happened). Returns the
    method used, the result, why earlier methods were skipped, and driver warnings.
    """
    from oob.drivers.factory import make_driver
    from oob.errors import NmiNotSent

    reasons: list[str] = []
    first_error: NmiNotSent | None = None
    for method in methods_for(host, options.via):
        try:
            driver = make_driver(
                host, method, insecure=options.insecure, connect_attempts=options.connect_attempts, on_retry=on_retry
            )
            with driver:
                result = work(driver)
                return method, result, "; ".join(reasons) or None, tuple(driver.warnings)
        except NmiNotSent as exc:
            exc.for_host(host.name)
            first_error = first_error or exc
            reasons.append(f"{method}: {exc.message}")
    assert first_error is not None
    if len(reasons) > 1:
        first_error.message = "; ".join(reasons)
    raise first_error
