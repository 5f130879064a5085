"""The evaluation hand-off for VMware checkpoints (.vmss suspend, .vmsn snapshot): crash 7.1.0
and later read them; otherwise VMware's vmss2core converts them, given the .vmem beside them
when the memory is a file of its own (docs/ESXI.md)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from oob.analysis.handoff import build_handoff


def checkpoint(path: Path) -> Path:
    # cptdumpheader: the 0xbed2bed2 magic, a version, a group count (crash's vmware_vmss.h)
    path.write_bytes(struct.pack("<III", 0xBED2BED2, 8, 3) + b"\0" * 4096)
    return path


def test_the_vmem_beside_a_snapshot_goes_into_the_vmss2core_command(tmp_path: Path) -> None:
    snapshot = checkpoint(tmp_path / "web01-Snapshot1.vmsn")
    (tmp_path / "web01-Snapshot1.vmem").write_bytes(b"\0" * 4096)
    notes = " ".join(build_handoff(snapshot).notes)
    assert f"vmss2core -N6 {snapshot} {tmp_path / 'web01-Snapshot1.vmem'}" in notes
    assert "-W" in notes  # the Windows form is said too
    alone = checkpoint(tmp_path / "db01.vmss")
    assert f"vmss2core -N6 {alone} (" in " ".join(build_handoff(alone).notes)


def test_oob_analyze_on_a_snapshot_names_crash_and_vmss2core(tmp_path: Path, oob: Any) -> None:
    snapshot = checkpoint(tmp_path / "web01-Snapshot1.vmsn")
    (tmp_path / "web01-Snapshot1.vmem").write_bytes(b"\0" * 4096)
    result = oob("analyze", str(snapshot), "--json")
    record = next(r for r in result.records if r.get("event") == "result")
    assert record["format"]["kind"] == "vmware-vmss"
    assert "crash 7.1.0 and later read it directly" in record["message"]
    assert f"vmss2core -N6 {snapshot} {tmp_path / 'web01-Snapshot1.vmem'}" in record["message"]
