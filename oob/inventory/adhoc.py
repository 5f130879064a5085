"""One host from command-line flags, for the one-liners (``oob nmi --bmc URL --user admin
--password-env BMC_PW``): the ipmitool habit, without writing an inventory.

Every value goes through the inventory's own checks (:func:`oob.inventory.schema.check_value`),
so a flag is held to exactly the rules of the key it stands for, and an error names the flag.
The password is only ever a reference (``env:VAR`` or ``file:PATH``): there is no flag that
takes the password itself, and a message never repeats what was given for it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from oob.errors import UsageError
from oob.inventory.schema import Layer, Source, build_host, check_name, check_value
from oob.model import HYPERVISOR_KINDS, BmcConfig, DumpConfig, DumpLayout, Host

#: what the command line is called in messages, where a file name would be
LABEL = "command line"
#: letters, digits and '_': the name of a variable, never its value
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


@dataclass(frozen=True)
class HostFlags:
    """The flags that describe one host; None where not given."""

    bmc: str | None = None
    name: str | None = None
    user: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    kind: str | None = None
    ca_file: Path | None = None
    fingerprint: str | None = None
    ipmi_port: int | None = None
    #: a virtual machine's guest (with ``--kind libvirt|esxi``; ``--bmc`` is then its hypervisor)
    domain: str | None = None
    #: the host's own address and probe (``oob crash``: is it hung, is it back)
    address: str | None = None
    probe: str | None = None
    #: the dump target and layout (``oob crash``, ``oob watch``)
    target: str | None = None
    layout: str | None = None

    @property
    def given(self) -> list[str]:
        """The flags given, as typed (``--bmc``, ...), for messages."""
        return [FLAGS[f.name] for f in fields(self) if getattr(self, f.name) is not None]


#: field -> the flag as the user types it
FLAGS: dict[str, str] = {
    "bmc": "--bmc",
    "name": "--name",
    "user": "--user",
    "password_env": "--password-env",
    "password_file": "--password-file",
    "kind": "--kind",
    "ca_file": "--ca-file",
    "fingerprint": "--fingerprint",
    "ipmi_port": "--ipmi-port",
    "domain": "--domain",
    "address": "--address",
    "probe": "--probe",
    "target": "--target",
    "layout": "--layout",
}
#: inventory key -> field of :class:`HostFlags`
KEYS: dict[str, str] = {
    "bmc.address": "bmc",
    "bmc.username": "user",
    "bmc.kind": "kind",
    "bmc.ca_file": "ca_file",
    "bmc.fingerprint": "fingerprint",
    "bmc.ipmi_port": "ipmi_port",
    "bmc.domain": "domain",
    "address": "address",
    "probe": "probe",
    "dump.target": "target",
    "dump.layout": "layout",
}


def _source(cwd: Path) -> Source:
    # mode 0600: irrelevant (no literal password can be written here), but honest
    return Source(label=LABEL, base_dir=cwd, mode=0o600, locate=lambda path: None)


def _label(key: str) -> str:
    field = KEYS.get(key)
    return FLAGS[field] if field else ("--password-env/--password-file" if key == "bmc.password" else key)


def password_reference(flags: HostFlags) -> str | None:
    """``env:VAR`` or ``file:PATH``; None when neither flag was given."""
    if flags.password_env is not None and flags.password_file is not None:
        raise UsageError("--password-env and --password-file exclude each other")
    if flags.password_env is not None:
        # never echo it: someone may have typed the password itself here
        if not _ENV_NAME.fullmatch(flags.password_env):
            raise UsageError(
                "--password-env takes the NAME of an environment variable holding the password "
                "(letters, digits and '_'), never the password itself"
            )
        if not os.environ.get(flags.password_env):
            # the name is not repeated either: a password may look like a variable name
            raise UsageError(
                "--password-env: that environment variable is not set or empty "
                "(give the NAME of a variable holding the password, never the password itself)"
            )
        return f"env:{flags.password_env}"
    if flags.password_file is not None:
        return f"file:{flags.password_file}"
    return None


def host_from_flags(flags: HostFlags, *, cwd: Path | None = None) -> Host:
    """The host the flags describe (``--bmc`` required), checked as an inventory host is.

    Its name is ``--name``, else the BMC's address (``https://10.0.0.5`` -> ``10.0.0.5``).
    Raises :class:`~oob.errors.UsageError` (an :class:`~oob.errors.InventoryError` for a bad
    value, naming the flag).
    """
    if flags.bmc is None:
        raise UsageError("--bmc URL is needed to name a host without an inventory")
    source = _source(cwd or Path.cwd())
    layer: Layer = {}
    for key, field in KEYS.items():
        value = getattr(flags, field)
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        layer[key] = check_value(source, key, value, path=(), context="", label=_label(key))
    reference = password_reference(flags)
    hypervisor = flags.kind is not None and flags.kind.strip().lower() in HYPERVISOR_KINDS
    if reference is None and not hypervisor:
        raise UsageError(
            "the BMC password: --password-env VAR (an environment variable) or --password-file FILE "
            "(never on the command line)"
        )
    if reference is not None:
        layer["bmc.password"] = check_value(
            source, "bmc.password", reference, path=(), context="", label=_label("bmc.password")
        )
    if flags.name is not None:
        name, origin = flags.name, "host (--name)"
    elif hypervisor and flags.domain is not None:
        # a guest is named after itself, not after its hypervisor (qemu:///system has no host)
        name, origin = flags.domain, "host (from --domain)"
    else:
        name, origin = BmcConfig(address=layer["bmc.address"].value).hostname, "host (from --bmc)"
    name = check_name(source, name, (), origin)
    return build_host(name, source, (), [layer], groups=(), label=_label)


def watch_host_from_flags(name: str, flags: HostFlags, *, cwd: Path | None = None) -> Host:
    """A host to watch a dump target for, without an inventory: its name (and ``--address``)
    are what its dump directories are named after."""
    source = _source(cwd or Path.cwd())
    name = check_name(source, name, (), "host")
    address = None
    if flags.address is not None:
        address = check_value(source, "address", flags.address, path=(), context="", label="--address").value
    target = None
    if flags.target is not None:
        target = check_value(source, "dump.target", flags.target, path=(), context="", label="--target").value
    layout: DumpLayout = "auto"
    if flags.layout is not None:
        layout = check_value(source, "dump.layout", flags.layout, path=(), context="", label="--layout").value
    return Host(name=name, address=address, dump=DumpConfig(target=target, layout=layout), source=LABEL)
