"""fence_kdump's "kdump has started": the real ``fence_kdump_send`` against oob's listener.

``fence_kdump_send`` is fence-agents' own C sender (scripts/test extracts it from Debian's
``fence-agents`` package and points ``OOB_FENCE_KDUMP_SEND`` at it).  It sends from this
machine's address toward the node: on loopback that source is 127.0.0.1, so the watched
host that must be matched has that address.  Every socket here is on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from oob.errors import UsageError
from oob.events import Event, EventKind
from oob.model import DumpConfig, Host
from oob.signals import fence_kdump
from oob.signals.fence_kdump import (
    MAGIC,
    FenceKdumpListener,
    ListenAddress,
    decode_message,
    encode_message,
    parse_listen,
)

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = ListenAddress("127.0.0.1", 0)
WEB = Host("web01", address="127.0.0.1")
DB = Host("db01", address="127.0.0.2")
#: what the real sender's --help lists (its man page gives the same options)
DOCUMENTED_OPTIONS = ("--ipport=PORT", "--family=FAMILY", "--count=COUNT", "--interval=INTERVAL")


def find_sender() -> str:
    candidates = [
        os.environ.get("OOB_FENCE_KDUMP_SEND", ""),
        str(REPO / ".venv/tools/fence-agents/usr/libexec/fence-agents/fence_kdump_send"),
        "/usr/libexec/fence-agents/fence_kdump_send",
        "/usr/libexec/fence_kdump_send",
        shutil.which("fence_kdump_send") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("fence_kdump_send not found: run scripts/test (it extracts it from Debian's fence-agents)")


@pytest.fixture(scope="module")
def sender() -> str:
    return find_sender()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for something the loop must do (datagrams are handled between our awaits)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


def send_from(source: str, port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        for data in datagrams:
            sock.sendto(data, ("127.0.0.1", port))


def kinds(events: list[Event], kind: EventKind) -> list[Event]:
    return [event for event in events if event.kind is kind]


# -- the real fence_kdump_send ---------------------------------------------------------------------


def test_the_real_sender_is_fence_agents_and_takes_the_documented_options(sender: str) -> None:
    version = subprocess.run([sender, "--version"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.startswith("fence_kdump_send ")
    usage = subprocess.run([sender, "--help"], capture_output=True, text=True, timeout=10)
    for option in DOCUMENTED_OPTIONS:
        assert option in usage.stdout


def test_real_fence_kdump_send_reports_kdump_started_for_the_right_host(sender: str) -> None:
    events: list[Event] = []

    async def scenario() -> None:
        async with FenceKdumpListener([WEB, DB], LOOPBACK, emit=events.append) as listener:
            # as kdump.conf's fence_kdump_args would give them: port, family, two rounds 1 s apart
            argv = [sender, "-p", str(listener.port), "-f", "ipv4", "-c", "2", "-i", "1", "127.0.0.1"]
            proc = await asyncio.create_subprocess_exec(*argv)
            signal = await listener.wait_started("web01", 10)
            assert signal is not None and signal.sender == "127.0.0.1"
            assert await proc.wait() == 0
            await until(lambda: listener.report().heard[0].count == 2, "the second round counted")
        report = listener.report()
        assert [s.host for s in report.heard] == ["web01"]
        assert report.silent == ("db01",)
        assert report.heard[0].byteorder == "little" and report.heard[0].first <= report.heard[0].last
        assert report.malformed == 0 and report.unknown == 0

    run(scenario())
    started = kinds(events, EventKind.KDUMP_STARTED)
    assert len(started) == 1  # the second message is counted, not said again
    assert started[0].host == "web01" and started[0].data["sender"] == "127.0.0.1"
    assert started[0].to_dict()["event"] == "kdump_started"


def test_from_a_thread_the_listener_runs_on_the_bridge_loop(sender: str) -> None:
    events: list[Event] = []
    with FenceKdumpListener([WEB], LOOPBACK, emit=events.append) as listener:
        assert listener.started("web01") is None
        subprocess.run(
            [sender, "-p", str(listener.port), "-f", "ipv4", "-c", "1", "-i", "1", "127.0.0.1"],
            check=True,
            timeout=10,
        )
        for _ in range(1000):
            if listener.started("web01") is not None:
                break
            time.sleep(0.01)
        port = listener.port
    report = listener.report()
    assert report.signal("web01") is not None and report.signal("web01").count == 1  # type: ignore[union-attr]
    assert [e.host for e in kinds(events, EventKind.KDUMP_STARTED)] == ["web01"]
    # closed: the port is free again
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))


# -- what is ignored -------------------------------------------------------------------------------


def test_malformed_datagrams_are_ignored_counted_and_said_once() -> None:
    events: list[Event] = []

    async def scenario() -> None:
        async with FenceKdumpListener([WEB], LOOPBACK, emit=events.append) as listener:
            bad = [
                encode_message()[:7],  # short
                encode_message() + b"\0",  # long
                struct.pack("<II", MAGIC ^ 1, 1),  # not the magic
                encode_message(version=2),  # a version fence_kdump does not know
                b"",
            ]
            send_from("127.0.0.1", listener.port, *bad)
            await until(lambda: listener.report().malformed == len(bad), "every malformed datagram counted")
            assert listener.started("web01") is None
            send_from("127.0.0.1", listener.port, encode_message())
            await listener.wait_started("web01", 10)
        report = listener.report()
        assert report.malformed == 5 and report.unknown == 0 and report.signal("web01") is not None

    run(scenario())
    ignored = kinds(events, EventKind.FENCE_KDUMP_IGNORED)
    assert len(ignored) == 1 and ignored[0].data["sender"] == "127.0.0.1"
    assert ignored[0].data["reason"] == "size" and ignored[0].host is None
    assert [e.host for e in kinds(events, EventKind.KDUMP_STARTED)] == ["web01"]


def test_an_unknown_sender_is_ignored_and_counted() -> None:
    events: list[Event] = []

    async def scenario() -> None:
        async with FenceKdumpListener([WEB, DB], LOOPBACK, emit=events.append) as listener:
            send_from("127.0.0.9", listener.port, encode_message(), encode_message(), encode_message())
            await until(lambda: listener.report().unknown == 3, "three unknown messages counted")
        report = listener.report()
        assert report.heard == () and report.silent == ("web01", "db01")
        assert report.unknown_senders == (("127.0.0.9", 3),)
        assert report.to_dict()["unknown_senders"] == [{"sender": "127.0.0.9", "count": 3}]

    run(scenario())
    assert kinds(events, EventKind.KDUMP_STARTED) == []
    ignored = kinds(events, EventKind.FENCE_KDUMP_IGNORED)
    assert [(e.data["sender"], e.data["reason"]) for e in ignored] == [("127.0.0.9", "unknown_sender")]


def test_an_address_two_hosts_claim_belongs_to_neither() -> None:
    events: list[Event] = []
    twin = Host("web02", address="127.0.0.1")

    async def scenario() -> None:
        async with FenceKdumpListener([WEB, twin], LOOPBACK, emit=events.append) as listener:
            send_from("127.0.0.1", listener.port, encode_message())
            await until(lambda: listener.report().unknown == 1, "the message counted")
        assert listener.report().heard == ()

    run(scenario())
    assert [e.data["reason"] for e in kinds(events, EventKind.FENCE_KDUMP_IGNORED)] == ["ambiguous_sender"]


def test_a_flood_grows_nothing_without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fence_kdump, "MAX_TRACKED_SENDERS", 8)
    events: list[Event] = []
    senders = [f"127.0.3.{n}" for n in range(1, 31)]

    async def scenario() -> None:
        async with FenceKdumpListener([WEB], LOOPBACK, emit=events.append) as listener:
            for number, source in enumerate(senders, start=1):
                send_from(source, listener.port, encode_message(), b"junk")
                await until(lambda n=number: listener.report().unknown == n, f"{source} counted")
            # and one sender's flood of junk: counted (as many as the socket kept), said once
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.3", 0))
                for _ in range(3000):
                    sock.sendto(b"x" * 100, ("127.0.0.1", listener.port))
            # a flood can fill the socket's buffer and drown a message: the real sender repeats
            # every -i seconds, and so does this one until it is heard
            await until(
                lambda: (
                    send_from("127.0.0.1", listener.port, encode_message())
                    or listener.started("web01") is not None
                ),
                "web01 heard through the flood",
            )
            report = listener.report()
            assert len(report.unknown_senders) == 8  # the bound
            assert report.untracked == len(senders) - 8 and report.unknown == len(senders)
            assert len(senders) < report.malformed <= len(senders) + 3000
            assert len(listener._reported) <= 2 * fence_kdump.MAX_TRACKED_SENDERS

    run(scenario())
    # reports are rate-limited: at most the window's budget, whatever arrived
    assert len(kinds(events, EventKind.FENCE_KDUMP_IGNORED)) == fence_kdump.REPORTS_PER_WINDOW
    assert [e.host for e in kinds(events, EventKind.KDUMP_STARTED)] == ["web01"]


def test_reports_come_back_when_the_window_has_passed() -> None:
    now = [0.0]
    events: list[Event] = []

    async def scenario() -> None:
        listener = FenceKdumpListener([WEB], LOOPBACK, emit=events.append, clock=lambda: now[0])
        async with listener:
            for n in range(1, 9):
                send_from(f"127.0.4.{n}", listener.port, encode_message())
            await until(lambda: listener.report().unknown == 8, "eight unknown senders counted")
            assert len(events) == fence_kdump.REPORTS_PER_WINDOW
            now[0] += fence_kdump.REPORT_WINDOW
            send_from("127.0.4.100", listener.port, encode_message())
            await until(lambda: listener.report().unknown == 9, "a ninth counted")

    run(scenario())
    assert len(events) == fence_kdump.REPORTS_PER_WINDOW + 1
    assert events[-1].data["sender"] == "127.0.4.100"


# -- matching, formats, addresses ------------------------------------------------------------------


def test_a_host_is_matched_by_an_alias_resolved_when_the_listener_starts() -> None:
    # localhost resolves from /etc/hosts (no DNS); the address itself is another one
    host = Host("web01", address="192.0.2.10", aliases=("localhost",))

    async def scenario() -> None:
        async with FenceKdumpListener([host], LOOPBACK) as listener:
            send_from("127.0.0.1", listener.port, encode_message())
            assert await listener.wait_started("web01", 10) is not None

    run(scenario())


def test_ipv4_mapped_senders_read_as_ipv4() -> None:
    assert fence_kdump.sender_address(("::ffff:127.0.0.1", 4000, 0, 0)) == "127.0.0.1"
    assert fence_kdump.sender_address(("127.0.0.1", 4000)) == "127.0.0.1"


def test_both_byte_orders_are_read_and_named() -> None:
    assert encode_message("little") == bytes.fromhex("402a301b01000000")  # x86: as fence_kdump_send
    assert decode_message(encode_message("little")).byteorder == "little"
    assert decode_message(encode_message("big")).byteorder == "big"
    assert decode_message(encode_message("big", version=7)).problem == "version"
    assert decode_message(b"\0" * 8).problem == "magic"
    assert decode_message(b"\0" * 9).problem == "size"


def test_the_real_senders_bytes_are_what_oob_decodes(sender: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        subprocess.run(
            [sender, "-p", str(port), "-f", "ipv4", "-c", "1", "127.0.0.1"], check=True, timeout=10
        )
        data, _ = sock.recvfrom(65536)
    assert data == encode_message("little" if struct.pack("=I", 1)[0] == 1 else "big")
    assert decode_message(data).problem is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7410", ListenAddress(None, 7410)),
        ("127.0.0.1:7410", ListenAddress("127.0.0.1", 7410)),
        ("[::1]:7410", ListenAddress("::1", 7410)),
        (" 0.0.0.0:1 ", ListenAddress("0.0.0.0", 1)),
    ],
)
def test_listen_addresses(text: str, expected: ListenAddress) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text", ["", "port", "70000", "host.example:7410", "::1:7410", "[::1]", "1.2.3.4:", "-1", "１２"]
)
def test_bad_listen_addresses_are_one_line_naming_the_flag(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_listen(text)
    message = str(caught.value)
    assert message.startswith("--fence-kdump: expected [ADDR:]PORT") and "\n" not in message


def test_who_is_listened_for_the_flag_or_the_inventory() -> None:
    cluster = Host("db02", address="127.0.0.3", dump=DumpConfig(fence_kdump=True))
    assert fence_kdump.listener_for([WEB, DB]) is None  # nobody asked
    by_inventory = fence_kdump.listener_for([WEB, cluster])
    assert by_inventory is not None and by_inventory.hosts == (cluster,)
    assert by_inventory.listen == ListenAddress(None, 7410)
    by_flag = fence_kdump.listener_for([WEB, cluster], "127.0.0.1:7411")
    assert by_flag is not None and by_flag.hosts == (WEB, cluster)
    assert by_flag.listen == ListenAddress("127.0.0.1", 7411)
    with pytest.raises(UsageError):
        fence_kdump.listener_for([WEB], "7410x")


def test_a_port_already_taken_is_one_clear_error() -> None:
    async def scenario() -> None:
        async with FenceKdumpListener([WEB], LOOPBACK) as first:
            second = FenceKdumpListener([WEB], ListenAddress("127.0.0.1", first.port))
            with pytest.raises(
                UsageError, match=r"cannot listen for fence_kdump on 127\.0\.0\.1:\d+: .*in use"
            ):
                await second.start()

    run(scenario())
