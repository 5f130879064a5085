"""Write an oob inventory (TOML) that describes a running mock fleet.

The file is written atomically (temporary file in the same directory, then rename) with
mode 0600: it names the password file or variable, and a half-written inventory must never
be read by a test that polls for it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TlsMode = Literal["ca", "fingerprint"]

HEADER = "# written by the oob mock fleet; valid while that process runs\n"


@dataclass(frozen=True)
class InventoryHost:
    name: str
    vendor: str
    kind: str
    #: ``bmc.address``: the Redfish URL, or the bare IP of an IPMI-only BMC
    url: str
    #: the host's own address
    address: str
    #: SHA-256 of the BMC certificate; None for a BMC without HTTPS
    fingerprint: str | None
    #: ``bmc.ipmi_port`` when the BMC answers IPMI.  ``bmc.methods`` is never written: oob's
    #: default (Redfish, then IPMI) is what a dual-protocol BMC wants, and kind "ipmi" means
    #: IPMI only
    ipmi_port: int | None = None
    #: ``probe``: ``ssh:ADDRESS:PORT`` of the host's SSH-like listener
    probe: str | None = None
    #: ``dump.target``: ``file:///...`` where the host's kdump writes
    dump_target: str | None = None
    #: ``dump.layout``: rhel, suse or debian
    dump_layout: str | None = None
    #: ``ssh.user`` / ``ssh.port``: the host's own sshd (``host_ssh=True``)
    ssh_user: str | None = None
    ssh_port: int | None = None
    #: ``dump.fence_kdump``: the host's kdump sends fence_kdump's messages (to the fleet's nodes)
    fence_kdump: bool = False
    #: ``bmc.domain``: a virtual machine's guest (kind "libvirt": :mod:`mocks.libvirt_guests`)
    domain: str | None = None


def render_inventory(
    hosts: Sequence[InventoryHost],
    *,
    username: str,
    password_ref: str,
    ca_file: Path | None,
    tls: TlsMode = "ca",
    timeout: int = 10,
) -> str:
    if tls not in ("ca", "fingerprint"):
        raise ValueError(f"tls must be 'ca' or 'fingerprint', not {tls!r}")
    lines = [
        HEADER.rstrip("\n"),
        "[defaults]",
        f"bmc.username = {_string(username)}",
        f"bmc.password = {_string(password_ref)}",
    ]
    if tls == "ca":
        if ca_file is None:
            raise ValueError("tls='ca' needs the fleet CA file")
        lines.append(f"bmc.ca_file = {_string(str(ca_file))}")
    lines.append(f"bmc.timeout = {timeout}")
    for host in hosts:
        lines += [
            "",
            f"[hosts.{_key(host.name)}]",
            f"address = {_string(host.address)}",
            f"groups = [{_string('mock')}, {_string(host.vendor)}]",
            f"bmc.kind = {_string(host.kind)}",
            f"bmc.address = {_string(host.url)}",
        ]
        if host.domain is not None:
            lines.append(f"bmc.domain = {_string(host.domain)}")
        if host.ipmi_port is not None:
            lines.append(f"bmc.ipmi_port = {int(host.ipmi_port)}")
        if tls == "fingerprint" and host.fingerprint is not None:
            lines.append(f"bmc.fingerprint = {_string(host.fingerprint)}")
        if host.probe is not None:
            lines.append(f"probe = {_string(host.probe)}")
        if host.dump_target is not None:
            lines.append(f"dump.target = {_string(host.dump_target)}")
        if host.dump_layout is not None:
            lines.append(f"dump.layout = {_string(host.dump_layout)}")
        if host.fence_kdump:
            lines.append("dump.fence_kdump = true")
        if host.ssh_user is not None:
            lines.append(f"ssh.user = {_string(host.ssh_user)}")
        if host.ssh_port is not None:
            lines.append(f"ssh.port = {int(host.ssh_port)}")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, mode: int = 0o600) -> Path:
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _string(value: str) -> str:
    # a JSON string is a valid TOML basic string when non-ASCII stays literal (no surrogate pairs)
    return json.dumps(value, ensure_ascii=False)


def _key(name: str) -> str:
    bare = name and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    return name if bare else _string(name)
