"""A fleet of mock BMCs on loopback (Redfish over HTTPS, IPMI over UDP), for tests and ``oob mock serve``.

::

    from .fleet import Fleet

    with Fleet.start(vendors=["ilo5", "idrac9"], count=2, workdir=tmp_path, control="127.0.0.1:0") as fleet:
        bmc = fleet.bmc("ilo5-1")          # https://127.0.0.1:PORT, trusted through fleet.ca_file
        fleet.set_faults("ilo5-1", latency_ms=200)
        ...
    # every listener, connection and thread is closed here

    with Fleet.start(vendors=["ami", "ipmi"], ipmi=True) as fleet:
        fleet.bmc("ami-1").ipmi_port       # the same host also answers IPMI 2.0 (lanplus) on UDP
        fleet.set_faults("ami-1", ipmi_drop_after_apply=True)

    with Fleet.start(vendors=["ilo5", "idrac9"], dump_root=tmp_path / "crash", hung=True,
                     layouts=["rhel-nfs", "suse-ssh"], scale=0.02) as fleet:
        host = fleet.host("ilo5-1")        # hung: its probe (fleet.bmc("ilo5-1").probe) is silent
        ...                                # an NMI through Redfish or IPMI, and about 1.2 s later
        host.wait_for("running", 5)        # the dump is complete and the host answers again
        host.dump_directory                # .../crash/nfs/127.0.1.1-2026-...

BMC names are ``<flavour>-<n>``, n counting from 1 per flavour.  The ``ipmi`` flavour is
IPMI only and answers IPMI whatever ``ipmi`` says; one IPMI server thread serves every
IPMI endpoint of the fleet.

Each BMC's host has its own loopback address (127.0.1.1, 127.0.1.2, ... in BMC order:
Linux routes all of 127/8 to lo), where an SSH-like probe listener answers while the host
runs (:mod:`mocks.liveness`).  With ``dump_root`` each host's kdump writes there: into
``dump_root/<name>`` for a local layout (rhel-local, suse, debian...), into the shared
``dump_root/nfs`` or ``dump_root/ssh`` for a network layout, whose directory names carry
the host's address or name.  ``layouts`` are cycled over the hosts.  One timer thread
(:mod:`mocks.scheduler`) runs every host's crash, dump and reboot; ``scale`` multiplies
their durations (:class:`mocks.host.HostConfig`).  ``hang_kind`` (cycled too) decides
the kernel log a hung host's kdump saves (:mod:`mocks.kernellog`: a soft lockup, a hung
task, ...), so that ``oob analyze`` has something real-looking to read.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from oob.fdlimit import raise_open_files_limit

from .bmc import MockBmc
from .bmc_logs import event_log_for
from .control import ControlServer
from .faults import Faults
from .fence_kdump import NodeSpec
from .fence_kdump import nodes as fence_kdump_nodes
from .flavours import MAIN_FLAVOURS, get_flavour
from .host import Clock, HostConfig, HostState, RealClock, SimulatedHost
from .https import ConnectionHub
from .inventory_writer import InventoryHost, TlsMode, render_inventory, write_atomically
from .kernellog import hang_kinds
from .layouts import DEFAULT_LAYOUTS, HostLayout, host_layout
from .libvirt_guests import MockGuests
from .liveness import LivenessServer
from .loopback import loopback_address, loopback_endpoint
from .scheduler import Scheduler
from .service import Credentials
from .tls import FleetCA

if TYPE_CHECKING:  # the IPMI server loads pyghmi: imported only when a fleet serves IPMI
    from .hostfs import HostSsh
    from .ipmi_server import CipherMode, IpmiMockServer

PASSWORD_FILE = "bmc-password"
CA_FILE = "ca.pem"
#: the first host's address; the others follow
FIRST_HOST_ADDRESS = "127.0.1.1"
_HOST_DEFAULTS = HostConfig()


class Fleet:
    def __init__(
        self,
        *,
        bind: str,
        workdir: Path,
        owns_workdir: bool,
        credentials: Credentials,
        clock: Clock,
        scale: float,
        dump_root: Path | None = None,
    ) -> None:
        self.bind = bind
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self.credentials = credentials
        self.clock = clock
        self.scale = scale
        #: where the hosts' kdump targets are; None: hosts have none and write no dump
        self.dump_root = dump_root
        #: one timer thread for every host's crash, dump and reboot (started when first needed)
        self.scheduler = Scheduler(clock)
        #: one thread for every host's probe listener
        self.liveness = LivenessServer()
        self.ca = FleetCA(workdir / CA_FILE)
        self.password_file = workdir / PASSWORD_FILE
        write_atomically(self.password_file, credentials.password)
        self.bmcs: list[MockBmc] = []
        self._by_name: dict[str, MockBmc] = {}
        self._hub = ConnectionHub()
        self._control: ControlServer | None = None
        self._ipmi: IpmiMockServer | None = None
        #: the cipher mode of every IPMI endpoint; None when no BMC answers IPMI
        self.ipmi_cipher_mode: CipherMode | None = None
        #: the hosts' own sshd and fake trees (``host_ssh=True``); None otherwise
        self.host_ssh: HostSsh | None = None
        #: virtual machines, guests of libvirt's test driver (``vms``); None: none
        self.vms: MockGuests | None = None
        self._stopped = False

    @classmethod
    def start(
        cls,
        vendors: Iterable[str] = MAIN_FLAVOURS,
        count: int = 1,
        bind: str = "127.0.0.1",
        workdir: str | os.PathLike[str] | None = None,
        control: str | None = None,
        *,
        username: str = "admin",
        password: str | None = None,
        clock: Clock | None = None,
        scale: float = 1.0,
        ipmi: bool = False,
        ipmi_cipher_mode: CipherMode = "strict",
        dump_root: str | os.PathLike[str] | None = None,
        layouts: Sequence[str] | str = DEFAULT_LAYOUTS,
        hung: bool = False,
        armed: bool = True,
        dump_size: int = _HOST_DEFAULTS.dump_size,
        dump_rate: float = _HOST_DEFAULTS.dump_rate,
        boot_delay: float = _HOST_DEFAULTS.boot_delay,
        reboot_time: float = _HOST_DEFAULTS.reboot_time,
        panic_timeout: float = _HOST_DEFAULTS.panic_timeout,
        first_host_address: str = FIRST_HOST_ADDRESS,
        host_ssh: bool = False,
        hang_kind: Sequence[str] | str | None = None,
        fence_kdump: Sequence[NodeSpec] | NodeSpec | None = None,
        fence_kdump_interval: float = _HOST_DEFAULTS.fence_kdump_interval,
        latency_ms: int = 0,
        bmc_addresses: str | None = None,
        vms: int = 0,
    ) -> Fleet:
        """Start ``count`` BMCs of every flavour in ``vendors``, all listening when this returns.

        ``control`` (``HOST:PORT``, port 0 for any) also starts the control API.  Without
        ``workdir`` a temporary directory holds the CA and password file and is removed by
        :meth:`stop`.  ``password`` defaults to a random one (see :attr:`password_file`).
        ``ipmi`` makes every BMC also answer IPMI 2.0 on UDP (same address, its own port,
        same host and credentials); ``ipmi_cipher_mode`` is ``"strict"`` (suite 3 only,
        other proposals refused so clients fall back) or ``"always3"`` (suite 3 whatever
        was proposed, as stock pyghmi and VirtualBMC answer).

        The hosts: ``dump_root`` gives them kdump targets (without it an NMI panics the
        host, which reboots with no dump); ``layouts`` (:data:`mocks.layouts.HOST_LAYOUTS`,
        a list or one comma-separated string) are cycled over the hosts in BMC order; ``hung`` starts every host hung (its probe
        silent); ``armed=False`` loads no crash kernel anywhere; ``dump_size`` (bytes),
        ``dump_rate`` (bytes/s), ``boot_delay`` (NMI to dump directory), ``reboot_time``
        and ``panic_timeout`` (seconds) are multiplied by ``scale`` like every duration of
        the lifecycle; the hosts' addresses start at ``first_host_address``.
        ``hang_kind`` (:data:`mocks.kernellog.HANG_KINDS`: ``hard``, ``softlockup``,
        ``hungtask``, ``rcustall``, ``oops``; a list or one comma-separated string, cycled
        over the hosts like ``layouts``; ``none`` in it for today's log) is how each host
        hangs: the kernel log its kdump saves after an NMI to it while hung shows that
        hang's reports before the NMI panic.  Default: the NMI panic alone.
        ``host_ssh`` also starts a real sshd on every host's address whose commands read a
        per-host fake /proc, /sys and /etc (:mod:`mocks.hostfs`: ``fleet.host_ssh``), for
        ``oob preflight`` and ``oob drill``; the inventory then gives ``ssh.user``/``ssh.port``.
        ``fence_kdump`` (``"127.0.0.1:7410"``, ``(address, port)`` or a list; loopback only) gives
        every host's kdump ``fence_kdump_nodes``: once its crash kernel has booted it sends them
        fence_kdump's "kdump has started" (:mod:`mocks.fence_kdump`) from its own address, then
        every ``fence_kdump_interval`` seconds (scaled) until the dump ends.
        ``latency_ms`` delays every Redfish response of every BMC (the ``latency_ms`` fault,
        set on each BMC at start; change it per BMC with :meth:`set_faults`).
        ``bmc_addresses`` (an IPv4 loopback address such as ``127.1.0.1``) gives every BMC an
        address of its own, from that one up, instead of all sharing ``bind``: as in a real
        fleet, where oob takes one address for one BMC (its lock, its repeat guard) — which
        matters for IPMI, whose inventory address carries no port.
        ``vms`` adds that many virtual machines (``vm01``…), guests of libvirt's test driver
        (:mod:`mocks.libvirt_guests`: what they can and cannot show), to the inventory.
        Raises ValueError for an unknown flavour, cipher mode, layout or hang kind, a count
        below 1, a negative latency or a non-loopback address.

        A fleet of a thousand BMCs needs several thousand descriptors (a listener and a
        probe listener per host, a UDP socket per IPMI endpoint, the connections): the soft
        RLIMIT_NOFILE is raised to the hard limit first (:func:`raise_open_files_limit`).
        """
        flavours = [get_flavour(name) for name in _unique(vendors)]
        if not flavours:
            raise ValueError("no vendor flavour given")
        if count < 1:
            raise ValueError("count must be at least 1")
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or latency_ms < 0:
            raise ValueError("latency_ms must be an integer of at least 0")
        raise_open_files_limit()
        # not de-duplicated: ["rhel", "rhel", "suse"] means two RHEL hosts for each SUSE one
        names = layouts.split(",") if isinstance(layouts, str) else layouts
        host_layouts = [host_layout(name) for name in names if name.strip()]
        if not host_layouts:
            raise ValueError("no dump layout given")
        kinds = hang_kinds(hang_kind)
        first_host = _first_host_address(first_host_address)
        address = loopback_address(bind)
        first_bmc = _first_host_address(bmc_addresses) if bmc_addresses is not None else None
        control_endpoint = loopback_endpoint(control) if control is not None else None
        serves_ipmi = ipmi or any(flavour.ipmi_only for flavour in flavours)
        if serves_ipmi:
            from .ipmi_server import CIPHER_MODES

            if ipmi_cipher_mode not in CIPHER_MODES:
                raise ValueError(f"ipmi_cipher_mode must be one of {', '.join(CIPHER_MODES)}")
        if workdir is None:
            directory, owns = Path(tempfile.mkdtemp(prefix="oob-mock-fleet-")), True
        else:
            directory, owns = Path(workdir).absolute(), False
            directory.mkdir(parents=True, exist_ok=True)
        fleet = cls(
            bind=address,
            workdir=directory,
            owns_workdir=owns,
            credentials=Credentials(
                username, password if password is not None else secrets.token_urlsafe(12)
            ),
            clock=clock or RealClock(),
            scale=scale,
            dump_root=Path(dump_root).absolute() if dump_root is not None else None,
        )
        try:
            template = HostConfig(
                armed=armed,
                dump_size=dump_size,
                dump_rate=dump_rate,
                boot_delay=boot_delay,
                reboot_time=reboot_time,
                panic_timeout=panic_timeout,
                fence_kdump=fence_kdump_nodes(fence_kdump),
                fence_kdump_interval=fence_kdump_interval,
            )
            for flavour in flavours:
                for n in range(1, count + 1):
                    name = f"{flavour.name}-{n}"
                    index = len(fleet.bmcs)
                    layout = host_layouts[index % len(host_layouts)]
                    config = replace(
                        template,
                        address=str(first_host + index),
                        layout=layout.name,
                        dump_target=fleet._dump_target(name, layout),
                        hang_kind=kinds[index % len(kinds)],
                    )
                    fleet._add(
                        MockBmc(
                            name,
                            flavour,
                            address if first_bmc is None else str(first_bmc + index),
                            fleet._hub,
                            fleet.ca,
                            fleet.credentials,
                            fleet.clock,
                            scale,
                            host_config=config,
                            timers=fleet.scheduler,
                            liveness=fleet.liveness,
                        )
                    )
            for bmc in fleet.bmcs:
                bmc.start()
                if latency_ms and bmc.has_redfish:
                    bmc.set_faults(latency_ms=latency_ms)
            if hung:
                for bmc in fleet.bmcs:
                    bmc.host.set_state("hung")
            if host_ssh:
                from .hostfs import HostSsh

                fleet.host_ssh = HostSsh.start(fleet.workdir / "hosts", {b.name: b.host for b in fleet.bmcs})
            if vms:
                fleet.vms = MockGuests(fleet.workdir, vms)
            if serves_ipmi:
                fleet._serve_ipmi(every=ipmi, cipher_mode=ipmi_cipher_mode)
            if control_endpoint is not None:
                fleet._control = ControlServer(fleet, *control_endpoint)
                fleet._control.start()
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def _add(self, bmc: MockBmc) -> None:
        self.bmcs.append(bmc)
        self._by_name[bmc.name] = bmc

    def _dump_target(self, name: str, layout: HostLayout) -> Path | None:
        """The host's own directory for a local layout; the shared nfs/ssh one otherwise."""
        if self.dump_root is None:
            return None
        target = self.dump_root / (layout.share or name)
        target.mkdir(parents=True, exist_ok=True)  # there before the baseline, as /var/crash is
        return target

    def _serve_ipmi(self, *, every: bool, cipher_mode: CipherMode) -> None:
        """One IPMI server (one thread, one select loop) for every BMC that answers IPMI."""
        from .ipmi_server import IpmiMockServer

        self._ipmi = IpmiMockServer()
        self.ipmi_cipher_mode = cipher_mode
        for bmc in self.bmcs:
            if every or bmc.flavour.ipmi_only:
                bmc.serve_ipmi(self._ipmi, cipher_mode)
        self._ipmi.start()

    # -- looking things up

    def bmc(self, name: str) -> MockBmc:
        """The BMC called ``name``; KeyError when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no BMC named {name!r}; the fleet has {', '.join(self._by_name)}") from None

    def host(self, name: str) -> SimulatedHost:
        """The simulated host behind the BMC called ``name``; KeyError when there is none."""
        return self.bmc(name).host

    @property
    def hosts(self) -> list[SimulatedHost]:
        return [bmc.host for bmc in self.bmcs]

    @property
    def ca_file(self) -> Path:
        return self.ca.ca_file

    @property
    def ipmi_server(self) -> IpmiMockServer | None:
        """The server behind every IPMI endpoint; None when no BMC answers IPMI."""
        return self._ipmi

    @property
    def control_url(self) -> str | None:
        return self._control.url if self._control else None

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    # -- changing things

    def set_faults(self, name: str, **faults: Any) -> Faults:
        return self.bmc(name).set_faults(faults)

    def hardware_error(self, name: str, kind: str) -> None:
        """The BMC of ``name`` logs a hardware error now (``machine_check``, ``memory_ecc``,
        ``pcie``, ``psu``): in its Redfish logs and its IPMI SEL alike."""
        event_log_for(self.host(name)).inject(kind)

    def clear_faults(self, name: str) -> Faults:
        return self.bmc(name).clear_faults()

    def set_power(self, name: str, state: str) -> None:
        self.bmc(name).set_power(state)

    def set_host_state(self, name: str, state: str) -> HostState:
        """``"hung"`` or ``"running"``; HostStateError (a ValueError) from a state that does not allow it."""
        return self.host(name).set_state(state)

    def configure_host(self, name: str, **settings: object) -> HostConfig:
        """Change one host's :class:`~mocks.host.HostConfig` (``layout``, ``armed``, ``dump_size``,
        ``dump_rate``, ``boot_delay``, ``reboot_time``, ``panic_timeout``, ``hang_kind``, ``fence_kdump``,
        ``fence_kdump_interval``); applies from its
        next crash.  A new layout moves its dump target accordingly: write the inventory after."""
        host = self.host(name)
        if "layout" in settings and "dump_target" not in settings:
            settings["dump_target"] = self._dump_target(name, host_layout(str(settings["layout"])))
        return host.configure(**settings)

    # -- describing the fleet

    def write_inventory(
        self,
        path: str | os.PathLike[str],
        tls: TlsMode = "ca",
        password: Literal["file"] | str = "file",
    ) -> Path:
        """Write an oob inventory of the fleet (TOML, mode 0600, atomically); returns its path.

        ``password`` is ``"file"`` (reference :attr:`password_file`) or ``"env:VAR"``.
        """
        if password == "file":
            password_ref = f"file:{self.password_file}"
        elif password.startswith("env:") and len(password) > 4:
            password_ref = password
        else:
            raise ValueError("password must be 'file' or 'env:VAR'")
        hosts = [
            InventoryHost(
                bmc.name,
                bmc.vendor,
                bmc.flavour.kind,
                bmc.inventory_address,
                bmc.host_address or bmc.address,
                bmc.fingerprint if bmc.has_redfish else None,
                ipmi_port=bmc.ipmi_port,
                probe=bmc.probe,
                dump_target=bmc.dump_target.as_uri() if bmc.dump_target else None,
                dump_layout=bmc.dump_family if bmc.dump_target else None,
                ssh_user=self.host_ssh.user if self.host_ssh else None,
                ssh_port=self.host_ssh.port if self.host_ssh else None,
                fence_kdump=bool(bmc.host.config.fence_kdump),
            )
            for bmc in self.bmcs
        ]
        if self.vms is not None:
            hosts += self.vms.inventory_hosts()
        text = render_inventory(
            hosts, username=self.username, password_ref=password_ref, ca_file=self.ca_file, tls=tls
        )
        return write_atomically(Path(path), text)

    def usage(self) -> dict[str, float | int]:
        """What the process serving the fleet has used so far: CPU seconds (user + system),
        peak RSS in MiB, threads and open descriptors (so a benchmark can tell the mock's
        cost from the client's).  For the whole process: run the fleet in a process of its
        own (``mock serve``) or one that does little else."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        try:
            descriptors = len(os.listdir("/proc/self/fd"))
        except OSError:  # not Linux
            descriptors = -1
        return {
            "cpu_seconds": round(own.ru_utime + own.ru_stime, 3),
            "peak_rss_mib": round(own.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB on Linux
            "threads": threading.active_count(),
            "open_files": descriptors,
        }

    def describe(self) -> dict[str, object]:
        """The summary the CLI prints when ready (no secrets)."""
        summary = self._describe_bmcs()
        if self.vms is not None:
            summary["vms"] = self.vms.describe()
        return summary

    def _describe_bmcs(self) -> dict[str, object]:
        return {
            "usage": self.usage(),
            "control": self.control_url,
            "ca_file": str(self.ca_file),
            "password_file": str(self.password_file),
            "username": self.username,
            "ipmi_cipher_mode": self.ipmi_cipher_mode,
            "dump_root": str(self.dump_root) if self.dump_root else None,
            "scale": self.scale,
            "bmcs": [
                {
                    "name": b.name,
                    "vendor": b.vendor,
                    "url": b.url if b.has_redfish else None,
                    "address": b.inventory_address,
                    "ipmi_port": b.ipmi_port,
                    "host_address": b.host_address,
                    "probe": b.probe,
                    "host_state": b.host_state,
                    "dump_target": str(b.dump_target) if b.dump_target else None,
                    "dump_layout": b.host.config.layout,
                    "hang_kind": b.host.config.hang_kind,
                    "fence_kdump": [str(node) for node in b.host.config.fence_kdump],
                }
                for b in self.bmcs
            ],
        }

    # -- stopping

    def stop(self) -> None:
        """Close every listener, connection (held ones included) and thread.  Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        # first the timers: no dump step or reboot runs while the rest closes
        self.scheduler.stop()
        if self.host_ssh is not None:
            self.host_ssh.stop()
        self.liveness.stop()
        if self._control is not None:
            self._control.stop()
        for bmc in self.bmcs:
            bmc.stop()
        if self._ipmi is not None:
            self._ipmi.stop()  # joins its thread and closes every UDP socket
        # wakes what still waits (latency, held connections), then joins every thread
        self._hub.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        name = name.strip()
        if name and name not in seen:
            seen.append(name)
    return seen


def _first_host_address(text: str) -> ipaddress.IPv4Address:
    """The first host's address: IPv4 loopback, with room for the fleet after it."""
    address = loopback_address(text)
    if ":" in address:
        raise ValueError(f"first_host_address {text}: hosts need 127.0.0.0/8 addresses (one each)")
    return ipaddress.IPv4Address(address)
