"""The ESXi driver against the fake ``vmdumper``/``vim-cmd`` on a real sshd: finding the VM
by its display name exactly, power, identity, and hostile listings bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from oob.drivers.esxi import EsxiDriver
from oob.drivers.esxi.remote import LISTING_LIMIT
from oob.errors import BmcProtocolError, BmcRefused, OutcomeUnknown, SafetyRefusal, TlsError, UsageError
from oob.model import BmcConfig, Host, PowerAction, PowerState, SshConfig
from tests.esxi.conftest import EsxiHost
from tests.esxi.fake_esxi import vm


def guest(domain: str, *, address: str = "esxi01", timeout: float = 10) -> Host:
    return Host(name="guest", bmc=BmcConfig(kind="esxi", address=address, domain=domain, timeout=timeout))


def test_nmi_goes_to_the_world_id_of_the_named_vm(esxi: EsxiHost) -> None:
    esxi.fake.reset([vm("db01", 1), vm("web01", 2), vm("web01-old", 3, power="off")])
    with EsxiDriver(guest("web01")) as driver:
        assert driver.power_state() is PowerState.ON
        result = driver.send_nmi()
    wid = vm("web01", 2)["wid"]
    assert esxi.fake.nmis() == [wid]
    assert result.sent == (f"vmdumper {wid} nmi",) and result.status == 0 and result.method == "esxi"


def test_the_world_id_is_read_again_right_before_sending(esxi: EsxiHost) -> None:
    with EsxiDriver(guest("web01")) as driver:
        assert driver.power_state() is PowerState.ON
        # the VM restarts between the plan and the NMI: it runs under a new world ID
        state = esxi.fake.state()
        state["vms"][0]["wid"] += 555
        esxi.fake.write(state)
        driver.send_nmi()
    assert esxi.fake.nmis() == [vm("web01", 1)["wid"] + 555]


def test_a_vm_that_is_off_gets_no_nmi(esxi: EsxiHost) -> None:
    esxi.fake.reset([vm("web01", 1, power="off")])
    with EsxiDriver(guest("web01")) as driver:
        assert driver.power_state() is PowerState.OFF
        with pytest.raises(SafetyRefusal, match="not running .* not sending"):
            driver.send_nmi()
    assert esxi.fake.nmis() == []


def test_an_unknown_vm_is_a_clear_error(esxi: EsxiHost) -> None:
    with EsxiDriver(guest("web02")) as driver, pytest.raises(UsageError, match="no VM named 'web02'"):
        driver.power_state()


def test_two_vms_with_the_name_are_refused_naming_both(esxi: EsxiHost) -> None:
    esxi.fake.reset([vm("web01", 1, directory="web01"), vm("web01", 7, directory="web01_1")])
    with EsxiDriver(guest("web01")) as driver:
        with pytest.raises(SafetyRefusal) as registered:
            driver.power_state()
        with pytest.raises(SafetyRefusal) as running:
            driver.send_nmi()
    assert "[datastore1] web01/web01.vmx" in registered.value.message
    assert "[datastore1] web01_1/web01_1.vmx" in registered.value.message
    assert "/web01/web01.vmx" in running.value.message and "/web01_1/web01_1.vmx" in running.value.message
    assert esxi.fake.nmis() == []


def test_names_are_compared_exactly(esxi: EsxiHost) -> None:
    esxi.fake.reset([vm("Web01", 1), vm("web01x", 2), vm("web0", 3, power="off")])
    with EsxiDriver(guest("web01")) as driver, pytest.raises(UsageError, match="no VM named"):
        driver.power_state()
    with EsxiDriver(guest("web01")) as driver, pytest.raises(SafetyRefusal, match="not running"):
        driver.send_nmi()
    assert esxi.fake.nmis() == []


def test_spaces_around_a_name_make_it_another_vm_for_the_nmi(esxi: EsxiHost) -> None:
    # vmdumper quotes the name: "web01 " is not "web01"; getallvms prints names in columns,
    # where the spaces vanish: two VMs read as one name there, which is refused
    esxi.fake.reset([vm("web01 ", 1), vm(" web01", 2)])
    with EsxiDriver(guest("web01")) as driver:
        with pytest.raises(SafetyRefusal, match="not running"):
            driver.send_nmi()
        with pytest.raises(SafetyRefusal, match="2 VMs on ESXi host esxi01 are named 'web01'"):
            driver.power_state()
    assert esxi.fake.nmis() == []


@pytest.mark.parametrize(
    "name", ["x; reboot", "$(touch /tmp/oob-pwned)", "a'b\"c`d` | e & f > g", "web 01 *"]
)
def test_shell_metacharacters_in_a_name_are_only_compared(esxi: EsxiHost, tmp_path: Path, name: str) -> None:
    esxi.fake.reset([vm("web01", 1), vm(name, 2)])
    with EsxiDriver(guest(name)) as driver:
        assert driver.power_state() is PowerState.ON
        result = driver.send_nmi()
    assert esxi.fake.nmis() == [vm(name, 2)["wid"]]
    assert result.sent == (f"vmdumper {vm(name, 2)['wid']} nmi",)
    assert not Path("/tmp/oob-pwned").exists()


def test_a_name_crafted_to_look_like_another_vm_is_not_read_as_it(esxi: EsxiHost) -> None:
    # the display name holds the separators of the line itself: read two ways, so no VM
    crafted = 'evil" uuid="" displayName="web01'
    esxi.fake.reset([vm(crafted, 5)])
    with EsxiDriver(guest("web01")) as driver:
        # refused while planning already, and again at sending
        with pytest.raises(SafetyRefusal, match="one way only"):
            driver.nmi_support()
        with pytest.raises(SafetyRefusal, match="one way only"):
            driver.send_nmi()
    assert esxi.fake.nmis() == []


def test_power_actions_and_their_refusal(esxi: EsxiHost) -> None:
    with EsxiDriver(guest("web01")) as driver:
        off = driver.power(PowerAction.OFF)
        assert off.sent == ("vim-cmd vmsvc/power.off 1",)
        assert driver.power_state() is PowerState.OFF
        with pytest.raises(BmcRefused, match="not in a state for power off"):
            driver.power(PowerAction.OFF)
        on = driver.power(PowerAction.ON)
        assert on.sent == ("vim-cmd vmsvc/power.on 1",)
        cycle = driver.power(PowerAction.CYCLE)
        assert cycle.sent == ("vim-cmd vmsvc/power.off 1", "vim-cmd vmsvc/power.on 1")
    assert esxi.fake.power_log() == ["off 1", "on 1", "off 1", "on 1"]


def test_info_names_the_host_the_vm_and_its_world(esxi: EsxiHost) -> None:
    with EsxiDriver(guest("web01")) as driver:
        info = driver.info()
    assert (info.vendor, info.firmware, info.power, info.system_id) == (
        "VMware",
        "VMware ESXi 8.0.2 build-22380479",
        PowerState.ON,
        "vmid 1",
    )
    assert info.nmi.offered is True and f"world ID {vm('web01', 1)['wid']}" in (info.manager or "")


def test_escape_sequences_in_a_listing_never_reach_a_message(esxi: EsxiHost) -> None:
    # the refusal names both VMs' files, which the host chose: shown escaped, never raw
    esxi.fake.reset([vm("web01", 1, directory="d\x1b[2J"), vm("web01", 2, directory="e\x1b]0;owned\x07")])
    with EsxiDriver(guest("web01")) as driver:
        with pytest.raises(SafetyRefusal) as registered:
            driver.power_state()
        with pytest.raises(SafetyRefusal) as running:
            driver.send_nmi()
    for refusal in (registered.value, running.value):
        text = str(refusal)
        assert "\x1b" not in text and "\x07" not in text
        assert "d\\x1b[2J" in text and "e\\x1b]0;owned\\x07" in text


def test_a_ten_megabyte_listing_is_cut_and_refused(esxi: EsxiHost, tmp_path: Path) -> None:
    big = tmp_path / "listing"
    line = (
        b'wid=1 pid=-1 cfgFile="/vmfs/volumes/x/a.vmx" uuid="56" displayName="'
        + b"A" * 200
        + b'" vmxCartelID=2\n'
    )
    big.write_bytes(line * (10 * 1024 * 1024 // len(line)))
    esxi.fake.reset(listing_file=str(big))
    with (
        EsxiDriver(guest("web01")) as driver,
        pytest.raises(BmcProtocolError, match=f"more than {LISTING_LIMIT // 1024} KiB"),
    ):
        driver.send_nmi()
    assert esxi.fake.nmis() == []


def test_long_and_unreadable_lines_are_skipped_with_a_warning(esxi: EsxiHost, tmp_path: Path) -> None:
    listing = tmp_path / "listing"
    good = vm("web01", 1)
    listing.write_bytes(
        b"\x1b[2J garbage line\n"
        + b"wid=9 "
        + b"x" * 20000
        + b"\n"
        + (
            f'wid={good["wid"]} pid=-1 cfgFile="{good["cfg"]}" uuid="56 4d" displayName="web01" '
            f"vmxCartelID={good['cartel']}\n"
        ).encode()
    )
    esxi.fake.reset(listing_file=str(listing))
    with EsxiDriver(guest("web01")) as driver:
        driver.send_nmi()
        assert any("2 line(s) not in the documented form" in w for w in driver.warnings)
    assert esxi.fake.nmis() == [good["wid"]]


def test_a_failing_nmi_exit_status_is_unknown_not_retried(esxi: EsxiHost) -> None:
    esxi.fake.reset(nmi_exit=3)
    with EsxiDriver(guest("web01")) as driver, pytest.raises(OutcomeUnknown, match="may have been delivered"):
        driver.send_nmi()
    assert len(esxi.fake.nmis()) == 1


def test_the_connection_dropped_after_the_exec_is_unknown(esxi: EsxiHost) -> None:
    esxi.fake.reset(nmi_then="drop")
    with EsxiDriver(guest("web01")) as driver, pytest.raises(OutcomeUnknown, match="was sent but"):
        driver.send_nmi()
    assert len(esxi.fake.nmis()) == 1


def test_no_answer_after_the_exec_is_unknown(esxi: EsxiHost) -> None:
    esxi.fake.reset(nmi_then="sleep")
    with (
        EsxiDriver(guest("web01", timeout=1)) as driver,
        pytest.raises(OutcomeUnknown, match="no answer within 1 s"),
    ):
        driver.send_nmi()
    assert len(esxi.fake.nmis()) == 1


def test_a_changed_host_key_is_refused_before_anything_is_sent(
    esxi: EsxiHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "known_hosts"
    # another server's key recorded for this address: a man in the middle, or a reinstall
    other.write_text(
        f"[{esxi.sshd.host}]:{esxi.sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0j2bEvMSl4yBqvMnYOtT4IqwaBUHbdvxJd4W9UjqP\n"
    )
    config = tmp_path / "ssh_config"
    config.write_text(esxi.ssh_config.read_text().replace(str(esxi.sshd.known_hosts), str(other)))
    monkeypatch.setenv("OOB_SSH_CONFIG", str(config))
    with pytest.raises(TlsError, match="host key has CHANGED"):
        EsxiDriver(guest("web01")).open()
    assert esxi.fake.nmis() == []


def test_an_address_with_user_and_port_and_the_inventorys_known_hosts(
    esxi: EsxiHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {esxi.sshd.host}\n    IdentityFile {esxi.sshd.client_key}\n    IdentitiesOnly yes\n"
    )
    monkeypatch.setenv("OOB_SSH_CONFIG", str(config))
    host = Host(
        name="guest",
        bmc=BmcConfig(
            kind="esxi", address=f"ssh://{esxi.sshd.user}@{esxi.sshd.host}:{esxi.sshd.port}", domain="web01"
        ),
        ssh=SshConfig(known_hosts=str(esxi.sshd.known_hosts)),
    )
    with EsxiDriver(host) as driver:
        assert driver.power_state() is PowerState.ON


def test_an_annotation_crafted_as_a_vm_line_cannot_lend_another_vms_vmid(esxi: EsxiHost) -> None:
    # getallvms prints annotations as they are, over several lines: this one forges a line
    # "web01 is vmid 3", where vmid 3 is app01
    forged = "note\n3      web01                [datastore1] web01/web01.vmx   rhel9_64Guest     vmx-19"
    esxi.fake.reset([vm("db01", 2, annotation=forged), vm("app01", 3)])
    with EsxiDriver(guest("web01")) as driver:
        with pytest.raises(BmcProtocolError, match="lists vmid 3 more than once"):
            driver.power(PowerAction.OFF)
    assert esxi.fake.power_log() == []
