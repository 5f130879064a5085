"""The simulated hosts through the control API and through ``python -m mocks serve`` as a process."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from mocks.cli import main
from mocks.fleet import Fleet
from oob.drivers.factory import make_driver
from oob.dump.watcher import BlockingDumpWatcher, DumpState, WatchOptions, watch_dumps
from oob.inventory import load_inventory
from oob.probe import probe_host

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
REPO = Path(__file__).resolve().parents[2]
FAST = WatchOptions(interval=0.05, stall_after=1.0, timeout=10.0)


@pytest.fixture
def control() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def test_control_api_shows_and_sets_host_state(
    mock_fleet_factory: Start, control: requests.Session, tmp_path: Path
) -> None:
    fleet = mock_fleet_factory(["ilo5", "ipmi"], dump_root=tmp_path / "crash", layouts=["rhel-ssh", "suse"])
    listing = control.get(f"{fleet.control_url}/bmcs", timeout=5).json()
    ilo, ipmi = listing
    assert ilo["host_state"] == ipmi["host_state"] == "running"
    assert (ilo["host_address"], ipmi["host_address"]) == ("127.0.1.1", "127.0.1.2")
    assert ilo["probe"] == fleet.bmc("ilo5-1").probe and ilo["probe"].startswith("ssh:127.0.1.1:")
    assert ilo["dump_target"] == str(tmp_path / "crash" / "ssh") and ilo["dump_layout"] == "rhel"
    assert ipmi["dump_target"] == str(tmp_path / "crash" / "ipmi-1") and ipmi["dump_layout"] == "suse"
    assert ilo["dump_dir"] is None and ilo["host"]["armed"] is True

    url = f"{fleet.control_url}/bmcs/ipmi-1"
    hung = control.post(f"{url}/host", json={"state": "hung"}, timeout=5)
    assert hung.status_code == 200 and hung.json()["host_state"] == "hung"
    assert fleet.host("ipmi-1").state.value == "hung"
    assert control.post(f"{url}/host", json={"state": "running"}, timeout=5).json()["host_state"] == "running"
    bad = control.post(f"{url}/host", json={"state": "dumping"}, timeout=5)
    assert bad.status_code == 400 and "hung" in bad.json()["error"]

    faults = control.post(f"{url}/faults", json={"kdump_not_armed": True, "no_reboot": True}, timeout=5)
    assert faults.status_code == 200
    assert (
        faults.json()["faults"]["kdump_not_armed"] is True and faults.json()["faults"]["disk_full"] is False
    )
    assert fleet.host("ipmi-1").faults.no_reboot
    unknown = control.post(f"{url}/faults", json={"kdump_armed": False}, timeout=5)
    assert unknown.status_code == 400 and "kdump_not_armed" in unknown.json()["error"]
    cleared = control.delete(f"{url}/faults", timeout=5).json()["faults"]
    assert cleared["kdump_not_armed"] is False and not fleet.host("ipmi-1").faults.no_reboot

    control.post(f"{url}/power", json={"state": "Off"}, timeout=5)
    off = control.post(f"{url}/host", json={"state": "hung"}, timeout=5)
    assert off.status_code == 409 and "off" in off.json()["error"]
    assert control.get(url, timeout=5).json()["host_state"] == "off"


def test_serve_hung_hosts_that_dump_on_nmi(tmp_path: Path) -> None:
    dumps, inventory = tmp_path / "crash", tmp_path / "inventory.toml"
    command = [
        sys.executable,
        "-m",
        "mocks",
        "serve",
        "--vendors",
        "ilo5,openbmc",
        "--hung",
        "--dump-root",
        str(dumps),
        "--layouts",
        "rhel-nfs,suse-nfs",
        "--scale",
        "0.02",
        "--dump-size",
        "256K",
        "--write-inventory",
        str(inventory),
        "--workdir",
        str(tmp_path / "work"),
    ]
    environ = {k: v for k, v in os.environ.items() if k != "OOB_INVENTORY"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=environ
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            readable, _, _ = select.select([proc.stdout], [], [], 60)
            assert readable, "no ready line within 60 s"
            ready = json.loads(proc.stdout.readline())
            assert ready["event"] == "ready" and ready["dump_root"] == str(dumps) and ready["scale"] == 0.02
            assert [b["host_state"] for b in ready["bmcs"]] == ["hung", "hung"]
            hosts = list(load_inventory([inventory]).hosts.values())
            assert [h.dump.target for h in hosts] == [(dumps / "nfs").as_uri()] * 2
            assert all(probe_host(h, timeout=0.2).alive is False for h in hosts)
            with BlockingDumpWatcher(hosts, FAST) as watcher:
                before = watcher.take_baseline()
            for host in hosts:
                with make_driver(host, "redfish", connect_attempts=1) as driver:  # oob's own Redfish driver
                    driver.send_nmi()
            results = watch_dumps(hosts, FAST, baseline=before)
            assert [r.state for r in results] == [DumpState.COMPLETE] * 2, [r.to_dict() for r in results]
            directories = {r.host: r.directory or "" for r in results}
            # RHEL over NFS names the dump by the host's address, SUSE >= 1.9 by its name
            assert directories["ilo5-1"].startswith("127.0.1.1-")
            assert directories["openbmc-1"].startswith("openbmc-1-")
            with requests.Session() as control:
                control.trust_env = False
                bmcs = control.get(f"{ready['control']}/bmcs", timeout=5).json()
            assert {b["dump_dir"] for b in bmcs} == {r.path for r in results}
            assert {b["nmi_count"] for b in bmcs} == {1}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()


def test_the_hung_fleet_fixture_is_ready_for_oob_crash(mock_hung_fleet: Fleet, tmp_path: Path) -> None:
    hosts = load_inventory([mock_hung_fleet.write_inventory(tmp_path / "inventory.toml")]).hosts
    assert len(hosts) == len(mock_hung_fleet.bmcs) and {b.host_state for b in mock_hung_fleet.bmcs} == {
        "hung"
    }
    assert [h.dump.layout for h in hosts.values()][:3] == ["rhel", "suse", "debian"]
    for host in hosts.values():
        assert host.dump.target and Path(host.dump.target.removeprefix("file://")).is_dir()
        assert host.bmc.ipmi_port and probe_host(host, timeout=0.1).alive is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layouts", "gentoo"], "unknown dump layout 'gentoo'"),
        (["--dump-size", "lots"], "--dump-size 'lots'"),
        (["--scale", "0"], "--scale must be more than 0"),
        (["--reboot-time", "-1"], "must not be negative"),
    ],
)
def test_serve_refuses_bad_host_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *args]) == 2
    assert message in capsys.readouterr().err
