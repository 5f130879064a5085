"""The mock fleet's crash kernels send fence_kdump's messages, and oob's listener hears them.

The hosts' addresses (127.0.1.x) and the listener are on loopback; each host's crash kernel
sends from its own address, as a real one does from the machine's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mocks import fence_kdump as mock_fence_kdump
from mocks.fleet import Fleet
from mocks.host import HostConfig, HostState
from oob.events import Event, EventKind
from oob.inventory import load_inventory
from oob.signals.fence_kdump import FenceKdumpListener, ListenAddress, decode_message

SCALE = 0.02


def test_a_crash_kernel_says_kdump_started_for_its_host_only(tmp_path: Path) -> None:
    events: list[Event] = []
    with Fleet.start(
        vendors=["ilo5", "idrac9"], dump_root=tmp_path / "crash", hung=True, scale=SCALE, workdir=tmp_path
    ) as fleet:
        hosts = list(load_inventory([fleet.write_inventory(tmp_path / "inventory.toml")]).hosts.values())

        async def scenario() -> None:
            async with FenceKdumpListener(
                hosts, ListenAddress("127.0.0.1", 0), emit=events.append
            ) as listener:
                for name in ("ilo5-1", "idrac9-1"):  # kdump.conf: fence_kdump_nodes this-machine, -i 5
                    fleet.configure_host(
                        name, fence_kdump=f"127.0.0.1:{listener.port}", fence_kdump_interval=5
                    )
                fleet.host("ilo5-1").apply_reset("Nmi")
                signal = await listener.wait_started("ilo5-1", 10)
                assert signal is not None and signal.sender == fleet.bmc("ilo5-1").host_address
                assert await asyncio.to_thread(fleet.host("ilo5-1").wait_for, "running", 10)
            report = listener.report()
            assert [s.host for s in report.heard] == ["ilo5-1"] and report.silent == ("idrac9-1",)
            # rounds every 0.1 s while the dump was written, none after the reboot
            crash_kernel = fleet.bmc("ilo5-1").crash_kernel.fence_kdump
            assert report.heard[0].count == crash_kernel.sent == crash_kernel.rounds >= 2
            assert fleet.host("ilo5-1").dump_status == "complete"

        asyncio.run(asyncio.wait_for(scenario(), 30))
    assert [(e.kind, e.host) for e in events] == [(EventKind.KDUMP_STARTED, "ilo5-1")]


def test_fleet_start_gives_every_host_the_nodes(tmp_path: Path) -> None:
    with Fleet.start(vendors=["openbmc"], workdir=tmp_path, fence_kdump=[("127.0.0.1", 7410)]) as fleet:
        assert fleet.host("openbmc-1").config.fence_kdump == (mock_fence_kdump.Node("127.0.0.1", 7410),)
        assert fleet.describe()["bmcs"][0]["fence_kdump"] == ["127.0.0.1:7410"]  # type: ignore[index]
        hosts = load_inventory([fleet.write_inventory(tmp_path / "inventory.toml")]).hosts
        assert hosts["openbmc-1"].dump.fence_kdump is True


def test_a_host_without_a_crash_kernel_sends_nothing(tmp_path: Path) -> None:
    events: list[Event] = []
    with Fleet.start(
        vendors=["ilo5"], dump_root=tmp_path / "crash", hung=True, armed=False, scale=SCALE, workdir=tmp_path
    ) as fleet:
        hosts = list(load_inventory([fleet.write_inventory(tmp_path / "inventory.toml")]).hosts.values())

        async def scenario() -> None:
            async with FenceKdumpListener(
                hosts, ListenAddress("127.0.0.1", 0), emit=events.append
            ) as listener:
                fleet.configure_host("ilo5-1", fence_kdump=f"127.0.0.1:{listener.port}")
                fleet.host("ilo5-1").apply_reset("Nmi")
                # panic, panic timeout, reboot: no crash kernel ever ran
                assert await asyncio.to_thread(fleet.host("ilo5-1").wait_for, HostState.REBOOTING, 10)
            assert listener.report().heard == ()

        asyncio.run(asyncio.wait_for(scenario(), 30))
    assert events == [] and fleet.bmc("ilo5-1").crash_kernel.fence_kdump.rounds == 0


def test_the_mock_sends_fence_agents_bytes() -> None:
    assert mock_fence_kdump.message() == bytes.fromhex("402a301b01000000")
    assert decode_message(mock_fence_kdump.message("big")).byteorder == "big"


@pytest.mark.parametrize("node", ["192.0.2.1:7410", ("198.51.100.1", 7410), "127.0.0.1:0"])
def test_nodes_stay_on_loopback(node: object) -> None:
    with pytest.raises(ValueError):
        HostConfig(fence_kdump=node)  # type: ignore[arg-type]
