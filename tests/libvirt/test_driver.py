"""LibvirtDriver against libvirt's test driver (in-process): connect, find the guest, power,
identity, the NMI, and the errors an engineer meets (unknown guest, dead daemon, refusal)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from oob.drivers.libvirt import LibvirtDriver
from oob.drivers.libvirt.driver import with_no_tty
from oob.errors import ActionUnsupported, BmcRefused, BmcUnreachable, SafetyRefusal
from oob.model import Host, PowerAction, PowerState
from tests.libvirt.conftest import RUNNING_UUID


def test_finds_the_guest_by_name_and_by_uuid(guest: Callable[..., Host]) -> None:
    for ref in ("vm1", RUNNING_UUID, RUNNING_UUID.upper()):
        with LibvirtDriver(guest(ref)) as driver:
            assert driver.domain.name() == "vm1"
            assert driver.power_state() is PowerState.ON


def test_info_names_the_hypervisor_and_the_guest(guest: Callable[..., Host]) -> None:
    with LibvirtDriver(guest()) as driver:
        info = driver.info()
    assert info.method == "libvirt"
    assert info.vendor == "libvirt TEST"
    assert info.system_id == RUNNING_UUID
    assert info.model == "linux guest, 2 vCPU, 64 MiB"  # the test driver says "linux"
    assert info.nmi.offered is True and info.nmi.source == "libvirt TEST driver"
    assert info.manager is not None and "guest 'vm1'" in info.manager


def test_power_actions_change_the_guest_state(guest: Callable[..., Host]) -> None:
    with LibvirtDriver(guest()) as driver:
        assert driver.power(PowerAction.OFF).sent == ("Destroy",)
        assert driver.power_state() is PowerState.OFF
        with pytest.raises(BmcRefused, match="not running"):
            driver.power(PowerAction.RESET)
        assert driver.power(PowerAction.ON).sent == ("Create",)
        assert driver.power_state() is PowerState.ON
        with pytest.raises(BmcRefused, match="already running"):
            driver.power(PowerAction.ON)
        result = driver.power(PowerAction.CYCLE)
        assert result.sent == ("Destroy", "Create")
        assert result.describe_answer() == "virDomainDestroy+Create returned"
        assert driver.power_state() is PowerState.ON
        driver.power(PowerAction.SHUTDOWN)
        assert driver.power_state() is PowerState.OFF


def test_a_shut_off_guest_reads_off(guest: Callable[..., Host]) -> None:
    with LibvirtDriver(guest("down")) as driver:
        assert driver.power_state() is PowerState.OFF
        assert not driver.is_active()


def test_a_paused_guest_reads_on_and_gets_no_nmi(guest: Callable[..., Host]) -> None:
    with LibvirtDriver(guest("frozen")) as driver:
        driver.domain.suspend()
        assert driver.power_state() is PowerState.ON
        assert any("paused" in w for w in driver.warnings)
        with pytest.raises(SafetyRefusal, match="paused"):
            driver.send_nmi()
        driver.domain.resume()
        assert driver.send_nmi().describe_answer() == "virDomainInjectNMI returned"


def test_an_off_guest_refuses_the_nmi_by_its_code(guest: Callable[..., Host]) -> None:
    with LibvirtDriver(guest()) as driver:
        driver.power(PowerAction.OFF)
        # libvirt answers VIR_ERR_OPERATION_INVALID: refused before acting, so not delivered
        with pytest.raises(BmcRefused, match="VIR_ERR_OPERATION_INVALID"):
            driver.send_nmi()


def test_unknown_guest_is_one_clear_error(guest: Callable[..., Host]) -> None:
    with pytest.raises(BmcUnreachable, match="no guest with name 'nosuch'") as caught:
        LibvirtDriver(guest("nosuch")).open()
    assert caught.value.exit_code == 3
    with pytest.raises(BmcUnreachable, match="no guest with UUID"):
        LibvirtDriver(guest("00000000-0000-0000-0000-000000000000")).open()


def test_dead_daemon_is_one_clear_error(guest: Callable[..., Host], tmp_path: Path) -> None:
    absent = tmp_path / "no-daemon.sock"
    host = guest(uri=f"qemu+unix:///session?socket={absent}")
    with pytest.raises(BmcUnreachable, match="cannot connect to libvirt at .*No such file") as caught:
        LibvirtDriver(host).open()
    assert caught.value.exit_code == 3


def test_refused_connection_is_one_clear_error(guest: Callable[..., Host], tmp_path: Path) -> None:
    path = tmp_path / "nobody-accepts.sock"
    with socket.socket(socket.AF_UNIX) as bound:  # bound, never listening: connect is refused
        bound.bind(str(path))
        with pytest.raises(BmcUnreachable, match="cannot connect to libvirt"):
            LibvirtDriver(guest(uri=f"qemu+unix:///session?socket={path}")).open()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(BmcUnreachable, match="Connection refused|unable to connect"):
        LibvirtDriver(guest(uri=f"qemu+tcp://127.0.0.1:{port}/system")).open()


def test_ssh_uris_never_prompt() -> None:
    assert with_no_tty("qemu+ssh://root@kvm07/system") == "qemu+ssh://root@kvm07/system?no_tty=1"
    assert with_no_tty("qemu+ssh://kvm07/system?keyfile=/k") == "qemu+ssh://kvm07/system?keyfile=/k&no_tty=1"
    assert with_no_tty("qemu+ssh://kvm07/system?no_tty=0") == "qemu+ssh://kvm07/system?no_tty=0"
    assert with_no_tty("qemu:///system") == "qemu:///system"


def test_xen_has_no_inject_nmi_and_says_what_to_do(guest: Callable[..., Host]) -> None:
    class XenConnection:
        def getType(self) -> str:
            return "Xen"

    driver = LibvirtDriver(guest())
    driver._conn = XenConnection()
    with pytest.raises(ActionUnsupported, match="xl trigger DOMAIN nmi") as caught:
        driver.nmi_support()
    assert caught.value.exit_code == 4
    assert driver.nmi_offer().offered is False
