"""`oob crash` end to end: the real CLI against hung simulated hosts, over real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO, CliResult, write_inventory

SCALE = 0.02
#: fast settings for tests: probes, polling and waits in fractions of a second
FAST = ("--probe-timeout", "0.3", "--interval", "0.1", "--reboot-grace", "15s", "--timeout", "30s")
ALL_FLAVOURS = ["ilo5", "idrac9", "openbmc", "supermicro", "xcc", "ami", "ipmi"]


def _hung_fleet(fleet_factory: Callable[..., Any], tmp_path: Path, vendors: list[str], **options: Any) -> Any:
    settings: dict[str, Any] = {"ipmi": True, "dump_root": tmp_path / "crash", "hung": True, "scale": SCALE}
    settings.update(options)
    return fleet_factory(vendors, **settings)


def _events(result: CliResult, kind: str) -> list[dict[str, Any]]:
    return [r for r in result.records if r.get("event") == kind]


def _result(result: CliResult, host: str) -> dict[str, Any]:
    matches = [r for r in result.records if r.get("event") == "result" and r["host"] == host]
    assert len(matches) == 1, result.stdout + result.stderr
    return matches[0]


def test_crash_every_flavour_collects_its_dump(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ALL_FLAVOURS)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("crash", "all", "-i", str(inventory), "--yes", "--json", *FAST)
    assert result.code == 0, result.stderr
    for bmc in fleet.bmcs:
        outcome = _result(result, bmc.name)
        assert outcome["status"] == "complete", outcome
        host = fleet.host(bmc.name)
        dump = outcome["dump"]
        assert dump["state"] == "complete"
        assert Path(dump["path"]).parent == Path(host.config.dump_target)
        assert Path(dump["path"]).is_dir()
        assert dump["size"] > 0
        assert any("Kernel panic - not syncing" in line for line in dump["panic"])
        # the mock's plain NMI panic has nothing before it: a hard hang, said to be unsure
        verdict = dump["analysis"]["verdict"]
        assert (verdict["kind"], verdict["confidence"]) == ("hard_hang", "low")
        assert outcome["host_back"] is True
        assert bmc.nmi_count == 1
        assert bmc.open_sessions == 0
    assert _result(result, "ami-1")["via"] == "ipmi"
    assert "NMI not supported" in _result(result, "ami-1")["fallback_reason"]
    summary = _events(result, "summary")[0]
    assert summary["by_status"] == {"complete": len(ALL_FLAVOURS)}
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds.count("nmi.sending") == len(ALL_FLAVOURS) == kinds.count("nmi.sent")
    results = {r["host"]: r for r in records if r["event"] == "crash.result"}
    assert all(r["status"] == "complete" and r["dump"]["state"] == "complete" for r in results.values())
    assert all(r["dump"]["cause"] == "hard hang (nothing logged)" for r in results.values())
    assert len(results) == len(ALL_FLAVOURS)
    assert all(r["command"].startswith("oob crash all") and "@" in r["operator"] for r in records)


def test_human_report_names_the_dump(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["idrac9"], layouts=["suse"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("crash", "idrac9-1", "-i", str(inventory), "--yes", *FAST)
    assert result.code == 0, result.stderr
    assert "complete" in result.stdout
    assert "NMI: Not continuing" in result.stdout
    assert str(tmp_path / "crash") in result.stdout


def test_healthy_host_is_refused_unless_forced(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["openbmc"], hung=False)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    refused = oob("crash", "openbmc-1", "-i", str(inventory), "--yes", "--json", *FAST)
    assert refused.code == 7
    outcome = _result(refused, "openbmc-1")
    assert outcome["status"] == "refused" and "looks healthy" in outcome["message"]
    assert "SSH-2.0" in outcome["message"]
    assert fleet.bmc("openbmc-1").nmi_count == 0
    forced = oob("crash", "openbmc-1", "-i", str(inventory), "--yes", "--json", "--force", *FAST)
    assert forced.code == 0, forced.stderr
    assert _result(forced, "openbmc-1")["status"] == "complete"
    assert fleet.bmc("openbmc-1").nmi_count == 1


def test_kdump_not_armed_exits_5_with_the_hint(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["ilo5"], armed=False)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob(
        "crash",
        "ilo5-1",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--probe-timeout",
        "0.3",
        "--interval",
        "0.1",
        "--timeout",
        "3s",
    )
    assert result.code == 5, result.stderr
    outcome = _result(result, "ilo5-1")
    assert outcome["status"] == "timeout"
    assert any(
        "no dump appeared; is kdump armed (kexec_crash_loaded) and kernel.unknown_nmi_panic=1?" in note
        for note in outcome["notes"]
    )
    assert fleet.bmc("ilo5-1").nmi_count == 1


def test_stalled_dump_is_reported(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["xcc"], layouts=["rhel"])
    fleet.set_faults("xcc-1", dump_stall=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob(
        "crash",
        "xcc-1",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--probe-timeout",
        "0.3",
        "--interval",
        "0.1",
        "--stall-after",
        "1s",
        "--timeout",
        "5s",
    )
    assert result.code == 5
    assert _events(result, "dump_stalled"), result.stdout
    outcome = _result(result, "xcc-1")
    assert outcome["dump"]["directory"]  # the directory appeared; the vmcore never finished


def test_recover_power_cycles_a_host_that_never_dumps(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["idrac9"], armed=False)
    fleet.set_faults("idrac9-1", no_reboot=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob(
        "crash",
        "idrac9-1",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--recover",
        "--probe-timeout",
        "0.3",
        "--interval",
        "0.1",
        "--timeout",
        "3s",
    )
    assert result.code == 5
    recovered = _events(result, "recovered")
    assert recovered and recovered[0]["host"] == "idrac9-1"
    assert _result(result, "idrac9-1")["recovered"] is True
    assert fleet.bmc("idrac9-1").resets.get("PowerCycle", 0) == 1
    assert fleet.bmc("idrac9-1").open_sessions == 0


def test_a_host_that_powers_off_after_its_dump_is_reported_at_once(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["idrac9"])
    fleet.set_faults("idrac9-1", poweroff_after_dump=True)  # kdump's final action: poweroff
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    # --reboot-grace 1h: only the BMC's power state can end this wait within the test's time
    args = ("crash", "idrac9-1", "-i", str(inventory), "--yes", "--json", *FAST, "--reboot-grace", "1h")
    result = oob(*args)
    assert result.code == 0, result.stderr
    outcome = _result(result, "idrac9-1")
    assert outcome["status"] == "complete" and outcome["dump"]["state"] == "complete"
    assert outcome["after_dump"] == "powered_off_after_dump" and outcome["host_back"] is False
    assert "recovered" not in outcome
    # --json: the event is a JSON line of its own
    assert any(
        r.get("event") == "powered_off_after_dump"
        and "the BMC reports the host off after its dump" in r["message"]
        for r in result.records
    )
    bmc = fleet.bmc("idrac9-1")
    assert fleet.host("idrac9-1").power == "Off"
    assert bmc.nmi_count == 1 and bmc.open_sessions == 0
    assert not {"On", "ForceOn", "PowerCycle"} & set(bmc.resets)  # nothing without --recover


def test_recover_powers_on_a_host_that_powered_off_after_its_dump(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["idrac9"])
    fleet.set_faults("idrac9-1", poweroff_after_dump=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    args = ("crash", "idrac9-1", "-i", str(inventory), "--yes", "--json", "--recover", *FAST)
    result = oob(*args, "--reboot-grace", "1h")
    assert result.code == 0, result.stderr
    outcome = _result(result, "idrac9-1")
    assert outcome["after_dump"] == "powered_off_after_dump"
    assert outcome["recovered"] is True and outcome["host_back"] is True  # powered on, then booted
    recovered = _events(result, "recovered")
    assert [r["action"] for r in recovered] == ["on"]
    bmc = fleet.bmc("idrac9-1")
    assert bmc.resets.get("On", 0) + bmc.resets.get("ForceOn", 0) == 1  # power on, not a cycle
    assert "PowerCycle" not in bmc.resets and bmc.nmi_count == 1 and bmc.open_sessions == 0
    assert fleet.host("idrac9-1").power == "On"
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    kinds = [r["event"] for r in records if r.get("host") == "idrac9-1"]
    assert kinds[-3:] == ["recover.on.sending", "recover.on.done", "crash.result"]


def test_dry_run_sends_nothing(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["ilo5", "supermicro"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("crash", "all", "-i", str(inventory), "--dry-run", "--json", *FAST)
    assert result.code == 0, result.stderr
    assert {r["host"]: r["status"] for r in result.records if r.get("event") == "result"} == {
        "ilo5-1": "dry-run",
        "supermicro-1": "dry-run",
    }
    assert len(_events(result, "preflight")) == 2
    assert all(b.nmi_count == 0 and b.open_sessions == 0 for b in fleet.bmcs)


def test_no_terminal_and_no_yes_refuses(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("crash", "openbmc-1", "-i", str(inventory), *FAST)
    assert result.code == 7
    assert "no terminal" in result.stderr
    assert fleet.bmc("openbmc-1").nmi_count == 0
    typed = oob("crash", "openbmc-1", "-i", str(inventory), *FAST, tty_input="openbmc-1\n")
    assert typed.code == 0, typed.stderr
    assert fleet.bmc("openbmc-1").nmi_count == 1


def _crash_process(inventory: Path, audit: Path, *targets: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OOB_AUDIT_LOG=str(audit))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oob",
            "crash",
            *targets,
            "-i",
            str(inventory),
            "--yes",
            "--json",
            "--probe-timeout",
            "0.3",
            "--interval",
            "0.1",
            "--timeout",
            "60s",
            "--reboot-grace",
            "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _wait_for_event(proc: subprocess.Popen[str], kind: str, count: int = 1, timeout: float = 30) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if json.loads(line).get("event") == kind:
            seen += 1
    assert seen == count, f"saw {seen} {kind} events: {lines}"
    return lines


def test_sigint_stops_cleanly_and_keeps_the_record(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path
) -> None:
    # slow dumps, so the run is still watching when interrupted
    fleet = _hung_fleet(
        fleet_factory, tmp_path, ["ilo5", "idrac9"], count=5, scale=0.2, dump_size=64 * 1024 * 1024
    )
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    proc = _crash_process(inventory, audit_path, "all")
    try:
        _wait_for_event(proc, "nmi_sent", count=10)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert "interrupted" in stderr
    results = [json.loads(line) for line in stdout.splitlines() if json.loads(line).get("event") == "result"]
    assert len(results) == 10 and all(r.get("nmi_at") for r in results)
    assert all(b.open_sessions == 0 for b in fleet.bmcs)
    assert all(b.nmi_count == 1 for b in fleet.bmcs)
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert sum(r["event"] == "nmi.sent" for r in records) == 10


def test_concurrent_run_is_refused_by_the_lock(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = _hung_fleet(fleet_factory, tmp_path, ["openbmc"], scale=0.2, dump_size=64 * 1024 * 1024)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    first = _crash_process(inventory, audit_path, "openbmc-1")
    try:
        _wait_for_event(first, "nmi_sent")
        second = oob("crash", "openbmc-1", "-i", str(inventory), "--yes", "--json", "--force", *FAST)
        assert second.code == 7
        message = _result(second, "openbmc-1")["message"]
        assert "locked by another oob run" in message and f"pid {first.pid}" in message
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert fleet.bmc("openbmc-1").nmi_count == 1


def test_crash_ends_with_why_each_host_hung(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    """Five hosts hung five ways: the report says, per host, what its kernel log shows."""
    from mocks.pytest_plugin import HANG_FLEET_KINDS, HANG_FLEET_VENDORS

    fleet = _hung_fleet(fleet_factory, tmp_path, list(HANG_FLEET_VENDORS), hang_kind=HANG_FLEET_KINDS)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    prom = tmp_path / "crash.prom"
    result = oob(
        "crash", "all", "-i", str(inventory), "--yes", "--json", "--prometheus-textfile", str(prom), *FAST
    )
    assert result.code == 0, result.stderr
    expected = {
        "hard": ("hard_hang", "exhba", "low"),
        "softlockup": ("soft_lockup", "ext4", "high"),
        "rcustall": ("rcu_stall", "pktflt", "high"),
        "hungtask": ("hung_task", "nfs", "medium"),
        "oops": ("oops", "jbd2", "high"),
    }
    seen = set()
    for bmc in fleet.bmcs:
        kind = str(fleet.host(bmc.name).config.hang_kind)
        verdict = _result(result, bmc.name)["dump"]["analysis"]["verdict"]
        assert (verdict["kind"], verdict["culprit"], verdict["confidence"]) == expected[kind], bmc.name
        # and the BMC logged the NMI in its own event log
        assert _result(result, bmc.name)["bmc_log"]["nmi_entries"] >= 1, bmc.name
        # and the serial console, recorded over IPMI SOL, shows the crash kernel at work
        console = _result(result, bmc.name)["console"]
        kinds = [m["kind"] for m in console["milestones"]]
        assert {"panic", "crash_kernel", "kdump_saved"} <= set(kinds), (bmc.name, kinds)
        assert console["problem"] is None and Path(console["path"]).stat().st_mode & 0o077 == 0
        seen.add(kind)
    assert seen == set(expected)
    # after the fact, `oob analyze HOST` finds the same dump, verdict and the BMC's NMI entry
    again = oob("analyze", "idrac9-1", "-i", str(inventory), "--json")
    assert again.code == 0, again.stderr
    [record] = [r for r in again.records if r.get("event") == "result"]
    assert (
        record["analysis"]["verdict"]["kind"]
        == _result(result, "idrac9-1")["dump"]["analysis"]["verdict"]["kind"]
    )
    assert record["bmc_log"]["nmi_entries"] >= 1
    # the console report of the same run would show it in the CAUSE / WHY column
    done = _events(result, "dump_complete")
    assert all(e["analysis"]["verdict"]["headline"] for e in done)
    # the same outcomes as Prometheus metrics, read back with prometheus_client's parser
    from prometheus_client.parser import text_string_to_metric_families

    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(prom.read_text())
        for sample in family.samples
    }
    for bmc in fleet.bmcs:
        assert found[("oob_crash_outcome", (("host", bmc.name), ("oob_crash_outcome", "complete")))] == 1
        assert found[("oob_crash_outcome", (("host", bmc.name), ("oob_crash_outcome", "failed")))] == 0
        assert (
            found[("oob_crash_dump_bytes", (("host", bmc.name),))]
            == _result(result, bmc.name)["dump"]["size"]
        )
        assert found[("oob_crash_host_back", (("host", bmc.name),))] == 1


def test_crash_notifies_a_webhook_per_host_outcome(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    from tests.unit.test_notify import Hook

    hook = Hook()
    try:
        fleet = _hung_fleet(
            fleet_factory, tmp_path, ["idrac9", "openbmc"], hang_kind=["softlockup", "hungtask"]
        )
        inventory = write_inventory(fleet, tmp_path / "inv.toml")
        result = oob(
            "crash",
            "all",
            "-i",
            str(inventory),
            "--yes",
            "--json",
            "--notify",
            "generic=env:OOB_TEST_HOOK",
            *FAST,
            env={"OOB_TEST_HOOK": hook.url},
        )
    finally:
        hook.close()
    assert result.code == 0, result.stderr
    outcomes = sorted((body["host"], body["outcome"]) for _, body in hook.received)
    assert outcomes == [
        ("idrac9-1", "dump_complete"),
        ("idrac9-1", "nmi_sent"),
        ("openbmc-1", "dump_complete"),
        ("openbmc-1", "nmi_sent"),
    ]
    verdicts = {
        body["host"]: body["verdict"]["kind"]
        for _, body in hook.received
        if body["outcome"] == "dump_complete"
    }
    assert verdicts == {"idrac9-1": "soft_lockup", "openbmc-1": "hung_task"}
    # the URL holds the secret: it is in no output
    assert "SECRET-TOKEN" not in result.stdout + result.stderr


def test_crash_hears_fence_kdump_from_each_crash_kernel(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fleet = _hung_fleet(fleet_factory, tmp_path, ["idrac9", "openbmc"], fence_kdump=f"127.0.0.1:{port}")
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob(
        "crash", "all", "-i", str(inventory), "--yes", "--json", "--fence-kdump", f"127.0.0.1:{port}", *FAST
    )
    assert result.code == 0, result.stderr
    started = {e["host"] for e in _events(result, "kdump_started")}
    assert started == {"idrac9-1", "openbmc-1"}
    for bmc in fleet.bmcs:
        outcome = _result(result, bmc.name)
        assert outcome["kdump_started"] >= outcome["nmi_at"]
