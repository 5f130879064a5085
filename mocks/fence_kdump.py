"""What a simulated host's crash kernel sends when RHEL's kdump has ``fence_kdump_nodes``.

The same datagrams as fence-agents' ``fence_kdump_send`` (``agents/kdump/message.h``): 8
bytes, ``uint32 magic 0x1B302A40`` then ``uint32 version 1``, in the sending machine's byte
order (little-endian here, as x86 and arm64), one per node per round, every ``interval``
seconds (``-i``, default 10) from the moment the crash kernel has booted until the dump ends
and the host reboots (``-c 0``).  The source address is the host's own (the socket is bound
to it), so a listener matches the sender to the host by address, as fence_kdump does.

Everything stays on loopback: nodes and the source must be 127.0.0.0/8 or ::1.  A node that
cannot be reached is skipped, as the real sender only logs ``sendto`` errors and goes on.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .loopback import loopback_address, loopback_endpoint

if TYPE_CHECKING:
    from .host import SimulatedHost

MAGIC = 0x1B302A40
VERSION = 0x1
DEFAULT_PORT = 7410
#: fence_kdump_send's default ``-i``: seconds between rounds (before the fleet's scale)
DEFAULT_INTERVAL = 10.0


def message(byteorder: Literal["little", "big"] = "little", *, version: int = VERSION) -> bytes:
    """One fence_kdump message as a crash kernel of that byte order sends it."""
    return struct.pack("<II" if byteorder == "little" else ">II", MAGIC, version)


@dataclass(frozen=True)
class Node:
    """A machine named in ``fence_kdump_nodes`` (on loopback), and the ``-p`` port."""

    address: str
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", loopback_address(self.address))
        if not 1 <= self.port <= 65535:
            raise ValueError(f"fence_kdump node {self.address}: port {self.port} is not 1-65535")

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


NodeSpec = Node | str | tuple[str, int]


def nodes(value: Iterable[NodeSpec] | NodeSpec | None) -> tuple[Node, ...]:
    """``"127.0.0.1:7410"``, ``("127.0.0.1", 7410)``, a :class:`Node`, a comma-separated string
    or a list of these; None or empty: no nodes."""
    if value is None:
        return ()
    if isinstance(value, Node) or (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        items: list[NodeSpec] = [value]
    elif isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
    else:
        items = list(value)
    found: list[Node] = []
    for item in items:
        if isinstance(item, Node):
            found.append(item)
        elif isinstance(item, tuple):
            found.append(Node(item[0], int(item[1])))
        else:
            address, port = loopback_endpoint(item, DEFAULT_PORT)
            found.append(Node(address, port))
    return tuple(found)


def send_round(source: str | None, targets: Iterable[Node]) -> int:
    """One ``sendto`` of the message to each node, from ``source`` (the host's address);
    returns how many left."""
    sent = 0
    data = message()
    for node in targets:
        family = socket.AF_INET6 if ":" in node.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                if source is not None and (":" in source) == (family == socket.AF_INET6):
                    sock.bind((loopback_address(source), 0))
                sock.sendto(data, (node.address, node.port))
                sent += 1
            except OSError:
                continue  # fence_kdump_send logs "sendto (...)" and goes on
    return sent


class Notifier:
    """fence_kdump_send in one simulated host's crash kernel: rounds until ``still()`` is false."""

    def __init__(self, host: SimulatedHost) -> None:
        self.host = host
        self._lock = threading.Lock()
        #: rounds sent since the fleet started (every crash), and datagrams that left
        self.rounds = 0
        self.sent = 0

    def start(self, still: Callable[[], bool]) -> None:
        """The crash kernel has booted: send now, then every interval while ``still()``."""
        config = self.host.config
        targets = config.fence_kdump
        if not targets:
            return
        interval = self.host.scaled(config.fence_kdump_interval)

        def round_() -> None:
            if not still():
                return
            sent = send_round(self.host.address, targets)
            with self._lock:
                self.rounds += 1
                self.sent += sent
            if self.host.timers is not None and interval > 0:
                self.host.call_later(interval, round_)

        round_()
