"""One dump server holding the dumps of 20 hosts: each dump is attributed to its own host by
the IPv4 address, IPv6 address or host name in its directory name."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from mocks.host import ManualClock
from mocks.kdump import KdumpWriter
from mocks.sshd import SshServer
from oob.dump.watcher import DumpState
from oob.ssh import SshOptions

from .conftest import fast_spec, make_host

#: (host name, inventory address, aliases, writer layout, identity kdump puts in the name)
FLEET = [
    *[(f"rhel{i:02d}", f"192.0.2.{10 + i}", (), "rhel-ssh", f"192.0.2.{10 + i}") for i in range(5)],
    # IPv6: the inventory writes it expanded, kdump.sh compressed
    *[(f"v6-{i}", f"fd00:0:0:0::{i + 1:x}", (), "rhel-nfs", f"fd00::{i + 1:x}") for i in range(4)],
    # SUSE puts the host name; the inventory knows the host by its short name
    *[(f"sles{i}", f"198.51.100.{i + 1}", (), "suse-ssh", f"sles{i}.example.com") for i in range(4)],
    *[(f"deb{i}", f"203.0.113.{i + 1}", (), "debian-ssh", f"203.0.113.{i + 1}") for i in range(3)],
    # Debian with HOSTTAG=hostname, and hosts whose dump goes out of a second interface
    (
        "ubuntu-a",
        "203.0.113.50",
        ("ubuntu-a.lab.example.net",),
        "debian-compressed",
        "ubuntu-a.lab.example.net",
    ),
    ("ubuntu-b", "203.0.113.51", (), "debian", "UBUNTU-B"),
    ("oldsuse", "192.0.2.90", ("198.51.100.90",), "suse-old-ssh", "198.51.100.90"),
    ("rhel-2nic", "192.0.2.91", ("198.51.100.91",), "rhel-ssh", "198.51.100.91"),
]


def populate_old(root: Path) -> set[str]:
    """What the server held before: old dumps of some of these hosts, of other hosts, and
    Debian's bookkeeping files."""
    old = set()
    for _, _, _, layout, identity in [*FLEET[::3], ("x", "", (), "rhel-ssh", "192.0.2.200")]:
        writer = KdumpWriter(
            root,
            fast_spec(layout, identity=identity, crash_time=datetime(2023, 6, 1, 2, 3, 4)),
            clock=ManualClock(),
        )
        list(writer.steps())
        old.add(writer.directory.name)
    (root / "kexec_cmd").write_text("")
    (root / "kdump_lock").write_text("")
    return old


@pytest.mark.parametrize("kind", ["ssh", "file"])
def test_twenty_hosts_on_one_server(
    kind: str, tmp_path: Path, sshd: SshServer, ssh_options: SshOptions, run_watch
) -> None:
    assert len(FLEET) == 20
    root = tmp_path / "var-crash"
    root.mkdir()
    old = populate_old(root)
    url = sshd.url(root) if kind == "ssh" else f"file://{root}"
    hosts = [make_host(name, url, address=address, aliases=aliases) for name, address, aliases, _, _ in FLEET]
    writers = {
        name: KdumpWriter(root, fast_spec(layout, identity=identity, hostname=name, seed=i))
        for i, (name, _, _, layout, identity) in enumerate(FLEET)
    }

    def foreign_dump() -> None:
        # a host nobody watches crashes at the same time
        KdumpWriter(root, fast_spec("rhel-ssh", identity="192.0.2.201"), clock=ManualClock()).run()

    run = run_watch(hosts, list(writers.values()), ssh=ssh_options, after_baseline=foreign_dump)
    for name, _, _, _, identity in FLEET:
        result = run.result(name)
        writer = writers[name]
        assert result.state is DumpState.COMPLETE, (name, result.message)
        assert result.directory == writer.directory.name
        assert result.directory.lower().startswith(identity.lower())
        assert result.size == writer.final_path.stat().st_size
        assert result.format is not None and result.format.nodename == name
    reported = {e.data.get("directory") for e in run.events if e.host}
    assert not reported & old
    unattributed = [e for e in run.events if e.kind == "dump_unattributed"]
    assert [e.data["identity"] for e in unattributed] == ["192.0.2.201"]
    if kind == "ssh":
        assert run.connections == 1
