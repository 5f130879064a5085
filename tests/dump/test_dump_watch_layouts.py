"""Every layout, on a file:// target and an ssh:// target (real sshd on loopback), ends in
``complete`` with the right directory, size and format, recognised by ``auto``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from mocks.host import ManualClock
from mocks.kdump import LAYOUTS, KdumpWriter
from mocks.sshd import SshServer
from oob.dump.watcher import DumpState
from oob.ssh import SshOptions

from .conftest import fast_spec, make_host

FORMAT = {"kdump-compressed": "kdump-compressed", "flattened": "flattened", "elf": "elf"}
OLD = datetime(2023, 1, 2, 3, 4, 5)


def write_old_dump(root: Path, layout: str, identity: str | None) -> str:
    """A complete dump from an earlier crash, present before the baseline."""
    writer = KdumpWriter(root, fast_spec(layout, identity=identity, crash_time=OLD), clock=ManualClock())
    list(writer.steps())
    assert writer.directory is not None
    return writer.directory.name


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_completes_on_file_and_ssh_targets(
    layout: str, tmp_path: Path, sshd: SshServer, ssh_options: SshOptions, run_watch
) -> None:
    file_root, ssh_root = tmp_path / "nfs", tmp_path / "dumpsrv"
    file_root.mkdir()
    ssh_root.mkdir()
    ssh_identity = None if layout == "rhel-raw" else "192.0.2.22"
    old = {write_old_dump(file_root, layout, None), write_old_dump(ssh_root, layout, ssh_identity)}
    hosts = [
        make_host("local01", f"file://{file_root}", address="192.0.2.21"),
        make_host("remote02", sshd.url(ssh_root), address="192.0.2.22"),
    ]
    # written over about a third of a second (not fast_spec's 50 ms): the watcher must see the
    # dump growing to report progress, even on a loaded machine where its polls come late (a raw
    # target has no marker of its end: it is left at fast_spec's pace, which its rule is tuned to)
    pace = {} if layout == "rhel-raw" else {"rate": 3e5}
    writers = [
        KdumpWriter(file_root, fast_spec(layout, hostname="local01", **pace)),
        KdumpWriter(ssh_root, fast_spec(layout, hostname="remote02", identity=ssh_identity, seed=1, **pace)),
    ]
    run = run_watch(hosts, writers, ssh=ssh_options)
    expected_kind = "gzip" if layout == "debian-compressed" else FORMAT[LAYOUTS[layout].vmcore_format]
    for host, writer in zip(("local01", "remote02"), writers, strict=True):
        result = run.result(host)
        assert result.state is DumpState.COMPLETE, (layout, result.message, run.kinds(host))
        assert writer.directory is not None and writer.final_path is not None
        assert result.directory == writer.directory.name
        assert result.path == str(writer.directory)
        assert result.vmcore == writer.final_path.name
        assert result.size == writer.final_path.stat().st_size
        assert result.format is not None and result.format.kind == expected_kind
        assert not result.format.truncated
        assert result.family == LAYOUTS[layout].family
        if layout != "rhel-raw":  # a raw target is saved without the kernel log
            assert result.panic.cause == "unknown_nmi"
            assert result.panic.panic_line == "Kernel panic - not syncing: NMI: Not continuing"
        kinds = run.kinds(host)
        assert kinds[0] == "dump_dir_appeared" and kinds[-1] == "dump_complete"
        assert "dump_progress" in kinds
        # the old dump of the same layout, present before the baseline, is never reported
        assert not any(e.data.get("directory") in old for e in run.events)
    assert run.connections == 1
    assert sshd.url(ssh_root).startswith("ssh://")


@pytest.mark.parametrize(
    ("layout", "family"),
    [("rhel-ssh", "rhel"), ("suse", "suse"), ("suse-old", "suse"), ("debian-compressed", "debian")],
)
def test_explicit_layout_also_works(tmp_path: Path, run_watch, layout: str, family: str) -> None:
    host = make_host("web01", f"file://{tmp_path}", address="192.0.2.11", layout=family)
    run = run_watch([host], [KdumpWriter(tmp_path, fast_spec(layout, identity="192.0.2.11"))])
    assert run.result("web01").state is DumpState.COMPLETE


def test_a_layout_that_does_not_fit_is_not_taken(tmp_path: Path, run_watch) -> None:
    from dataclasses import replace

    from .conftest import FAST

    host = make_host("web01", f"file://{tmp_path}", address="192.0.2.11", layout="debian")
    run = run_watch(
        [host],
        [KdumpWriter(tmp_path, fast_spec("rhel-nfs", identity="192.0.2.11"))],
        options=replace(FAST, timeout=0.6),
    )
    result = run.result("web01")
    assert result.state is DumpState.TIMEOUT
    assert "no new dump directory" in result.message
