"""What each BMC is and offers: vendor, model, firmware, power, NMI support."""

from __future__ import annotations

from collections.abc import Sequence

from oob.defaults import DEFAULT_PARALLEL
from oob.errors import OobError
from oob.events import Emit
from oob.model import Host
from oob.runbook.common import Outcome, Status, internal_error, run_per_host
from oob.runbook.methods import DriverOptions, MethodsFailed, first_method


def _info(host: Host, options: DriverOptions, emit: Emit) -> Outcome:
    try:
        found = first_method(host, options, lambda driver: driver.info())
    except MethodsFailed as failed:
        return Outcome.from_error(host.name, "bmc.info", failed.error)
    except OobError as exc:
        return Outcome.from_error(host.name, "bmc.info", exc.for_host(host.name))
    method, info, fallback = found.method, found.result, found.fallback_reason
    detail = info.to_dict()
    detail.pop("host", None)
    detail.pop("method", None)
    listed = detail.pop("warnings", None)
    warnings = tuple(str(w) for w in listed) if isinstance(listed, (list, tuple)) else ()
    return Outcome(
        host.name,
        "bmc.info",
        Status.OK,
        via=method,
        fallback_reason=fallback,
        warnings=warnings,
        detail=detail,
    )


def run_info(
    hosts: Sequence[Host], options: DriverOptions, *, emit: Emit, parallel: int = DEFAULT_PARALLEL
) -> list[Outcome]:
    return run_per_host(
        hosts,
        lambda h: _info(h, options, emit),
        parallel,
        on_bug=lambda h, exc: Outcome.from_error(h.name, "bmc.info", internal_error(h, exc)),
    )
