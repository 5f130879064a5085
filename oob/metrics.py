"""Prometheus metrics in node_exporter's textfile format (``--prometheus-textfile FILE.prom``).

The text is prometheus_client's (``generate_latest``), written by its ``write_to_textfile``:
to a temporary file beside the target, then renamed over it, so node_exporter never reads
half a file. Every series carries ``host``; a run writes the whole file anew (a host left
out of this run is gone from the file, as it is from the run).

Metrics (all gauges):

==========================================  ====================================================
oob_preflight_ready{host}                   1 when the host would produce a dump (no failed check)
oob_preflight_check{host,check,oob_preflight_check}  1 for the check's status (ok, warn, fail, skip)
oob_preflight_crashkernel_bytes{host}       memory reserved for the crash kernel (kexec_crash_size)
oob_preflight_last_dump_timestamp_seconds   when the host's newest dump on its target was written
oob_preflight_last_dump_age_seconds{host}   its age when the file was written
oob_preflight_run_timestamp_seconds         when this file was written
oob_crash_outcome{host,oob_crash_outcome}   1 for the run's status (complete, failed, stalled, ...)
oob_crash_dump_bytes{host}                  size of the complete dump
oob_crash_nmi_to_dump_seconds{host}         from the NMI to the complete dump
oob_crash_host_back{host}                   1 when the host answered again after its dump
oob_crash_run_timestamp_seconds             when this file was written
==========================================  ====================================================

``oob drill`` writes the ``oob_crash_*`` series under ``oob_drill_*`` names, plus
``oob_drill_passed{host}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Enum, Gauge, write_to_textfile

from oob.errors import UsageError

if TYPE_CHECKING:
    from oob.runbook.crash import CrashReport
    from oob.runbook.drill import DrillReport
    from oob.runbook.preflight import PreflightReport

CHECK_STATES = ["ok", "warn", "fail", "skip"]
CRASH_STATES = ["complete", "dry-run", "refused", "failed", "unknown", "stalled", "timeout", "interrupted"]


def check_path(path: Path) -> Path:
    """The textfile collector reads ``*.prom`` files only, from a directory that exists."""
    if path.suffix != ".prom":
        raise UsageError(f"{path}: node_exporter's textfile collector reads only *.prom files")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: no such directory {path.parent}")
    return path


def write(path: Path, registry: CollectorRegistry) -> None:
    """Write atomically (temporary file, then rename); a failure is one line, exit 2."""
    try:
        write_to_textfile(str(check_path(path)), registry)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the metrics: {exc.strerror or exc}") from None


def preflight_registry(
    report: PreflightReport, last_dumps: Mapping[str, float | None] | None = None, *, now: float | None = None
) -> CollectorRegistry:
    """Readiness per host and check; ``last_dumps``: host -> the newest dump's time (epoch)."""
    now = time.time() if now is None else now
    registry = CollectorRegistry()
    ready = Gauge("oob_preflight_ready", "1 when the host would produce a dump", ["host"], registry=registry)
    check = Enum(
        "oob_preflight_check",
        "Each readiness check's status",
        ["host", "check"],
        states=CHECK_STATES,
        registry=registry,
    )
    reserved = Gauge(
        "oob_preflight_crashkernel_bytes", "Memory reserved for the crash kernel", ["host"], registry=registry
    )
    dump_time = Gauge(
        "oob_preflight_last_dump_timestamp_seconds",
        "When the newest dump was written",
        ["host"],
        registry=registry,
    )
    dump_age = Gauge(
        "oob_preflight_last_dump_age_seconds", "Age of the newest dump", ["host"], registry=registry
    )
    for host in report.hosts:
        ready.labels(host.host).set(1 if host.ready else 0)
        for result in host.checks:
            check.labels(host.host, result.name).state(str(result.status))
        size = host.check("crash_size")
        if size is not None and isinstance(size.data.get("crash_size"), int):
            reserved.labels(host.host).set(size.data["crash_size"])
        when = (last_dumps or {}).get(host.host)
        if when is not None:
            dump_time.labels(host.host).set(when)
            dump_age.labels(host.host).set(max(0.0, now - when))
    _run_time("oob_preflight_run_timestamp_seconds", registry, now)
    return registry


def crash_registry(report: CrashReport | DrillReport, *, now: float | None = None) -> CollectorRegistry:
    """Each host's outcome of ``oob crash`` (or ``oob drill``: ``oob_drill_*`` names)."""
    from oob.runbook.drill import DrillReport

    now = time.time() if now is None else now
    drill = isinstance(report, DrillReport)
    prefix = "oob_drill" if drill else "oob_crash"
    registry = CollectorRegistry()
    outcome = Enum(f"{prefix}_outcome", "How the run ended", ["host"], states=CRASH_STATES, registry=registry)
    size = Gauge(f"{prefix}_dump_bytes", "Size of the complete dump", ["host"], registry=registry)
    seconds = Gauge(
        f"{prefix}_nmi_to_dump_seconds", "From the NMI to the complete dump", ["host"], registry=registry
    )
    back = Gauge(
        f"{prefix}_host_back", "1 when the host answered again after its dump", ["host"], registry=registry
    )
    passed = (
        Gauge("oob_drill_passed", "1 when the drill passed", ["host"], registry=registry) if drill else None
    )
    outcomes = [o.crash for o in report.outcomes] if isinstance(report, DrillReport) else report.outcomes
    for index, crash in enumerate(outcomes):
        outcome.labels(crash.host).state(str(crash.status))
        dump = crash.dump
        if dump is not None and dump.ok:
            size.labels(crash.host).set(dump.size)
            if dump.seconds is not None:
                seconds.labels(crash.host).set(dump.seconds)
        if crash.host_back is not None:
            back.labels(crash.host).set(1 if crash.host_back else 0)
        if passed is not None and isinstance(report, DrillReport):
            passed.labels(crash.host).set(1 if report.outcomes[index].passed else 0)
    _run_time(f"{prefix}_run_timestamp_seconds", registry, now)
    return registry


def _run_time(name: str, registry: CollectorRegistry, now: float) -> None:
    Gauge(name, "When this file was written", registry=registry).set(now)
