"""The ``fence_kdump`` readiness check: with ``dump.fence_kdump``, RHEL's kdump.conf must name
this machine in ``fence_kdump_nodes`` so that its crash kernel tells oob "kdump has started"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oob.model import DumpConfig, Host
from oob.preflight import kdumpconf
from oob.preflight.checks import HostView, check_fence_kdump, names_this_machine
from oob.preflight.facts import FACTS_SCRIPT, HostFacts, Read, parse_facts
from oob.preflight.hostfacts import is_local_address, this_machine
from tests.conftest import CliResult, write_inventory

RHEL = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\n'
DEBIAN = "ID=debian\n"
HOST = Host("db01", address="192.0.2.11", dump=DumpConfig(fence_kdump=True))
ME = ("192.0.2.50", "oob01.example.com")


def view(
    conf: str | Read, *, os_release: str = RHEL, host: Host = HOST, me: tuple[str, ...] = ME
) -> HostView:
    read = conf if isinstance(conf, Read) else Read(conf, 0)
    facts = HostFacts(uid=0, files={"/etc/os-release": Read(os_release, 0), "/etc/kdump.conf": read})
    return replace(HostView.of(host, facts), this_machine=me)


def test_nodes_naming_this_machine_pass() -> None:
    result = check_fence_kdump(view("path /var/crash\nfence_kdump_nodes 192.0.2.49 192.0.2.50\n"))
    assert result.status == "ok" and "(192.0.2.50), port 7410" in result.reason
    assert result.data["fence_kdump"] == {"nodes": ["192.0.2.49", "192.0.2.50"], "port": 7410, "args": ""}


def test_a_name_counts_short_or_qualified_and_a_custom_port_is_said() -> None:
    conf = "fence_kdump_args -p 7411 -f auto -c 0 -i 10\nfence_kdump_nodes\tOOB01\n"
    result = check_fence_kdump(view(conf))
    assert result.status == "ok" and "(OOB01), port 7411 (listen with --fence-kdump 7411)" in result.reason


def test_no_nodes_is_a_warning_with_the_fix() -> None:
    result = check_fence_kdump(view("path /var/crash\n#fence_kdump_nodes 192.0.2.50\n"))
    assert result.status == "warn"
    assert result.reason == (
        "no fence_kdump_nodes in /etc/kdump.conf: the crash kernel tells no one it started; "
        'fix: add "fence_kdump_nodes 192.0.2.50" to it, then run kdumpctl restart'
    )


def test_nodes_without_this_machine_are_a_warning_naming_both() -> None:
    result = check_fence_kdump(view("fence_kdump_nodes node2 192.0.2.60\n"))
    assert result.status == "warn" and "\n" not in result.reason
    assert result.reason.startswith(
        "fence_kdump_nodes node2 192.0.2.60 does not name this machine (192.0.2.50, oob01.example.com); "
        "fix: add 192.0.2.50 to that line"
    )


def test_an_unreadable_port_is_a_warning() -> None:
    result = check_fence_kdump(view("fence_kdump_args -p seventy\nfence_kdump_nodes 192.0.2.50\n"))
    assert result.status == "warn" and "no port oob can read" in result.reason


def test_through_a_jump_host_this_machine_is_unknown() -> None:
    result = check_fence_kdump(view("fence_kdump_nodes 192.0.2.50\n", me=()))
    assert result.status == "warn" and "cannot tell whether that is this machine" in result.reason


def test_not_asked_for_or_not_rhel_is_skipped() -> None:
    plain = replace(HOST, dump=DumpConfig())
    assert check_fence_kdump(view("", host=plain)).status == "skip"
    result = check_fence_kdump(view("", os_release=DEBIAN))
    assert result.status == "skip" and result.reason.startswith("not applicable: ")


def test_a_kdump_conf_only_root_reads_says_so() -> None:
    result = check_fence_kdump(view(Read("cat: /etc/kdump.conf: Permission denied", 1)))
    assert result.status == "warn" and result.needs_root


@pytest.mark.parametrize(
    ("args", "port"),
    [
        ("", 7410),
        ("-p 7500", 7500),
        ("--ipport=7501 -c 0", 7501),
        ("-p7502", 7502),
        ("-p 0", None),
        ("-p", None),
    ],
)
def test_fence_kdump_args_port(args: str, port: int | None) -> None:
    assert kdumpconf.fence_kdump_config(f"fence_kdump_args {args}\n").port == port


def test_matching_names_and_addresses() -> None:
    assert names_this_machine("::ffff:192.0.2.50", ME)
    assert names_this_machine("oob01", ME) and names_this_machine("OOB01.example.com.", ME)
    assert not names_this_machine("192.0.2.5", ME) and not names_this_machine("oob02", ME)


def test_this_machine_is_the_ssh_client_address_only_when_it_is_local() -> None:
    assert is_local_address("127.0.0.1") and not is_local_address("192.0.2.50")
    assert this_machine("127.0.0.1")[0] == "127.0.0.1"
    assert "192.0.2.50" not in this_machine("192.0.2.50")  # a jump host's address, not ours


def test_the_facts_script_reads_ssh_connection() -> None:
    assert "SSH_CONNECTION" in FACTS_SCRIPT
    facts = parse_facts("@@oob env SSH_CONNECTION\n127.0.0.1 40000 127.0.1.1 22\n\n@@oob rc 0\n")
    assert facts.ssh_client() == "127.0.0.1"
    assert parse_facts("@@oob env SSH_CONNECTION\n\n\n@@oob rc 0\n").ssh_client() is None


# -- end to end: oob preflight against simulated hosts over a real sshd on loopback -------------------


def test_oob_preflight_checks_fence_kdump_nodes(tmp_path: Path, oob: Callable[..., CliResult]) -> None:
    from mocks.fleet import Fleet

    with Fleet.start(
        vendors=["ilo5", "xcc", "idrac9"],
        workdir=tmp_path / "fleet",
        dump_root=tmp_path / "crash",
        layouts=["rhel", "rhel", "suse"],
        scale=0.02,
        host_ssh=True,
        fence_kdump="127.0.0.1:7410",  # oob connects from 127.0.0.1: this machine
    ) as fleet:
        assert fleet.host_ssh is not None
        fleet.configure_host("xcc-1", fence_kdump="127.0.0.5:7410")  # another machine
        fleet.host_ssh.render()
        inventory = write_inventory(fleet, tmp_path / "inv.toml")  # dump.fence_kdump = true for each
        ssh = ("--known-hosts", str(fleet.host_ssh.known_hosts), "--ssh-key", str(fleet.host_ssh.client_key))
        result = oob("preflight", "all", "-i", str(inventory), "--json", *ssh)

    def check(host: str) -> dict[str, Any]:
        record = next(r for r in result.records if r.get("event") == "readiness" and r["host"] == host)
        return next(c for c in record["checks"] if c["check"] == "fence_kdump")

    assert check("ilo5-1")["status"] == "ok", result.stdout + result.stderr
    assert check("ilo5-1")["reason"] == "fence_kdump_nodes names this machine (127.0.0.1), port 7410"
    assert check("xcc-1")["status"] == "warn"
    assert check("xcc-1")["reason"].startswith(
        "fence_kdump_nodes 127.0.0.5 does not name this machine (127.0.0.1"
    )
    assert check("idrac9-1")["status"] == "skip" and "not applicable" in check("idrac9-1")["reason"]
