"""The repeat guard: one crash per host, whoever asks, however many runs race.

Its order is what makes it hold: **lock** the host (and its BMC), **then** read the
audit log, then (the caller) confirm, then read it again, record, and send — all under
the same lock.  Two runs can then never both send: the second either finds the lock
held or, once it gets the lock, finds the first run's ``nmi.sending`` record.  The
check is keyed on the host name *and* the machine its BMC reaches (``BmcConfig.machine``:
address, non-default port, system or guest; two inventories may name one machine differently), and a line of the log that is not a whole record within the
window makes oob refuse: it could be the record that matters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from oob.audit import AuditLog, TornRecord
from oob.errors import NotDelivered, OobError, SafetyRefusal
from oob.locks import host_lock
from oob.model import Host

#: records that say a host was (or may have been) crashed on purpose
CRASH_EVENTS = ("nmi.sending", "nmi.sent", "sysrq.sending", "sysrq.sent")


@functools.cache
def _not_delivered_kinds() -> frozenset[str]:
    """The error kinds that say an NMI certainly did not reach the BMC (every ``NotDelivered``)."""
    kinds: set[str] = set()
    todo: list[type[OobError]] = [NotDelivered]
    while todo:
        cls = todo.pop()
        if "kind" in cls.__dict__:
            kinds.add(cls.kind)
        todo.extend(cls.__subclasses__())
    return frozenset(kinds)


class _Undelivered:
    """Reading the log newest first: an ``nmi.failed`` whose error says the NMI certainly did
    not leave (a refusal, an unreachable BMC: never ``outcome_unknown``) clears that run's own
    ``nmi.sending`` for that host, so a refused attempt is not taken for a sent NMI."""

    def __init__(self) -> None:
        self.kinds = _not_delivered_kinds()
        self.cleared: set[tuple[object, object]] = set()

    def __call__(self, record: dict[str, Any]) -> bool:
        key = (record.get("run"), record.get("host"))
        if record.get("event") == "nmi.failed":
            if record.get("error") in self.kinds:
                self.cleared.add(key)
            return True  # a failure is never itself the reason to refuse
        return record.get("event") == "nmi.sending" and key in self.cleared


def lock_host(
    locks: ExitStack, audit: AuditLog, host: Host, on_stale: Callable[[str, str], None] | None = None
) -> OobError | None:
    """Take the host's and its BMC's locks into ``locks``; the refusal, or None."""
    try:
        locks.enter_context(host_lock(audit.lock_dir, host.name, bmc=host.bmc.machine, on_stale=on_stale))
    except OobError as exc:
        return exc.for_host(host.name)
    return None


def repeat_refusal(audit: AuditLog | None, host: Host, *, force: bool, window_s: float) -> OobError | None:
    """Why ``host`` must not be crashed now because of a recent one, or None.

    ``force`` (``--allow-repeat``) lets a second crash through on purpose (and a torn
    record, once the engineer has looked at it).  Call it with the host's lock held.
    """
    if audit is None:
        return None
    try:
        prior = audit.recent(
            (*CRASH_EVENTS, "nmi.failed"),
            window_s,
            host=host.name,
            machine=host.bmc.machine,
            bmc=host.bmc.address,
            skip=_Undelivered(),
        )
    except OobError as exc:
        return exc.for_host(host.name)
    if prior is None or force:
        return None
    if isinstance(prior, TornRecord):
        return SafetyRefusal(
            f"the audit log {audit.path} has a line that is not a whole record at byte {prior.offset} "
            f"({prior.text[:60]!r}); it could record a crash of this host, so oob will not act. Inspect it "
            f"(tail -c +{prior.offset + 1} {audit.path} | head -n 1) and rerun with --allow-repeat if it is not one",
            host=host.name,
        )
    same_bmc = prior.get("host") != host.name
    who = f" (as '{prior.get('host')}', same BMC {host.bmc.address})" if same_bmc else ""
    what = "a SysRq crash" if str(prior.get("event", "")).startswith("sysrq") else "an NMI"
    return SafetyRefusal(
        f"{what} was already sent to this host{who} at {prior.get('ts')} by {prior.get('user')} "
        f"(run {prior.get('run')}); use --allow-repeat to send another",
        host=host.name,
    )


def record_quietly(audit: AuditLog | None, event: str, host: str | None, **fields: Any) -> tuple[str, ...]:
    """Record what already happened; a failure to record must not hide it (or change the
    exit code): it becomes a warning carried in the host's report."""
    if audit is None:
        return ()
    try:
        audit.record(event, host, **fields)
    except OobError as exc:
        return (f"the audit record '{event}' is missing: {exc.message}",)
    return ()
