"""A whole crash over real sockets and files: hung host, NMI through the BMC, dump, reboot.

oob's own pieces judge the mock: its inventory loader reads what the fleet writes, its probe
tells hung from healthy, its dump watcher follows the dump to ``complete`` (or ``stalled``,
``failed``, ``timeout``) and attributes dumps on a shared target to their hosts.  At scale
0.02 a crash cycle takes about 1.2 s (0.3 s to the dump directory, 0.3 s of dump, 0.6 s of
reboot).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import requests

from mocks.fleet import Fleet
from mocks.host import HostState
from mocks.probe import Probe
from oob.drivers.factory import make_driver
from oob.dump.watcher import Baseline, BlockingDumpWatcher, DumpResult, DumpState, WatchOptions, watch_dumps
from oob.events import Event
from oob.inventory import load_inventory
from oob.model import Host
from oob.probe import probe_host

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Http = Callable[[Fleet], requests.Session]

SCALE = 0.02
FAST = WatchOptions(interval=0.05, stall_after=0.4, timeout=10.0, progress_every=0.0)


def oob_hosts(fleet: Fleet, tmp_path: Path) -> dict[str, Host]:
    return dict(load_inventory([fleet.write_inventory(tmp_path / "inventory.toml")]).hosts)


def baseline(hosts: list[Host]) -> Baseline:
    with BlockingDumpWatcher(hosts, FAST) as watcher:
        return watcher.take_baseline()


def results_by_host(results: list[DumpResult]) -> dict[str, DumpResult]:
    return {result.host: result for result in results}


def wait_alive(host: Host, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe_host(host, timeout=0.2).alive:
            return True
        time.sleep(0.05)
    return False


def test_redfish_nmi_to_hung_hosts_dumps_in_their_layouts_then_they_reboot(
    mock_fleet_factory: Start, mock_http: Http, tmp_path: Path
) -> None:
    layouts = ["rhel-local", "suse", "debian-compressed"]
    fleet = mock_fleet_factory(
        ["ilo5", "idrac9", "openbmc"], dump_root=tmp_path / "crash", layouts=layouts, hung=True, scale=SCALE
    )
    hosts = oob_hosts(fleet, tmp_path)
    assert all(probe_host(host, timeout=0.2).alive is False for host in hosts.values())
    before = baseline(list(hosts.values()))
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        probe = Probe(http, bmc)
        assert probe.login().status_code == 201
        assert probe.reset("Nmi").status_code in (200, 204)
        probe.logout()
    assert {b.host_state for b in fleet.bmcs} == {"panicked"}
    results = results_by_host(watch_dumps(list(hosts.values()), FAST, baseline=before))
    expected = {
        "ilo5-1": ("rhel", "vmcore", "kdump-compressed"),
        "idrac9-1": ("suse", "vmcore", "kdump-compressed"),
        "openbmc-1": ("debian", "dump.", "gzip"),
    }
    for name, (family, vmcore, fmt) in expected.items():
        result = results[name]
        assert result.state is DumpState.COMPLETE, result.to_dict()
        directory = fleet.host(name).dump_directory
        assert directory is not None and result.path == str(directory)
        assert directory.parent == tmp_path / "crash" / name  # local layouts: the host's own target
        assert result.family == family and result.vmcore and result.vmcore.startswith(vmcore)
        assert result.format is not None and result.format.kind == fmt, result.to_dict()
        assert not result.format.truncated
        if fmt == "kdump-compressed":
            assert result.format.nodename == name  # the crashed host's name in the header
        assert result.panic.lines[-1] == "Kernel panic - not syncing: NMI: Not continuing"
    for name, host in hosts.items():
        assert wait_alive(host), f"{name} did not come back: {fleet.host(name).state}"
        assert fleet.bmc(name).nmi_count == 1 and fleet.host(name).dump_status == "complete"


def test_ipmi_nmi_reaches_the_same_host_and_it_dumps(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(
        ["ipmi", "ami"], ipmi=True, dump_root=tmp_path / "crash", layouts=["rhel-ssh"], hung=True, scale=SCALE
    )
    hosts = oob_hosts(fleet, tmp_path)
    before = baseline(list(hosts.values()))
    for host in hosts.values():
        with make_driver(host, "ipmi", connect_attempts=1) as driver:
            driver.send_nmi()
    results = results_by_host(watch_dumps(list(hosts.values()), FAST, baseline=before))
    for name, host in hosts.items():
        bmc = fleet.bmc(name)
        assert (bmc.nmi_count_ipmi, bmc.nmi_count_redfish) == (1, 0)
        result = results[name]
        assert result.state is DumpState.COMPLETE and result.vmcore == "vmcore.flat", result.to_dict()
        # rhel-ssh sends the dump to a shared server, named by the host's own address
        assert result.directory and result.directory.startswith(f"{bmc.host_address}-")
        assert wait_alive(host)


def test_not_armed_reboots_without_a_dump(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["dmtf"], count=2, dump_root=tmp_path / "crash", hung=True, scale=SCALE)
    fleet.set_faults("dmtf-1", kdump_not_armed=True)
    fleet.configure_host("dmtf-2", armed=False)
    hosts = oob_hosts(fleet, tmp_path)
    before = baseline(list(hosts.values()))
    for bmc in fleet.bmcs:
        bmc.host.apply_reset("Nmi")
    options = WatchOptions(interval=0.05, stall_after=0.4, timeout=1.5)
    results = results_by_host(watch_dumps(list(hosts.values()), options, baseline=before))
    for name, host in hosts.items():
        assert results[name].state is DumpState.TIMEOUT and results[name].directory is None
        assert wait_alive(host)  # panic timeout (0.2 s) and reboot (0.6 s) at this scale
        assert [r.after for r in fleet.host(name).history if r.before != r.after] == [
            "hung",
            "panicked",
            "rebooting",
            "running",
        ]
    assert not any((tmp_path / "crash").rglob("vmcore*"))


def test_stall_is_seen_as_a_stall_and_disk_full_as_a_failure(
    mock_fleet_factory: Start, tmp_path: Path
) -> None:
    fleet = mock_fleet_factory(
        ["dmtf"], count=2, dump_root=tmp_path / "crash", layouts=["rhel-local"], hung=True, scale=SCALE
    )
    fleet.set_faults("dmtf-1", dump_stall=True)
    fleet.set_faults("dmtf-2", disk_full=True)
    assert fleet.bmc("dmtf-1").fault_dict()["dump_stall"] is True
    hosts = oob_hosts(fleet, tmp_path)
    before = baseline(list(hosts.values()))
    for bmc in fleet.bmcs:
        bmc.host.apply_reset("Nmi")
    events: list[Event] = []
    options = WatchOptions(interval=0.05, stall_after=0.4, timeout=2.5)
    results = results_by_host(watch_dumps(list(hosts.values()), options, baseline=before, emit=events.append))
    stalled, failed = results["dmtf-1"], results["dmtf-2"]
    assert stalled.state is DumpState.STALLED, stalled.to_dict()  # ends the wait at --stall-after
    assert any(e.kind == "dump_stalled" and e.host == "dmtf-1" for e in events)
    assert fleet.host("dmtf-1").state is HostState.DUMPING  # kdump hangs: the host never reboots
    assert failed.state is DumpState.FAILED, failed.to_dict()
    assert wait_alive(hosts["dmtf-2"])  # kdump's failure action reboots


def test_twenty_hosts_on_one_dump_server_are_told_apart(mock_fleet_factory: Start, tmp_path: Path) -> None:
    layouts = ["rhel-nfs", "rhel-ssh", "suse-nfs", "suse-ssh", "suse-old-ssh", "debian-nfs", "debian-ssh"]
    fleet = mock_fleet_factory(
        ["dmtf"], count=20, dump_root=tmp_path / "crash", layouts=layouts, hung=True, scale=SCALE
    )
    assert {b.dump_target for b in fleet.bmcs} == {tmp_path / "crash" / "nfs", tmp_path / "crash" / "ssh"}
    hosts = oob_hosts(fleet, tmp_path)
    before = baseline(list(hosts.values()))
    for bmc in fleet.bmcs:
        bmc.host.apply_reset("Nmi")
    results = results_by_host(watch_dumps(list(hosts.values()), FAST, baseline=before))
    assert len(results) == 20
    for bmc in fleet.bmcs:
        result = results[bmc.name]
        assert result.state is DumpState.COMPLETE, result.to_dict()
        assert result.path == str(bmc.host.dump_directory), (bmc.name, result.path)
    assert len({r.path for r in results.values()}) == 20


def test_the_inventory_carries_address_probe_and_dump_keys(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(
        ["ilo5", "idrac9"],
        count=2,
        dump_root=tmp_path / "crash",
        layouts=["rhel-local", "suse-ssh", "debian-nfs", "suse-old"],
    )
    hosts = oob_hosts(fleet, tmp_path)
    families = {"ilo5-1": "rhel", "ilo5-2": "suse", "idrac9-1": "debian", "idrac9-2": "suse"}
    targets = {"ilo5-1": "ilo5-1", "ilo5-2": "ssh", "idrac9-1": "nfs", "idrac9-2": "idrac9-2"}
    for name, host in hosts.items():
        bmc = fleet.bmc(name)
        assert (
            host.address == bmc.host_address
            and host.probe == bmc.probe == f"ssh:{host.address}:{bmc.probe_port}"
        )
        assert host.dump.target == (tmp_path / "crash" / targets[name]).as_uri()
        assert host.dump.layout == families[name]
        assert host.bmc.address == bmc.url


def test_healthy_hosts_panic_on_nmi_too(mock_fleet_factory: Start, mock_http: Http, tmp_path: Path) -> None:
    # only oob refuses healthy hosts; the machine itself panics on any unknown NMI
    fleet = mock_fleet_factory(["supermicro"], dump_root=tmp_path / "crash", scale=SCALE)
    host = fleet.host("supermicro-1")
    assert host.state.value == "running"
    probe = Probe(mock_http(fleet), fleet.bmc("supermicro-1"))
    probe.login()
    probe.reset("Nmi")
    probe.logout()
    assert host.state is HostState.PANICKED
    assert host.wait_for("dumping", 3) and host.wait_for("running", 5)
    assert host.dump_status == "complete"
