"""The library entry points runbook automation calls: the same runbooks as the CLI.

    import oob

    report = oob.crash(["web42"], inventory=["/etc/oob/inventory.toml"], on_event=print)
    if report.exit_code:
        ...

Nothing here prints: progress arrives through ``on_event`` (an :class:`oob.events.Event`
with ``kind``, ``host``, ``message`` and ``data``; ``event.to_dict()`` is the JSON line
the CLI would write). Library callers confirm by calling these functions at all: they
act without asking, like ``--yes``. Errors raise :class:`oob.errors.OobError`
subclasses, each with its ``exit_code``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oob.events import Emit, discard

if TYPE_CHECKING:
    from oob.analysis import Analysis
    from oob.model import Host
    from oob.runbook.analyze import DumpAnalysis
    from oob.runbook.common import Outcome
    from oob.runbook.crash import CrashReport
    from oob.runbook.preflight import PreflightReport


def select_hosts(targets: Sequence[str], inventory: Sequence[str | Path] = ()) -> list[Host]:
    """Hosts from inventory files (default: $OOB_INVENTORY) by names, globs, @groups, ranges."""
    from oob.inventory import inventory_paths, load_inventory

    paths = inventory_paths([Path(p) for p in inventory], os.environ)
    return load_inventory(paths).select(list(targets))


def _audit(audit_log: str | Path | None) -> Any:
    from oob.audit import AuditLog, default_audit_path

    return AuditLog(Path(audit_log) if audit_log else default_audit_path(), command=["oob.api"])


def crash(
    targets: Sequence[str],
    *,
    inventory: Sequence[str | Path] = (),
    on_event: Emit = discard,
    audit_log: str | Path | None = None,
    cancel: threading.Event | None = None,
    **options: Any,
) -> CrashReport:
    """The whole crash runbook; ``options`` are :class:`oob.runbook.crash.CrashRequest` fields
    (``dry_run``, ``force``, ``recover``, ``watch=WatchOptions(...)``, ``reboot_grace_s``, ...).
    ``cancel`` set (from another thread, a signal handler): no NMI starts afterwards, the
    watch ends, what was done is reported, as Ctrl-C does in the CLI."""
    from oob.runbook.crash import CrashRequest, run_crash

    request = CrashRequest(**{"assume_yes": True, **options})
    hosts = select_hosts(targets, inventory)
    return run_crash(
        hosts, request, confirm=lambda plans: True, emit=on_event, audit=_audit(audit_log), cancel=cancel
    )


def nmi(
    targets: Sequence[str],
    *,
    inventory: Sequence[str | Path] = (),
    on_event: Emit = discard,
    audit_log: str | Path | None = None,
    cancel: threading.Event | None = None,
    **options: Any,
) -> list[Outcome]:
    """Send one NMI per host; ``options`` are :class:`oob.runbook.nmi.NmiRequest` fields.
    ``cancel`` set: no NMI starts afterwards (those in flight finish)."""
    from oob.runbook.nmi import NmiRequest, run_nmi

    request = NmiRequest(**{"assume_yes": True, **options})
    hosts = select_hosts(targets, inventory)
    return run_nmi(
        hosts, request, confirm=lambda plans: True, emit=on_event, audit=_audit(audit_log), cancel=cancel
    )


def preflight(
    targets: Sequence[str],
    *,
    inventory: Sequence[str | Path] = (),
    on_event: Emit = discard,
    **options: Any,
) -> PreflightReport:
    """Will a dump be written? Readiness per host (BMC side, and kdump over SSH), changing
    nothing; ``options`` are :class:`oob.runbook.preflight.PreflightRequest` fields
    (``driver=DriverOptions(...)``, ``ssh=SshOptions(...)``, ``strict``, ``parallel``).

    The report's ``exit_code`` is 1 when a host is not ready, which ``oob preflight`` exits
    as 8. At the package level ``oob.preflight`` is the checks' subpackage: call this one as
    ``oob.api.preflight``.
    """
    from oob.runbook.preflight import PreflightRequest, run_preflight

    request = PreflightRequest(**options)
    hosts = select_hosts(targets, inventory)
    return run_preflight(hosts, request, emit=on_event)


def analyze(subject: str | Path | bytes, *, inventory: Sequence[str | Path] = (), **options: Any) -> Analysis:
    """Why a host hung: the analysis of a kernel log.

    ``subject`` is the log's text (a ``str`` with a newline, or ``bytes``), or a dump directory
    (path, ``file://`` or ``ssh://`` URL), a log or vmcore file, or an inventory host (its
    newest dump). ``options`` are :class:`oob.runbook.analyze.AnalyzeRequest` fields.
    Raises :class:`oob.errors.OobError` when no kernel log could be read.
    """
    from oob.analysis import analyze_bytes, analyze_text

    if isinstance(subject, bytes):
        return analyze_bytes(subject)
    if isinstance(subject, str) and "\n" in subject:
        return analyze_text(subject)
    (result,) = analyze_dumps([str(subject)], inventory=inventory, **options)
    if result.analysis is None:
        assert result.error is not None
        raise result.error
    return result.analysis


def analyze_dumps(
    subjects: Sequence[str], *, inventory: Sequence[str | Path] = (), on_event: Emit = discard, **options: Any
) -> list[DumpAnalysis]:
    """``oob analyze``: one :class:`~oob.runbook.analyze.DumpAnalysis` per subject (where the
    dump is, its format, the analysis, or why none)."""
    from oob.runbook.analyze import AnalyzeRequest, InventoryHosts, run_analyze

    lookup = InventoryHosts([Path(p) for p in inventory])
    return run_analyze(
        subjects, AnalyzeRequest(**options), hosts=lookup.host, sharing=lookup.sharing, emit=on_event
    )
