"""Does the host look alive? Its SSH banner (or the inventory's ``probe``) says.

A hard-hung kernel stops answering TCP handshakes. A host hung higher up may still
complete the handshake in its kernel but never send sshd's banner. So the default probe
("ssh:22" on the host's address) waits for the banner; "tcp:PORT" only needs the
connection. oob refuses to crash a host that answers unless the engineer says --force.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from oob.model import Host

DEFAULT_PROBE = "ssh:22"


@dataclass(frozen=True)
class ProbeResult:
    #: True answered, False did not, None could not be probed (no address)
    alive: bool | None
    #: "ssh:ADDRESS:PORT" / "tcp:ADDRESS:PORT", or "none"
    target: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"alive": self.alive, "probe": self.target, "detail": self.detail}


def probe_endpoint(host: Host) -> tuple[str, str, int] | None:
    """(kind, address, port) from ``probe`` and ``address``; None with nothing to probe."""
    kind, _, rest = (host.probe or DEFAULT_PROBE).partition(":")
    address, sep, port = rest.rpartition(":")
    if not sep:
        address = host.address or ""
    address = address.strip("[]")
    if not address:
        return None
    return kind, address, int(port)


def probe_host(host: Host, timeout: float = 3.0) -> ProbeResult:
    endpoint = probe_endpoint(host)
    if endpoint is None:
        return ProbeResult(None, "none", "the inventory gives no address to probe")
    kind, address, port = endpoint
    if host.probe is None:
        # the default probe looks where SSH would: the ssh configuration may rename the host
        # (HostName), move its port, or put it behind a jump host this machine cannot see past
        from oob.ssh import endpoint as ssh_endpoint

        try:
            seen = ssh_endpoint(address, host.ssh.port)
        except ValueError as exc:
            return ProbeResult(None, "none", f"cannot tell whether the host is up: {exc}")
        if seen.jump:
            return ProbeResult(
                None,
                "none",
                f"{address} is reached through the jump host {seen.jump}: oob cannot probe it from here; "
                "set probe in the inventory (tcp:ADDRESS:PORT) to a port this machine can reach",
            )
        address, port = seen.host, seen.port
    target = f"{kind}:{address}:{port}"
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            if kind == "tcp":
                return ProbeResult(True, target, f"{address}:{port} accepted a connection")
            banner = conn.recv(256)
    except TimeoutError:
        return ProbeResult(False, target, f"{address}:{port} did not answer within {timeout:g} s")
    except socket.gaierror as exc:
        # a name this machine cannot resolve says nothing about the host: never "looks hung"
        return ProbeResult(None, target, f"cannot resolve {address}: {exc.strerror or exc}; cannot tell")
    except OSError as exc:
        return ProbeResult(False, target, f"{address}:{port}: {exc.strerror or exc}")
    if banner.startswith(b"SSH-"):
        first_line = banner.split(b"\r\n", 1)[0].decode(errors="replace")
        return ProbeResult(True, target, f"{address}:{port} answered: {first_line}")
    if not banner:
        return ProbeResult(False, target, f"{address}:{port} closed the connection without an SSH banner")
    return ProbeResult(True, target, f"{address}:{port} answered, though not with an SSH banner")
