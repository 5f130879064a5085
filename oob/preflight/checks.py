"""Readiness checks: small functions over the facts of one host -> ok / warn / fail + reason.

``needs_root``: the check could not be done fully without root (a file the running user
may not read), or, run as root, it read something only root may read.  No I/O here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from oob.model import Host
from oob.preflight import kdumpconf
from oob.preflight.crashkernel import CrashkernelError, Reservation, human, reservation
from oob.preflight.facts import NEEDS_ROOT, NOT_INSTALLED, ROOT_TOOLS, STATUS_TOOLS, HostFacts, Read


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Side(StrEnum):
    BMC = "bmc"
    HOST = "host"


OK, WARN, FAIL, SKIP = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP
#: files that are root-only on some distributions (SUSE's sysconfig holds SMTP passwords)
ROOT_ONLY = frozenset({"/etc/sysconfig/kdump"})


@dataclass(frozen=True)
class CheckResult:
    name: str
    side: Side | str
    status: CheckStatus
    reason: str
    needs_root: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.name,
            "side": self.side,
            "status": self.status,
            "reason": self.reason,
        }
        if self.needs_root:
            out["needs_root"] = True
        out.update(self.data)
        return out


@dataclass(frozen=True)
class HostView:
    """The facts of one host, with what is derived from them once."""

    host: Host
    facts: HostFacts
    family: str | None
    ram: int | None
    #: the BMC is an HPE iLO (hpwdt matters)
    hpe: bool = False
    #: ``user@host:port`` the SSH connection really logged in as (ssh configuration applied)
    login: str | None = None
    #: how the host may name the machine oob runs on (its address as the host saw the SSH
    #: login come from, its host name): what ``fence_kdump_nodes`` must list
    this_machine: tuple[str, ...] = ()

    @classmethod
    def of(cls, host: Host, facts: HostFacts, *, hpe: bool | None = None) -> HostView:
        family = kdumpconf.family(facts.os_release())
        if family is None and host.dump.layout in kdumpconf.SERVICE:
            family = host.dump.layout
        return cls(host, facts, family, facts.ram(), host.bmc.kind == "ilo" if hpe is None else hpe)


def _denied(view: HostView, path: str, name: str) -> CheckResult:
    return CheckResult(
        name, "host", WARN, f"cannot read {path} without root (permission denied)", needs_root=True
    )


def check_crashkernel(view: HostView) -> CheckResult:
    cmdline = view.facts.file("/proc/cmdline")
    if not cmdline.ok:
        return CheckResult("crashkernel", "host", FAIL, f"cannot read /proc/cmdline: {cmdline.text.strip()}")
    try:
        found: Reservation | None = reservation(cmdline.text, view.ram)
    except CrashkernelError as exc:
        return CheckResult("crashkernel", "host", FAIL, f"crashkernel= not understood: {exc}")
    if found is None:
        return CheckResult(
            "crashkernel",
            "host",
            FAIL,
            "no crashkernel= in /proc/cmdline: no memory is reserved for a crash kernel",
        )
    data = {"crashkernel": found.to_dict()}
    given = " ".join(f"crashkernel={v.text}" for v in found.values)
    if found.values[-1].kind == "auto" and found.size is None:
        return CheckResult(
            "crashkernel",
            "host",
            WARN,
            f"{given}: 'auto' is gone from current kernels; see kexec_crash_size",
            data=data,
        )
    if found.size == 0:
        ram = human(view.ram) if view.ram else "this"
        return CheckResult(
            "crashkernel", "host", FAIL, f"{given}: no range covers {ram} of RAM: nothing reserved", data=data
        )
    ram_text = f" for {human(view.ram)} of RAM" if view.ram else ""
    return CheckResult("crashkernel", "host", OK, f"{given}: {found.describe()}{ram_text}", data=data)


def check_crash_size(view: HostView) -> CheckResult:
    read = view.facts.file("/sys/kernel/kexec_crash_size")
    size = read.integer()
    if size is None:
        return CheckResult(
            "crash_size", "host", FAIL, f"cannot read /sys/kernel/kexec_crash_size: {read.text.strip()}"
        )
    lines = view.facts.crash_kernel_iomem()
    hidden = bool(lines) and all(line.startswith("00000000-00000000") for line in lines)
    if size <= 0:
        return CheckResult(
            "crash_size", "host", FAIL, "kexec_crash_size is 0: the kernel reserved no crash memory"
        )
    where = "; /proc/iomem: Crash kernel" if lines else "; no 'Crash kernel' line in /proc/iomem"
    if hidden:
        where += " (addresses hidden without root)"
    return CheckResult(
        "crash_size",
        "host",
        OK,
        f"{human(size)} reserved{where}",
        needs_root=hidden,
        data={"crash_size": size},
    )


def check_crash_loaded(view: HostView) -> CheckResult:
    read = view.facts.file("/sys/kernel/kexec_crash_loaded")
    value = read.integer()
    if value is None:
        return CheckResult(
            "crash_loaded", "host", FAIL, f"cannot read /sys/kernel/kexec_crash_loaded: {read.text.strip()}"
        )
    if value != 1:
        return CheckResult(
            "crash_loaded",
            "host",
            FAIL,
            "kexec_crash_loaded is 0: no crash kernel is loaded, a panic will not dump",
        )
    return CheckResult("crash_loaded", "host", OK, "a crash kernel is loaded")


def check_nmi_panic(view: HostView) -> CheckResult:
    unknown = view.facts.file("/proc/sys/kernel/unknown_nmi_panic").integer()
    unrecovered = view.facts.file("/proc/sys/kernel/panic_on_unrecovered_nmi").integer()
    data = {"unknown_nmi_panic": unknown, "panic_on_unrecovered_nmi": unrecovered}
    if unknown == 1:
        return CheckResult("nmi_panic", "host", OK, "kernel.unknown_nmi_panic = 1", data=data)
    if unrecovered == 1:
        return CheckResult("nmi_panic", "host", OK, "kernel.panic_on_unrecovered_nmi = 1", data=data)
    if view.hpe and view.facts.module_loaded("hpwdt"):
        return CheckResult(
            "nmi_panic",
            "host",
            WARN,
            "kernel.unknown_nmi_panic = 0, but hpwdt catches iLO NMIs and panics itself",
            data=data,
        )
    if unknown is None and unrecovered is None:
        return CheckResult("nmi_panic", "host", FAIL, "cannot read kernel.unknown_nmi_panic", data=data)
    return CheckResult(
        "nmi_panic",
        "host",
        FAIL,
        "kernel.unknown_nmi_panic = 0 (and panic_on_unrecovered_nmi = 0): "
        "an NMI from the BMC will not crash the host",
        data=data,
    )


def check_panic(view: HostView) -> CheckResult:
    value = view.facts.file("/proc/sys/kernel/panic").integer()
    if value is None:
        return CheckResult("panic", "host", WARN, "cannot read kernel.panic")
    if value == 0:
        return CheckResult(
            "panic",
            "host",
            WARN,
            "kernel.panic = 0: after a failed dump the host hangs instead of rebooting",
            data={"panic": value},
        )
    return CheckResult("panic", "host", OK, f"kernel.panic = {value}", data={"panic": value})


def check_sysrq(view: HostView) -> CheckResult:
    value = view.facts.file("/proc/sys/kernel/sysrq").integer()
    text = "cannot read kernel.sysrq" if value is None else f"kernel.sysrq = {value}"
    return CheckResult(
        "sysrq",
        "host",
        OK,
        f"{text} (root's /proc/sysrq-trigger works whatever it says)",
        data={"sysrq": value},
    )


def status_tool(view: HostView) -> tuple[str, Read] | None:
    """The distribution's own kdump status command that answered (installed), if any."""
    for tool in STATUS_TOOLS:
        read = view.facts.statuses.get(tool)
        if read is not None and read.rc != NOT_INSTALLED:
            return tool, read
    return None


def _tool_verdict(tool: str, read: Read) -> tuple[bool | None, str]:
    """(operational?, what it said); None: it did not say."""
    if read.rc == NEEDS_ROOT:
        return None, f"{tool} status needs root: not run"
    lines = [line.strip() for line in read.text.splitlines() if line.strip()]
    key = "operational" if tool == "kdumpctl" else "ready to kdump"
    line = next((line for line in lines if key in line.lower()), None)
    if line is None:
        return None, f"{tool} status gave no verdict (rc {read.rc}): {lines[0] if lines else 'no output'}"
    lower = line.lower()
    ok = ("not operational" not in lower) if tool == "kdumpctl" else ("not ready" not in lower)
    return ok, f"{tool} status: {line}"


def check_service(view: HostView) -> CheckResult:
    """systemctl is-active for the family's unit, and ``kdumpctl status`` / ``kdump-config status``
    where installed (which one spoke is in the reason and ``status_tool``)."""
    if view.family is None:
        return CheckResult("service", "host", WARN, "distribution not recognised from /etc/os-release")
    unit = kdumpconf.SERVICE[view.family]
    read = view.facts.services.get(unit)
    state = read.text.strip().splitlines()[-1] if read and read.text.strip() else "unknown"
    if view.family == "debian":
        config = view.facts.file(kdumpconf.CONFIG["debian"])
        if config.ok and kdumpconf.debian_disabled(config.text):
            return CheckResult(
                "service", "host", FAIL, "USE_KDUMP=0 in /etc/default/kdump-tools: kdump-tools is off"
            )
    data: dict[str, Any] = {"service": unit}
    verdict: bool | None = None
    said = ""
    root = False
    found = status_tool(view)
    if found is not None:
        tool, tool_read = found
        verdict, said = _tool_verdict(tool, tool_read)
        root = tool in ROOT_TOOLS
        data.update(status_tool=tool, status_said=said)
    active = read is not None and read.ok and state == "active"
    no_systemctl = read is not None and read.rc == NOT_INSTALLED
    if active or (no_systemctl and verdict):
        text = f"{unit} is active" if active else "no systemctl"
        if verdict is False:
            return CheckResult("service", "host", WARN, f"{text}, but {said}", needs_root=root, data=data)
        return CheckResult(
            "service", "host", OK, f"{text}; {said}" if said else text, needs_root=root, data=data
        )
    data["state"] = state
    why = f"{unit} is {state}: the crash kernel will not be reloaded at boot"
    return CheckResult("service", "host", FAIL, f"{why}; {said}" if said else why, needs_root=root, data=data)


def configured(view: HostView) -> tuple[kdumpconf.ConfiguredTarget | None, CheckResult | None]:
    """The dump target the host's kdump config names, or a result saying why it is not known."""
    if view.family is None:
        return None, CheckResult("target", "host", WARN, "distribution not recognised: kdump config not read")
    path = kdumpconf.CONFIG[view.family]
    read = view.facts.file(path)
    if read.denied:
        return None, _denied(view, path, "target")
    if not read.ok:
        return None, CheckResult("target", "host", FAIL, f"{path}: {read.text.strip() or 'cannot read'}")
    return kdumpconf.configured_target(view.family, read.text), None


def check_target(view: HostView) -> CheckResult:
    target, problem = configured(view)
    if problem is not None:
        return problem
    assert target is not None
    root = view.family is not None and kdumpconf.CONFIG[view.family] in ROOT_ONLY and bool(view.facts.root)
    data = {"configured": target.to_dict(), "inventory": view.host.dump.target}
    if not view.host.dump.target:
        return CheckResult(
            "target",
            "host",
            WARN,
            f"kdump writes to {target.describe()}; the inventory has no dump.target to watch",
            needs_root=root,
            data=data,
        )
    verdict, why = compare_target(target, view.host)
    status = OK if verdict else WARN
    return CheckResult("target", "host", status, why, needs_root=root, data=data)


def compare_target(target: kdumpconf.ConfiguredTarget, host: Host) -> tuple[bool, str]:
    """Does the inventory's ``dump.target`` look at the place the host's kdump writes to?"""
    from oob.dump.targets import parse_target

    assert host.dump.target is not None
    spec = parse_target(host.dump.target)
    configured_text = target.describe()
    same_path = posixpath.normpath(spec.path) == posixpath.normpath(target.path)
    if spec.scheme == "ssh":
        names = {host.name.lower(), *(a.lower() for a in host.aliases)} | (
            {host.address.lower()} if host.address else set()
        )
        server = (spec.server or "").lower()
        same_server = server == (target.server or "").lower() if target.kind != "local" else server in names
        if same_server and same_path:
            return True, f"kdump writes to {configured_text}, which dump.target reads"
        return False, (f"mismatch: kdump writes to {configured_text} but dump.target is {spec.location()}")
    if same_path:
        return True, f"kdump writes to {configured_text}, which dump.target reads"
    if target.kind == "nfs":
        return True, (
            f"kdump writes to {configured_text}; dump.target {spec.path} should be that export mounted "
            "here (not verifiable from the host)"
        )
    return False, f"mismatch: kdump writes to {configured_text} but dump.target is {spec.path}"


def check_space(view: HostView) -> CheckResult:
    free = view.facts.free
    if free is None:
        why = view.facts.free_error or "free space not measured (the dump goes over the network)"
        return CheckResult("space", "host", OK if not view.facts.free_error else WARN, why)
    path, available = free
    data = {"free": available, "ram": view.ram}
    if view.ram is None:
        return CheckResult(
            "space", "host", WARN, f"{human(available)} free at {path}; RAM unknown", data=data
        )
    if available < view.ram:
        return CheckResult(
            "space",
            "host",
            WARN,
            f"only {human(available)} free at {path}, less than the "
            f"{human(view.ram)} of RAM (a filtered dump is usually smaller)",
            data=data,
        )
    return CheckResult(
        "space", "host", OK, f"{human(available)} free at {path} for {human(view.ram)} of RAM", data=data
    )


def check_target_space(view: HostView, measured: tuple[str, int] | str | None) -> CheckResult:
    """Free space at the inventory's ``dump.target`` as oob sees it (file:// here, ssh:// by df)."""
    if measured is None:
        return CheckResult("target_space", "host", SKIP, "no dump.target in the inventory")
    if isinstance(measured, str):
        return CheckResult("target_space", "host", WARN, measured)
    where, available = measured
    data = {"free": available, "ram": view.ram, "at": where}
    if view.ram is None:
        return CheckResult(
            "target_space",
            "host",
            WARN,
            f"{human(available)} free at dump.target {where}; RAM unknown",
            data=data,
        )
    if available < view.ram:
        return CheckResult(
            "target_space",
            "host",
            WARN,
            f"only {human(available)} free at dump.target {where}, "
            f"less than the {human(view.ram)} of RAM (a filtered dump is usually smaller)",
            data=data,
        )
    return CheckResult(
        "target_space",
        "host",
        OK,
        f"{human(available)} free at dump.target {where} for {human(view.ram)} of RAM",
        data=data,
    )


def check_hpwdt(view: HostView) -> CheckResult:
    if not view.hpe:
        return CheckResult("hpwdt", "host", SKIP, "not an HPE host")
    if view.facts.module_loaded("hpwdt"):
        return CheckResult(
            "hpwdt",
            "host",
            OK,
            "note: hpwdt is loaded; it catches iLO NMIs itself and panics ('An NMI occurred')",
            data={"hpwdt": True},
        )
    return CheckResult(
        "hpwdt", "host", OK, "hpwdt not loaded: the kernel's NMI handler decides", data={"hpwdt": False}
    )


def check_fence_kdump(view: HostView) -> CheckResult:
    """With ``dump.fence_kdump``: RHEL's kdump.conf names this machine in ``fence_kdump_nodes``, so
    its crash kernel tells oob "kdump has started" (:mod:`oob.signals.fence_kdump`)."""
    if not view.host.dump.fence_kdump:
        return CheckResult("fence_kdump", "host", SKIP, "dump.fence_kdump is not set in the inventory")
    if view.family != "rhel":
        what = f"a {view.family} host" if view.family else "the distribution is not recognised"
        return CheckResult(
            "fence_kdump", "host", SKIP, f"not applicable: fence_kdump_nodes is RHEL/Fedora kdump's ({what})"
        )
    path = kdumpconf.CONFIG["rhel"]
    read = view.facts.file(path)
    if read.denied:
        return _denied(view, path, "fence_kdump")
    if not read.ok:
        return CheckResult("fence_kdump", "host", WARN, f"{path}: {read.text.strip() or 'cannot read'}")
    config = kdumpconf.fence_kdump_config(read.text)
    data: dict[str, Any] = {"fence_kdump": config.to_dict(), "this_machine": list(view.this_machine)}
    name = view.this_machine[0] if view.this_machine else "THIS-MACHINE"
    fix = "then run kdumpctl restart"
    if not config.nodes:
        return CheckResult(
            "fence_kdump",
            "host",
            WARN,
            f"no fence_kdump_nodes in {path}: the crash kernel tells no one it started; "
            f'fix: add "fence_kdump_nodes {name}" to it, {fix}',
            data=data,
        )
    listed = " ".join(config.nodes)
    if not view.this_machine:
        return CheckResult(
            "fence_kdump",
            "host",
            WARN,
            f"fence_kdump_nodes {listed}: cannot tell whether that is this machine (the host saw the SSH "
            "login come from elsewhere, a jump host?)",
            data=data,
        )
    named = [node for node in config.nodes if names_this_machine(node, view.this_machine)]
    if not named:
        return CheckResult(
            "fence_kdump",
            "host",
            WARN,
            f"fence_kdump_nodes {listed} does not name this machine ({', '.join(view.this_machine)}); "
            f"fix: add {name} to that line in {path}, {fix}",
            data=data,
        )
    if config.port is None:
        return CheckResult(
            "fence_kdump",
            "host",
            WARN,
            f"fence_kdump_nodes names this machine ({named[0]}) but fence_kdump_args "
            f"'{config.args}' has no port oob can read; fix: give -p 7410 there, {fix}",
            data=data,
        )
    port = "" if config.port == kdumpconf.FENCE_KDUMP_PORT else f" (listen with --fence-kdump {config.port})"
    return CheckResult(
        "fence_kdump",
        "host",
        OK,
        f"fence_kdump_nodes names this machine ({named[0]}), port {config.port}{port}",
        data=data,
    )


def names_this_machine(node: str, this_machine: tuple[str, ...]) -> bool:
    """Is ``node`` (a fence_kdump_nodes word) one of this machine's addresses or names?  Names
    compare without case, a short name with a fully qualified one."""
    from oob.dump.matching import normalize

    key = normalize(node)
    ours = {normalize(item) for item in this_machine}
    if key in ours:
        return True
    if any(char.isalpha() for char in key) and ":" not in key:
        short = key.split(".", 1)[0]
        return any(
            item.split(".", 1)[0] == short
            for item in ours
            if any(char.isalpha() for char in item) and ":" not in item
        )
    return False


HOST_CHECKS: tuple[Callable[[HostView], CheckResult], ...] = (
    check_crashkernel,
    check_crash_size,
    check_crash_loaded,
    check_nmi_panic,
    check_panic,
    check_sysrq,
    check_service,
    check_target,
    check_space,
    check_hpwdt,
    check_fence_kdump,
)
HOST_CHECK_NAMES: tuple[str, ...] = (
    "ssh",
    "crashkernel",
    "crash_size",
    "crash_loaded",
    "nmi_panic",
    "panic",
    "sysrq",
    "service",
    "target",
    "space",
    "target_space",
    "hpwdt",
    "fence_kdump",
)


def host_checks(view: HostView) -> list[CheckResult]:
    return [check(view) for check in HOST_CHECKS]


def local_dump_path(view: HostView) -> str | None:
    """Where to measure free space on the host itself: a local kdump target only."""
    target, _ = configured(view)
    return target.path if target is not None and target.kind == "local" else None
