"""The test guest under a real libvirtd, driven through the real ``oob`` CLI (a process per
command, an inventory with ``bmc.kind = "libvirt"``): ``bmc info``, ``power status``,
``preflight``'s BMC side, an unknown guest, a paused one, ``oob dump`` (``--live``, and
past its ``--deadline``) and ``oob crash --hypervisor-dump`` (memory-only dumps oob
recognises), then one ``oob nmi`` (module-scoped: one crash for all the checks) ending in
a complete RHEL-layout kdump dump that ``oob watch`` follows, the repeat guard refusing a
second one, and one ``oob crash`` to a complete dump.

Read-only tests come first, crashes last (pytest runs a file's tests in order); every test
that crashes the guest leaves it armed again (``vm_guest.ensure_armed()``)."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oob.dump.formats import HEAD_SIZE, TAIL_SIZE, Reader, detect_format, find_release
from oob.dump.layouts import Family, FileInfo, assess, parse_dir_name
from tests.vm.fixture import VmGuest
from tests.vm.guest import ARMED_LINE, CRASH_UP_LINE, FIRST_UP_LINE, REPO, SAVED_LINE, ensure_guest

# the session fixture's boot counts against the first test that takes it
pytestmark = pytest.mark.timeout(600)

ET_CORE = 4
EM_X86_64 = 62


def _reader(path: Path) -> Reader:
    def read(offset: int, size: int) -> bytes:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(size)

    return read


def _domain(guest: VmGuest) -> tuple[libvirt.virConnect, libvirt.virDomain]:
    conn = libvirt.open(guest.uri)
    return conn, conn.lookupByName(guest.domain)


def test_domain_runs_with_kdump_armed(vm_guest: VmGuest) -> None:
    conn, dom = _domain(vm_guest)
    try:
        state, _reason = dom.state()
        assert state == libvirt.VIR_DOMAIN_RUNNING
        assert conn.getType() == "QEMU"
        assert "<domain type='qemu'" in dom.XMLDesc()  # TCG, not KVM
        armed = vm_guest.wait_armed()
        assert "unknown_nmi_panic=1" in armed
        assert f"kernel {ensure_guest().release}" in armed
    finally:
        conn.close()


@dataclass(frozen=True)
class Cli:
    code: int
    stdout: str
    stderr: str

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def result(self) -> dict[str, Any]:
        """The one record for the host (``oob crash``: its ``result`` event)."""
        found = [r for r in self.records if r.get("host") == "guest" and r.get("event") in (None, "result")]
        assert len(found) == 1, f"{self.stdout!r} / {self.stderr!r}"
        return found[0]


@dataclass(frozen=True)
class OobRunner:
    """``python -m oob`` against the guest, with an audit log and a cache of its own."""

    inventory: Path
    audit_log: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> Cli:
        proc = subprocess.run(
            [sys.executable, "-m", "oob", *args, "-i", str(self.inventory)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return Cli(proc.returncode, proc.stdout, proc.stderr)

    def audit_events(self) -> list[str]:
        if not self.audit_log.exists():
            return []
        return [json.loads(line)["event"] for line in self.audit_log.read_text().splitlines()]


@pytest.fixture(scope="module")
def cli(vm_guest: VmGuest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OobRunner]:
    """The guest as an inventory host.  It has no network: its probe and its SSH port are a
    loopback port this fixture holds bound but never listens on, so both are refused at
    once — the probe says "looks hung" without --force, preflight's SSH side fails clearly —
    whatever else answers on this machine's port 22."""
    work = tmp_path_factory.mktemp("oob-vm")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        inventory = work / "inventory.toml"
        inventory.write_text(
            f"""[hosts.guest]
address = "127.0.0.1"
probe = "tcp:127.0.0.1:{port}"
ssh.port = {port}
bmc.kind = "libvirt"
bmc.address = {json.dumps(vm_guest.uri)}
bmc.domain = {json.dumps(vm_guest.domain)}
dump.target = {json.dumps(vm_guest.dump_target)}
dump.layout = "rhel"

[hosts.ghost]
address = "127.0.0.1"
probe = "tcp:127.0.0.1:{port}"
bmc.kind = "libvirt"
bmc.address = {json.dumps(vm_guest.uri)}
bmc.domain = "no-such-guest"
dump.target = {json.dumps(vm_guest.dump_target)}
dump.layout = "rhel"
"""
        )
        env = {k: v for k, v in os.environ.items() if k != "OOB_INVENTORY"}
        env.update(
            OOB_AUDIT_LOG=str(work / "audit.jsonl"),
            OOB_CACHE_DIR=str(work / "cache"),
            OOB_SSH_CONFIG="none",
        )
        yield OobRunner(inventory, work / "audit.jsonl", env)


def test_oob_bmc_info_and_power_status(cli: OobRunner, vm_guest: VmGuest) -> None:
    info = cli("bmc", "info", "guest", "--json")
    assert info.code == 0, info.stderr
    record = info.result()
    assert (record["status"], record["via"], record["power"]) == ("ok", "libvirt", "On")
    assert record["vendor"] == "libvirt QEMU"
    assert record["nmi"]["offered"] is True and record["nmi"]["allowed"] == ["InjectNMI"]
    assert record["model"] == "hvm guest, 1 vCPU, 320 MiB"
    assert f"guest '{vm_guest.domain}'" in record["manager"]
    status = cli("power", "guest", "status", "--json")
    assert status.code == 0, status.stderr
    assert (status.result()["power"], status.result()["via"]) == ("On", "libvirt")


def test_oob_preflight_checks_the_hypervisor_and_says_ssh_failed(cli: OobRunner) -> None:
    result = cli("preflight", "guest", "--json")
    assert result.code == 8  # not ready: the guest has no network for the SSH side
    readiness = next(r for r in result.records if r.get("event") == "readiness")
    assert readiness["ready"] is False
    checks = {c["check"]: c for c in readiness["checks"]}
    bmc_side = {name: c["status"] for name, c in checks.items() if c["side"] == "bmc"}
    assert {k: bmc_side[k] for k in ("reachable", "power", "nmi", "tls")} == {
        "reachable": "ok",
        "power": "ok",
        "nmi": "ok",
        "tls": "skip",
    }
    assert checks["nmi"]["reason"] == "NMI offered via libvirt (libvirt QEMU driver)"
    assert checks["ssh"]["status"] == "fail" and "cannot run the checks over SSH" in checks["ssh"]["reason"]
    assert readiness["message"].startswith("not ready: ssh:")


def test_oob_unknown_guest_is_one_line_and_exit_3(cli: OobRunner, vm_guest: VmGuest) -> None:
    for args in (("nmi", "ghost", "--yes"), ("power", "ghost", "status"), ("dump", "ghost", "--yes", "--live",
                 "--dir", str(vm_guest.scratch_dir))):  # fmt: skip
        result = cli(*args)
        assert result.code == 3, (args, result.stdout, result.stderr)
        said = [line for line in (result.stdout + result.stderr).splitlines() if "no-such-guest" in line]
        assert len(said) == 1 and "no guest with name 'no-such-guest'" in said[0], result.stdout
        assert "libvirt:" not in result.stderr  # libvirt's own stderr printing is off
    assert "nmi.sending" not in cli.audit_events()
    assert list(vm_guest.scratch_dir.iterdir()) == []


def test_a_paused_guest_gets_no_nmi_and_no_record_the_guard_counts(cli: OobRunner, vm_guest: VmGuest) -> None:
    """QEMU would hold an NMI for a paused guest and crash it whenever someone resumes it:
    oob refuses while it plans, before its ``nmi.sending`` record (the first ``oob nmi``
    below is then not refused as a repeat), and preflight says why."""
    conn, dom = _domain(vm_guest)
    try:
        dom.suspend()
        try:
            nmi = cli("nmi", "guest", "--yes", "--json")
            preflight = cli("preflight", "guest", "--json")
        finally:
            dom.resume()
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        conn.close()
    assert nmi.code == 7, nmi.stdout + nmi.stderr
    message = nmi.result()["message"]
    assert message.startswith("the guest is paused") and message.endswith("nothing was sent")
    assert "nmi.sending" not in cli.audit_events()
    readiness = next(r for r in preflight.records if r.get("event") == "readiness")
    checks = {c["check"]: c for c in readiness["checks"]}
    assert checks["power"]["status"] == "fail" and checks["power"]["reason"] == message
    assert (checks["reachable"]["status"], checks["tls"]["status"]) == ("ok", "skip")


def _dump_file(record: dict[str, Any], scratch: Path, host: str = "guest") -> Path:
    path = Path(record["path"])
    assert path.name == "vmcore" and path.parent.parent == scratch
    dirname = parse_dir_name(path.parent.name)
    assert path.parent.name.startswith(f"{host}-") and dirname is not None, path
    assert record["bytes"] == path.stat().st_size > 0
    return path


def _is_qemu_kdump_zlib(path: Path) -> None:
    # QEMU's kdump-zlib is makedumpfile's flattened stream of the kdump-compressed dump (the
    # reassembled kdump-raw-* formats came with QEMU 8.2; Debian 12 has 7.2)
    read = _reader(path)
    fmt = detect_format(read(0, HEAD_SIZE), read(path.stat().st_size - TAIL_SIZE, TAIL_SIZE))
    assert (fmt.kind, fmt.inner, fmt.compression) == ("flattened", "kdump-compressed", "zlib")
    assert fmt.end_marker is True and not fmt.truncated
    # the guest handed its VMCOREINFO to QEMU (vmcoreinfo device + qemu_fw_cfg)
    release = find_release(read)
    assert release is not None and release.release == ensure_guest().release


def test_oob_dump_live_writes_a_memory_only_dump_oob_recognises(cli: OobRunner, vm_guest: VmGuest) -> None:
    mark = vm_guest.serial_mark()
    result = cli("dump", "guest", "--yes", "--json", "--live", "--dir", str(vm_guest.scratch_dir))
    assert result.code == 0, result.stdout + result.stderr
    record = result.result()
    assert (record["status"], record["format"], record["where"]) == ("ok", "kdump-zlib", "local")
    assert record["live"] is True
    assert record["skipped_formats"] == []
    path = _dump_file(record, vm_guest.scratch_dir)
    _is_qemu_kdump_zlib(path)
    handoff = record["handoff"]
    assert handoff["vmcore"] == str(path) and handoff["release"] == ensure_guest().release
    assert handoff["format"] == "flattened (kdump-compressed, zlib)"
    assert handoff["prepare"] == [f"makedumpfile -R {path}-rebuilt < {path}"]
    assert handoff["crash_command"].endswith(f" {path}-rebuilt")
    assert "to open it in crash:" not in result.stdout + result.stderr  # --json: the data only
    events = cli.audit_events()
    assert events.count("dump.sending") == events.count("dump.written") == 1
    _still_running(vm_guest, mark)
    _remove(path)


def test_oob_crash_hypervisor_dump_pauses_dumps_and_resumes(cli: OobRunner, vm_guest: VmGuest) -> None:
    mark = vm_guest.serial_mark()
    before = set(vm_guest.scratch_dir.iterdir())
    result = cli("crash", "guest", "--yes", "--hypervisor-dump", "--dump-dir", str(vm_guest.scratch_dir))
    assert result.code == 0, result.stdout + result.stderr
    said = result.stdout + result.stderr
    (made,) = set(vm_guest.scratch_dir.iterdir()) - before
    path = made / "vmcore"
    assert "the guest is paused meanwhile" in said and f"dump written: {path} (here, kdump-zlib, " in said
    vmlinux = f"/usr/lib/debug/boot/vmlinux-{ensure_guest().release}"
    assert "to open it in crash:" in said and f"crash: crash {vmlinux} {path}-rebuilt" in said
    _is_qemu_kdump_zlib(path)
    assert "nmi.sending" not in cli.audit_events()  # a dump is no crash
    _still_running(vm_guest, mark)
    _remove(path)


def test_oob_dump_past_its_deadline_is_not_called_aborted(cli: OobRunner, vm_guest: VmGuest) -> None:
    """libvirt cannot abort a memory-only QEMU dump (VIR_ERR_OPERATION_INVALID): at --deadline
    oob asks, is refused, and takes the dump that ends a moment later (a TCG guest's takes
    more than the 1 s minimum) as written; it once said "the job was aborted", exit 5, while
    the hypervisor went on writing."""
    mark = vm_guest.serial_mark()
    result = cli("dump", "guest", "--yes", "--json", "--deadline", "1", "--dir", str(vm_guest.scratch_dir))
    assert result.code == 0, result.stdout + result.stderr
    record = result.result()
    assert (record["status"], record["format"], record["live"]) == ("ok", "kdump-zlib", False)
    path = _dump_file(record, vm_guest.scratch_dir)
    _is_qemu_kdump_zlib(path)
    _still_running(vm_guest, mark)  # paused for the dump, resumed by libvirt
    _remove(path)


def _remove(dump: Path) -> None:
    dump.unlink()
    dump.parent.rmdir()


def _still_running(vm_guest: VmGuest, mark: int) -> None:
    conn, dom = _domain(vm_guest)
    try:
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        conn.close()
    serial = vm_guest.serial_text()[mark:]
    assert CRASH_UP_LINE not in serial and FIRST_UP_LINE not in serial  # neither crashed nor rebooted


@dataclass(frozen=True)
class NmiOutcome:
    before: set[str]
    dump: Path
    #: the serial console from just before the NMI until the guest was armed again
    serial: str
    nmi: Cli
    watch: Cli
    #: a second ``oob nmi`` once the guest was armed again, and where the serial log was then
    again: Cli
    again_mark: int


@pytest.fixture(scope="module")
def nmi_outcome(vm_guest: VmGuest, cli: OobRunner) -> NmiOutcome:
    """One ``oob nmi``, with ``oob watch`` following the dump as it is written on the file://
    target; once the guest is back with kdump armed, a second ``oob nmi`` (the repeat guard's
    to refuse: were it sent, the armed guest would crash and dump again)."""
    before = vm_guest.dump_dirs()
    mark = vm_guest.serial_mark()
    nmi = cli("nmi", "guest", "--yes", "--json")
    assert nmi.code == 0, nmi.stdout + nmi.stderr
    watch = cli("watch", "guest", "--since", nmi.result()["at"], "--timeout", "4m", "--interval", "0.2",
                "--json", timeout=300)  # fmt: skip
    dump = vm_guest.wait_dump(before=before, since=mark)
    vm_guest.wait_saved(since=mark)
    vm_guest.ensure_armed()
    serial = vm_guest.serial_text()[mark:]
    again_mark = vm_guest.serial_mark()
    again = cli("nmi", "guest", "--yes", "--json")
    return NmiOutcome(before, dump, serial, nmi, watch, again, again_mark)


def test_oob_nmi_is_sent_once_through_libvirt(nmi_outcome: NmiOutcome, cli: OobRunner) -> None:
    record = nmi_outcome.nmi.result()
    assert (record["status"], record["via"]) == ("ok", "libvirt")
    assert record["answer"] == "virDomainInjectNMI returned"
    # the hint to follow the dump names the inventory host
    assert f"oob watch guest --since {record['at']}" in nmi_outcome.nmi.stderr
    events = cli.audit_events()
    assert events.index("nmi.confirmed") < events.index("nmi.sending") < events.index("nmi.sent")


def test_a_second_oob_nmi_is_refused_by_the_repeat_guard(nmi_outcome: NmiOutcome, cli: OobRunner) -> None:
    again = nmi_outcome.again
    assert again.code == 7, again.stdout + again.stderr
    record = again.result()
    assert record["status"] == "refused" and "an NMI was already sent to this host" in record["message"]
    assert "--allow-repeat" in record["message"]
    events = cli.audit_events()
    assert events.count("nmi.sending") == events.count("nmi.sent") == 1  # before oob crash below


def test_one_nmi_gives_one_panic_one_dump_and_the_guest_back_armed(
    vm_guest: VmGuest, nmi_outcome: NmiOutcome
) -> None:
    assert vm_guest.dump_dirs() - nmi_outcome.before == {nmi_outcome.dump.name}
    serial = nmi_outcome.serial
    assert serial.count(CRASH_UP_LINE) == 1
    assert serial.count(FIRST_UP_LINE) == 1  # rebooted once, as RHEL's kdump does
    assert serial.index(CRASH_UP_LINE) < serial.index(FIRST_UP_LINE) < serial.index(ARMED_LINE)


def test_the_dump_is_complete_in_rhel_local_layout(nmi_outcome: NmiOutcome) -> None:
    dump = nmi_outcome.dump
    dirname = parse_dir_name(dump.name)
    assert dirname is not None and dirname.family is Family.RHEL and dirname.is_local_form
    files = {p.name: FileInfo(p.name, p.stat().st_size) for p in dump.iterdir()}
    assert set(files) == {"vmcore", "vmcore-dmesg.txt", "kexec-dmesg.log"}
    verdict = assess(dirname, files)
    assert verdict.status == "complete", verdict.reason
    assert verdict.vmcore == ("vmcore",) and verdict.dmesg == "vmcore-dmesg.txt"


def test_the_kernel_log_beside_it_shows_the_unknown_nmi_panic(nmi_outcome: NmiOutcome) -> None:
    kernel_log = (nmi_outcome.dump / "vmcore-dmesg.txt").read_text(errors="replace")
    assert "Uhhuh. NMI received for unknown reason" in kernel_log
    assert "Kernel panic - not syncing: NMI: Not continuing" in kernel_log


def test_the_vmcore_is_the_crashed_kernels_elf_core(nmi_outcome: NmiOutcome) -> None:
    vmcore = nmi_outcome.dump / "vmcore"
    head = _reader(vmcore)(0, HEAD_SIZE)
    e_type, e_machine = struct.unpack_from("<HH", head, 16)
    assert head[4:6] == b"\x02\x01" and (e_type, e_machine) == (ET_CORE, EM_X86_64)  # ELF64 LE
    fmt = detect_format(head)
    assert (fmt.kind, fmt.producer, fmt.marked_incomplete) == ("elf", "kdump", False)
    release = find_release(_reader(vmcore))
    assert release is not None and release.release == ensure_guest().release


def test_oob_watch_follows_it_to_complete(nmi_outcome: NmiOutcome) -> None:
    watch = nmi_outcome.watch
    assert watch.code == 0, watch.stderr
    final = watch.records[-1]
    assert (final["state"], final["directory"], final["vmcore"]) == (
        "complete",
        nmi_outcome.dump.name,
        "vmcore",
    )
    assert final["format"]["kind"] == "elf"
    assert any("Kernel panic - not syncing: NMI: Not continuing" in line for line in final["panic"])


def test_the_serial_console_shows_the_crash_kernel_and_the_panic(nmi_outcome: NmiOutcome) -> None:
    serial = nmi_outcome.serial
    crash_up = next(line for line in serial.splitlines() if CRASH_UP_LINE in line)
    assert "elfcorehdr=" in crash_up
    # relayed by the crash kernel from the crashed kernel's log (see tests/vm/guest.py)
    assert "crashed kernel said: " in serial and "Kernel panic - not syncing: NMI: Not continuing" in serial
    saved = next(line for line in serial.splitlines() if SAVED_LINE in line)
    assert nmi_outcome.dump.name in saved and saved.endswith(", ok)")


@dataclass(frozen=True)
class CrashOutcome:
    before: set[str]
    refused: Cli
    crash: Cli
    #: the serial console from the refused second ``oob nmi`` until the guest was armed again
    serial: str


@pytest.fixture(scope="module")
def crash_outcome(vm_guest: VmGuest, cli: OobRunner, nmi_outcome: NmiOutcome) -> CrashOutcome:
    """``oob crash`` after the NMI above: refused by the repeat guard as it stands, then run
    with --allow-repeat to its complete dump.  --reboot-grace 0: the guest has no network,
    its probe would never say it is back (its reboot is seen on the serial console)."""
    argv = ("crash", "guest", "--yes", "--json", "--reboot-grace", "0")
    refused = cli(*argv)
    before = vm_guest.dump_dirs()
    crash = cli(*argv, "--allow-repeat", timeout=400)
    vm_guest.ensure_armed()
    return CrashOutcome(before, refused, crash, vm_guest.serial_text()[nmi_outcome.again_mark :])


def test_oob_crash_within_the_window_needs_allow_repeat(crash_outcome: CrashOutcome) -> None:
    refused = crash_outcome.refused
    assert refused.code == 7, refused.stdout + refused.stderr
    assert "an NMI was already sent to this host" in refused.result()["message"]


def test_oob_crash_ends_with_the_complete_dump_and_its_cause(
    crash_outcome: CrashOutcome, vm_guest: VmGuest, cli: OobRunner
) -> None:
    crash = crash_outcome.crash
    assert crash.code == 0, crash.stdout + crash.stderr
    result = crash.result()
    assert (result["status"], result["via"]) == ("complete", "libvirt")
    assert result["probe"]["alive"] is False  # the guest looked hung: no --force needed
    dump = result["dump"]
    assert (dump["state"], dump["family"], dump["vmcore"]) == ("complete", "rhel", "vmcore")
    assert dump["format"]["kind"] == "elf"
    new = vm_guest.dump_dirs() - crash_outcome.before
    assert new == {dump["directory"]}
    assert Path(dump["path"]) == vm_guest.dump_dir / dump["directory"]
    assert (Path(dump["path"]) / "vmcore").stat().st_size == dump["size"]
    assert dump["panic_cause"] == "unknown_nmi"
    assert dump["panic"][-1] == "Kernel panic - not syncing: NMI: Not continuing"
    analysis = dump["analysis"]
    assert analysis["kernel"]["release"] == ensure_guest().release
    assert analysis["kernel"]["panic_reason"] == "NMI: Not continuing"
    assert analysis["crash"]["crash_command"].endswith(f"{dump['path']}/vmcore")
    assert crash.records[-1]["event"] == "result" and crash.records[-2]["by_status"] == {"complete": 1}
    events = cli.audit_events()
    assert events.count("nmi.sent") == 2 and events[-1] == "crash.result"  # oob nmi's, then this one's


def test_the_refused_nmi_sent_nothing_and_the_crash_one_dump(crash_outcome: CrashOutcome) -> None:
    """From the refused second ``oob nmi`` (guest armed) until the guest was armed again
    after ``oob crash``: exactly one crash-kernel boot and one saved dump, oob crash's."""
    serial = crash_outcome.serial
    assert serial.count(CRASH_UP_LINE) == 1 and serial.count(SAVED_LINE) == 1
    directory = crash_outcome.crash.result()["dump"]["directory"]
    assert f"{SAVED_LINE} ({directory}, ok)" in serial
