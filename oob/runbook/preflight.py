"""``oob preflight``: will a dump be written if this host hangs tonight?

Per host, the BMC side (reachable, credentials, TLS as configured, power, NMI offered and
how: :func:`oob.runbook.nmi.plan_host`, open sessions and their timeout from the Redfish
SessionService, read with oob's own session, which is closed afterwards) and the host side over
SSH (:mod:`oob.preflight`: crashkernel=, kexec_crash_size, kexec_crash_loaded, NMI sysctls,
kernel.panic, the kdump service, the configured dump target against the inventory's, free
space at a local kdump target on the host and at the inventory's ``dump.target`` (``file://``
here, ``ssh://`` by ``df`` on the dump server), hpwdt).  A host is ready when no check
failed (``strict``: and none warned).  Nothing is changed on any host or BMC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oob import asyncbridge
from oob.defaults import DEFAULT_PARALLEL
from oob.errors import OobError
from oob.events import Emit, Event, EventKind, Level
from oob.model import Host
from oob.preflight.checks import FAIL, OK, SKIP, WARN, CheckResult, HostView, host_checks
from oob.runbook.common import Outcome, run_per_host
from oob.runbook.methods import DriverOptions
from oob.runbook.nmi import CrashPlan, NmiRequest, plan_host
from oob.ssh import CLOSE_TIMEOUT, SshOptions

BMC_CHECK_NAMES: tuple[str, ...] = ("reachable", "auth", "tls", "power", "nmi", "sessions")


@dataclass(frozen=True)
class PreflightRequest:
    driver: DriverOptions = DriverOptions()  # noqa: RUF009 - frozen, shared safely
    ssh: SshOptions | None = None
    parallel: int = DEFAULT_PARALLEL
    #: warnings make a host not ready too
    strict: bool = False
    ssh_timeout_s: float = 30.0


@dataclass(frozen=True)
class HostReadiness:
    host: str
    bmc: str
    checks: tuple[CheckResult, ...]
    strict: bool = False
    family: str | None = None
    ram: int | None = None
    #: the SSH login was root (None: not logged in)
    root: bool | None = None

    @property
    def ready(self) -> bool:
        bad = (FAIL, WARN) if self.strict else (FAIL,)
        return not any(c.status in bad for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ready else 1

    @property
    def problems(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status in (FAIL, WARN)]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "bmc": self.bmc,
            "ready": self.ready,
            "distro": self.family,
            "ram": self.ram,
            "root": self.root,
            "needed_root": [c.name for c in self.checks if c.needs_root],
            "checks": [c.to_dict() for c in self.checks],
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True)
class PreflightReport:
    hosts: list[HostReadiness]

    @property
    def exit_code(self) -> int:
        return max((h.exit_code for h in self.hosts), default=0)

    def summary(self) -> dict[str, Any]:
        return {
            "hosts": len(self.hosts),
            "ready": sum(h.ready for h in self.hosts),
            "not_ready": [h.host for h in self.hosts if not h.ready],
            "exit_code": self.exit_code,
        }


def _tls(host: Host, insecure: bool) -> CheckResult:
    if host.bmc.is_ipmi_only:
        return CheckResult("tls", "bmc", SKIP, "IPMI only: no TLS")
    if host.bmc.kind == "esxi":
        return CheckResult("tls", "bmc", SKIP, "ESXi over SSH: no TLS (the host key is checked)")
    if host.bmc.kind == "libvirt":
        return CheckResult(
            "tls", "bmc", SKIP, "libvirt: its own transport checks the hypervisor (ssh keys, libvirt's PKI)"
        )
    if insecure or not host.bmc.verify:
        why = "--insecure" if insecure else "bmc.verify = false"
        return CheckResult("tls", "bmc", WARN, f"certificate not verified ({why})")
    if host.bmc.fingerprint:
        return CheckResult("tls", "bmc", OK, "certificate pinned (bmc.fingerprint)")
    if host.bmc.ca_file:
        return CheckResult("tls", "bmc", OK, f"verified against {host.bmc.ca_file}")
    return CheckResult("tls", "bmc", OK, "verified against the system CA bundle")


def _sessions(plan: CrashPlan) -> CheckResult:
    """Open-session headroom, where the BMC's SessionService says (read with oob's own session)."""
    from oob.drivers.redfish.vendors import SESSION_LIMITS

    usage = plan.sessions
    if usage is None:
        return CheckResult("sessions", "bmc", SKIP, "not read: no Redfish session was opened")
    if isinstance(usage, str):
        return CheckResult("sessions", "bmc", WARN if usage.startswith("cannot") else SKIP, usage)
    data = {"sessions": usage.to_dict()}
    timeout = f", timeout {usage.timeout} s" if usage.timeout is not None else ""
    if usage.enabled is False:
        return CheckResult(
            "sessions", "bmc", WARN, f"the SessionService says ServiceEnabled = false{timeout}", data=data
        )
    if usage.open is None:
        return CheckResult("sessions", "bmc", OK, f"the BMC does not count its sessions{timeout}", data=data)
    limit = SESSION_LIMITS.get(usage.vendor)
    text = f"{usage.open} open (oob's included){timeout}"
    if limit is None:
        return CheckResult("sessions", "bmc", OK, text, data=data)
    data["sessions"]["limit"] = limit
    if usage.open >= limit:
        return CheckResult(
            "sessions",
            "bmc",
            WARN,
            f"{text}: at the {limit} a {usage.vendor} BMC allows; the next login may be refused",
            data=data,
        )
    return CheckResult(
        "sessions", "bmc", OK, f"{text}, of the {limit} a {usage.vendor} BMC allows", data=data
    )


def bmc_checks(plan: CrashPlan | Outcome, host: Host, insecure: bool) -> list[CheckResult]:
    """What :func:`plan_host` found, as checks."""
    tls = _tls(host, insecure)
    if isinstance(plan, CrashPlan):
        nmi_status = WARN if plan.nmi.offered is None else OK
        how = f"via {plan.method} ({plan.nmi.source})"
        if plan.fallback_reason:
            how += f"; {plan.fallback_reason}"
        return [
            CheckResult("reachable", "bmc", OK, f"{host.bmc.address} answers ({plan.method})"),
            CheckResult("auth", "bmc", OK, "credentials accepted"),
            tls,
            CheckResult("power", "bmc", OK, f"power {plan.power.value}", data={"power": plan.power.value}),
            CheckResult(
                "nmi",
                "bmc",
                nmi_status,
                f"NMI offered {how}"
                if nmi_status == OK
                else f"the BMC does not list its ResetType values; NMI {how} unchecked",
                data={"via": plan.method, "nmi": plan.nmi.to_dict()},
            ),
            _sessions(plan),
        ]
    error = plan.error
    assert error is not None
    skipped = {name: CheckResult(name, "bmc", SKIP, "not checked") for name in BMC_CHECK_NAMES}
    skipped["tls"] = tls
    failing = {
        "unreachable": "reachable",
        "tls": "tls",
        "auth": "auth",
        "unsupported": "nmi",
        "refused": "nmi",
        "refused_for_safety": "power",
    }.get(error.kind, "reachable")
    order = list(BMC_CHECK_NAMES[:-1])
    said = f"{error.message} {error.bmc_message or ''}".lower()
    if any(words in said for words in ("sessionlimit", "simultaneous sessions", "session limit")):
        skipped["sessions"] = CheckResult(
            "sessions",
            "bmc",
            FAIL,
            "the BMC has no session free: every one it allows is open (oob could not log in)",
        )
    for name in order[: order.index(failing)]:
        # passed on the way to the failing one; tls says what it says (a libvirt, IPMI-only
        # or ESXi host's skip is no "ok")
        if skipped[name].status == SKIP and name != "tls":
            skipped[name] = CheckResult(name, "bmc", OK, "ok")
    skipped[failing] = CheckResult(failing, "bmc", FAIL, error.message)
    return [skipped[name] for name in BMC_CHECK_NAMES]


def host_side(host: Host, request: PreflightRequest) -> tuple[list[CheckResult], HostView | None]:
    from oob.preflight.hostfacts import gather

    if not host.address:
        return [
            CheckResult("ssh", "host", FAIL, "no address in the inventory: cannot log in to the host")
        ], None
    try:
        view = asyncbridge.run(
            gather(host, request.ssh, timeout=request.ssh_timeout_s),
            timeout=host_ssh_deadline(request.ssh, 2, request.ssh_timeout_s),
        )
    except OobError as exc:
        # the host's own SSH (HostSshError): a failed check, never a dump target's error
        return [CheckResult("ssh", "host", FAIL, f"cannot run the checks over SSH: {exc.message}")], None
    except TimeoutError as exc:
        return [CheckResult("ssh", "host", FAIL, f"cannot run the checks over SSH: {exc}")], None
    login = f"logged in as {view.login or host.ssh.login(host.address)}"
    if view.facts.root is False:
        login += " (not root: some checks may need root)"
    return [
        CheckResult("ssh", "host", OK, login),
        *host_checks(view),
        target_space(host, view, request),
    ], view


def host_ssh_deadline(options: SshOptions | None, commands: int, command_timeout: float) -> float:
    """Seconds a whole SSH session with the host may take: the net under its own bounds
    (connect, each command, close), so it only fires when one of those did not hold."""
    return (options or SshOptions()).connect_timeout + commands * command_timeout + CLOSE_TIMEOUT + 1.0


def target_space(host: Host, view: HostView, request: PreflightRequest) -> CheckResult:
    from oob.preflight.checks import check_target_space
    from oob.preflight.targetspace import measure

    if not host.dump.target:
        return check_target_space(view, None)
    return check_target_space(view, measure(host.dump.target, request.ssh, timeout=request.ssh_timeout_s))


def readiness(host: Host, plan: CrashPlan | Outcome, request: PreflightRequest) -> HostReadiness:
    checks = bmc_checks(plan, host, request.driver.insecure)
    host_results, view = host_side(host, request)
    return HostReadiness(
        host=host.name,
        bmc=host.bmc.address,
        checks=(*checks, *host_results),
        strict=request.strict,
        family=view.family if view else None,
        ram=view.ram if view else None,
        root=view.facts.root if view else None,
    )


def emit_readiness(result: HostReadiness, emit: Emit) -> None:
    problems = "; ".join(f"{c.name}: {c.reason}" for c in result.problems)
    message = "ready" if result.ready else f"not ready: {problems}"
    if result.ready and problems:
        message = f"ready, with warnings: {problems}"
    emit(
        Event(
            Level.INFO if result.ready else Level.WARNING,
            message,
            result.host,
            EventKind.READINESS,
            result.to_dict(),
        )
    )


def check_one(host: Host, request: PreflightRequest, emit: Emit) -> HostReadiness:
    nmi_request = NmiRequest(
        via=request.driver.via,
        insecure=request.driver.insecure,
        dry_run=True,
        connect_attempts=request.driver.connect_attempts,
        sessions=True,
        refresh=request.driver.refresh,
    )
    plan = plan_host(host, nmi_request, emit)
    result = readiness(host, plan, request)
    emit_readiness(result, emit)
    return result


def run_preflight(hosts: Sequence[Host], request: PreflightRequest, *, emit: Emit) -> PreflightReport:
    results = run_per_host(hosts, lambda h: check_one(h, request, emit), request.parallel)
    report = PreflightReport(list(results))
    emit(Event(Level.INFO, "summary", None, EventKind.SUMMARY, report.summary()))
    return report
