"""Domain objects: frozen dataclasses without I/O.

An inventory resolves to :class:`Host` objects; drivers, dump watchers and runbooks
take them as they are.  Secrets stay references (:class:`SecretRef`) until a driver
needs the value, and never print themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

BmcKind = Literal[
    "auto", "redfish", "ilo", "idrac", "openbmc", "supermicro", "xcc", "ipmi", "libvirt", "esxi"
]
BMC_KINDS: tuple[str, ...] = (
    "auto",
    "redfish",
    "ilo",
    "idrac",
    "openbmc",
    "supermicro",
    "xcc",
    "ipmi",
    "libvirt",
    "esxi",
)
#: how oob reaches the machine that sends the NMI: a BMC (Redfish, IPMI) or, for a virtual
#: machine, its hypervisor (libvirt, an ESXi host over SSH)
Method = Literal["redfish", "ipmi", "libvirt", "esxi"]
METHODS: tuple[str, ...] = ("redfish", "ipmi", "libvirt", "esxi")
#: kinds whose "BMC" is a hypervisor: ``bmc.address`` names it and ``bmc.domain`` the guest
HYPERVISOR_KINDS: tuple[str, ...] = ("libvirt", "esxi")
RedfishAuth = Literal["session", "basic"]
REDFISH_AUTHS: tuple[str, ...] = ("session", "basic")
DumpLayout = Literal["auto", "rhel", "suse", "debian"]
DUMP_LAYOUTS: tuple[str, ...] = ("auto", "rhel", "suse", "debian")
#: bounds of ``BmcConfig.timeout`` (seconds) an inventory may set: below half a second no BMC
#: answers; above ten minutes a hung request holds the on-call engineer for nothing
BMC_TIMEOUT_MIN = 0.5
BMC_TIMEOUT_MAX = 600.0


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: ``env:VAR``, ``file:PATH``, ``keyring:SERVICE/USER`` or a literal.

    ``repr`` and ``str`` never show a literal value.
    """

    scheme: Literal["env", "file", "keyring", "literal"]
    location: str = field(repr=False)

    def describe(self) -> str:
        """Safe to print: the reference, or ``<literal>`` for an inline password."""
        if self.scheme == "literal":
            return "<literal>"
        return f"{self.scheme}:{self.location}"

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return f"SecretRef({self.describe()!r})"


@dataclass(frozen=True)
class BmcConfig:
    kind: BmcKind = "auto"
    #: as written in the inventory: ``https://IP:PORT``, ``IP`` or ``host``
    address: str = ""
    username: str | None = None
    password: SecretRef | None = None
    #: False only when the user said so (``verify = false`` or ``--insecure``)
    verify: bool = True
    ca_file: str | None = None
    #: SHA-256 of the BMC's certificate, lower-case hex without colons
    fingerprint: str | None = None
    #: Redfish system id when the BMC manages several systems
    system: str | None = None
    #: Redfish only unless the inventory says the BMC speaks IPMI (bmc.methods, bmc.ipmi_port)
    methods: tuple[Method, ...] = ("redfish",)
    ipmi_port: int = 623
    #: seconds for each request to the BMC
    timeout: float = 15.0
    #: the guest, for a hypervisor kind: a libvirt domain's name or UUID, an ESXi VM's display name
    domain: str | None = None
    #: how oob authenticates to a Redfish BMC: "session" (a login and a logout around the
    #: work) or "basic" (HTTP Basic on every request: a warm NMI is then 2 requests)
    auth: RedfishAuth = "session"

    @property
    def redfish_url(self) -> str:
        """Base URL of the Redfish service (scheme and authority, no path)."""
        address = self.address.strip()
        if "://" not in address:
            address = f"https://{address}"
        parts = urlsplit(address)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def hostname(self) -> str:
        """The BMC's bare address, for IPMI and for messages."""
        address = self.address.strip()
        if "://" not in address:
            address = f"https://{address}"
        return urlsplit(address).hostname or self.address

    @property
    def is_ipmi_only(self) -> bool:
        return self.kind == "ipmi"

    @property
    def is_hypervisor(self) -> bool:
        return self.kind in HYPERVISOR_KINDS

    @property
    def effective_methods(self) -> tuple[Method, ...]:
        if self.kind in ("ipmi", "libvirt", "esxi"):
            return (self.kind,)  # each of these kinds is also a Method
        return self.methods

    @property
    def machine(self) -> str:
        """Which machine an action through this BMC lands on, as one string: what the
        host locks, the repeat guard and the duplicate check key on.

        The BMC's host name (lower case), its port when not the protocol's default, and the
        system or guest: two VirtualBMC BMCs on one address with different ports, or two
        guests of one hypervisor, are different machines; ``bmc01``, ``https://BMC01`` and
        ``bmc01:443`` are one.  A Redfish and an IPMI host entry on one BMC at default
        ports are one machine too."""
        if self.kind == "libvirt":
            return f"{self.address.strip()}#{self.domain or ''}"
        address = self.address.strip()
        if self.kind == "ipmi":
            port, default = self.ipmi_port, 623
        else:
            # a bare ESXi address is an SSH one (port 22), a bare BMC address an HTTPS one
            bare = "ssh" if self.kind == "esxi" else "https"
            parts = urlsplit(address if "://" in address else f"{bare}://{address}")
            default = 80 if parts.scheme == "http" else 443 if parts.scheme == "https" else 22
            try:
                port = parts.port or default
            except ValueError:  # checked by the inventory; a hand-made BmcConfig may not be
                port = default
        name = self.hostname.lower()
        key = name if port == default else f"{name}:{port}"
        guest = self.domain if self.kind == "esxi" else (self.system or "").strip("/")
        return f"{key}/{guest}" if guest else key


@dataclass(frozen=True)
class DumpConfig:
    #: ``ssh://user@server[:port]/path`` or ``file:///path``; None when not configured
    target: str | None = None
    layout: DumpLayout = "auto"
    #: the host's kdump sends fence_kdump's "kdump has started" to this machine
    #: (``fence_kdump_nodes`` in /etc/kdump.conf, RHEL): oob listens for it and preflight checks it
    fence_kdump: bool = False


@dataclass(frozen=True)
class SshConfig:
    """How oob logs in to the host itself (``oob preflight``, ``oob drill``): keys only.

    None: not in the inventory, so the user's ssh configuration (``~/.ssh/config``) decides,
    then OpenSSH's defaults (the local user, port 22, no jump host, ``~/.ssh/known_hosts``)."""

    user: str | None = None
    port: int | None = None
    #: ProxyJump: ``[user@]host[:port]``, a comma list for several hops
    jump: str | None = None
    #: a private key file (IdentityFile); ``--ssh-key`` wins
    key: str | None = None
    #: a known_hosts file (UserKnownHostsFile); ``--known-hosts`` wins
    known_hosts: str | None = None

    def login(self, address: str | None) -> str:
        """``[user@]address[:port]`` as the inventory gives it (what it leaves out, the ssh
        configuration decides)."""
        who = f"{self.user}@" if self.user else ""
        return f"{who}{address}" + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class Host:
    name: str
    #: the host's own address (SSH, probes, matching dump directory names)
    address: str | None = None
    #: further addresses or names the host may use in dump directory names
    aliases: tuple[str, ...] = ()
    #: how to tell the host is alive: "ssh:[ADDRESS:]PORT" (waits for the SSH banner) or
    #: "tcp:[ADDRESS:]PORT" (a connection is enough); None means "ssh:22" on ``address``
    probe: str | None = None
    #: where this host's outcomes are posted (``--notify`` specs: ``slack=env:SLACK_URL``)
    notify: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    bmc: BmcConfig = field(default_factory=BmcConfig)
    dump: DumpConfig = field(default_factory=DumpConfig)
    ssh: SshConfig = field(default_factory=SshConfig)
    #: inventory file the host came from, for error messages
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "address": self.address,
            "groups": list(self.groups),
            "probe": self.probe,
            "notify": list(self.notify),
            "bmc": {
                "kind": self.bmc.kind,
                "address": self.bmc.address,
                "username": self.bmc.username,
                "password": self.bmc.password.describe() if self.bmc.password else None,
                "verify": self.bmc.verify,
                "ca_file": self.bmc.ca_file,
                "fingerprint": self.bmc.fingerprint,
                "system": self.bmc.system,
                "methods": list(self.bmc.effective_methods),
                "ipmi_port": self.bmc.ipmi_port,
            },
            "dump": {
                "target": self.dump.target,
                "layout": self.dump.layout,
                "fence_kdump": self.dump.fence_kdump,
            },
            "ssh": {
                "user": self.ssh.user,
                "port": self.ssh.port,
                "jump": self.ssh.jump,
                "key": self.ssh.key,
                "known_hosts": self.ssh.known_hosts,
            },
            "source": self.source,
        }


class PowerState(StrEnum):
    ON = "On"
    OFF = "Off"
    POWERING_ON = "PoweringOn"
    POWERING_OFF = "PoweringOff"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: object) -> PowerState:
        for state in cls:
            if isinstance(value, str) and value.lower() == state.value.lower():
                return state
        return cls.UNKNOWN


class PowerAction(StrEnum):
    """What the user asks for; drivers map it to what the BMC offers."""

    ON = "on"
    OFF = "off"  # ForceOff
    SHUTDOWN = "shutdown"  # GracefulShutdown
    RESET = "reset"  # ForceRestart
    CYCLE = "cycle"  # PowerCycle, or ForceOff then On


@dataclass(frozen=True)
class NmiSupport:
    """Whether the BMC offers an NMI, and how oob learnt it."""

    #: True offered, False not offered, None the BMC did not say (allowed, with a warning)
    offered: bool | None
    #: "inline" (ResetType@Redfish.AllowableValues), "actioninfo" (@Redfish.ActionInfo),
    #: "unadvertised" (neither present), "ipmi" (chassis control)
    source: str
    allowed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"offered": self.offered, "source": self.source, "allowed": list(self.allowed)}


@dataclass(frozen=True)
class BmcInfo:
    host: str
    method: str
    vendor: str
    model: str | None
    firmware: str | None
    power: PowerState
    nmi: NmiSupport
    system_id: str | None = None
    manager: str | None = None
    redfish_version: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "method": self.method,
            "vendor": self.vendor,
            "model": self.model,
            "firmware": self.firmware,
            "power": self.power.value,
            "nmi": self.nmi.to_dict(),
            "system_id": self.system_id,
            "manager": self.manager,
            "redfish_version": self.redfish_version,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ActionResult:
    """What the BMC said when it accepted an action."""

    host: str
    action: str
    method: str
    status: int | None = None
    #: the BMC's own message, if any (iLO answers 200 with a ``...Success`` MessageId)
    bmc_message: str | None = None
    task: str | None = None
    #: the ResetType actually sent (e.g. "ForceOff" for ``off``)
    sent: tuple[str, ...] = ()
    #: the answer in words, for a method whose answer is neither an HTTP status nor an IPMI
    #: completion code (libvirt: the call returned)
    answer: str | None = None

    @property
    def status_key(self) -> str:
        """What ``status`` is, as the key a report shows it under."""
        if self.answer is not None:
            return "answer"
        return {"redfish": "http_status", "esxi": "exit_status"}.get(self.method, "completion_code")

    def describe_answer(self) -> str:
        """``HTTP 204``, ``completion code 0x00``, ``exit status 0`` (the command run on an
        ESXi host), or the method's own words."""
        if self.answer is not None:
            return self.answer
        if self.status is None:
            return "no status"
        if self.method == "redfish":
            return f"HTTP {self.status}"
        if self.method == "esxi":
            return f"exit status {self.status}"
        return f"completion code 0x{self.status:02X}"

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "action": self.action,
            "via": self.method,
            "status": self.status,
            "bmc_message": self.bmc_message,
            "task": self.task,
            "sent": list(self.sent),
        }
