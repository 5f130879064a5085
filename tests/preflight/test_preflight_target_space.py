"""Free space at the inventory's dump.target, as oob sees it: file:// here, ssh:// by df on the server."""

from __future__ import annotations

import shutil
from pathlib import Path

from oob.model import DumpConfig, Host
from oob.preflight.checks import HostView, check_target_space
from oob.preflight.facts import HostFacts, Read
from oob.preflight.targetspace import measure
from oob.ssh import SshOptions

G = 1 << 30


def _view(ram_kib: int) -> HostView:
    facts = HostFacts(uid=0, files={"/proc/meminfo": Read(f"MemTotal: {ram_kib} kB\n", 0)})
    return HostView.of(Host(name="web01", dump=DumpConfig(target="file:///srv/crash")), facts)


def test_file_target_measured_here(tmp_path: Path) -> None:
    where, free = measure(f"file://{tmp_path}")  # type: ignore[misc]
    assert where == str(tmp_path)
    assert abs(free - shutil.disk_usage(tmp_path).free) < 64 * 1024 * 1024
    missing = measure(f"file://{tmp_path}/nothing-here")
    assert isinstance(missing, str) and missing.startswith(f"cannot measure {tmp_path}/nothing-here")


def test_ssh_target_measured_by_df_on_the_server(sshd, ssh_options: SshOptions, tmp_path: Path) -> None:
    where, free = measure(sshd.url(tmp_path), ssh_options)  # type: ignore[misc]
    assert where.endswith(f":{tmp_path}") and abs(free - shutil.disk_usage(tmp_path).free) < 64 * 1024 * 1024
    refused = measure(sshd.url(tmp_path), SshOptions(known_hosts=str(tmp_path / "empty")))
    assert isinstance(refused, str) and "not measured" in refused and "host key unknown" in refused


def test_target_space_check_against_ram() -> None:
    view = _view(16 * 1024 * 1024)  # 16 GiB
    small = check_target_space(view, ("/srv/crash", 8 * G))
    assert (
        small.status == "warn" and "only 8G free at dump.target /srv/crash, less than the 16G" in small.reason
    )
    assert check_target_space(view, ("/srv/crash", 32 * G)).status == "ok"
    assert check_target_space(view, "cannot measure /srv/crash: No such file").status == "warn"
    assert check_target_space(view, None).status == "skip"
