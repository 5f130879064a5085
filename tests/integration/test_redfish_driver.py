"""The Redfish driver against each mock flavour, over real sockets (library level)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oob.drivers.redfish.driver import RedfishDriver
from oob.drivers.tls import TlsPolicy, tls_policy_for
from oob.errors import ActionUnsupported, BmcAuthError, BmcRefused, BmcUnreachable, OutcomeUnknown, TlsError
from oob.inventory import load_inventory
from oob.model import Host, PowerAction, PowerState
from tests.conftest import write_inventory

EXPECTED = {
    # flavour: (vendor label, how NMI support is learnt, offered)
    "ilo5": ("HPE iLO", "inline", True),
    "ilo5-slash": ("HPE iLO", "inline", True),
    "idrac9": ("Dell iDRAC", "inline", True),
    "idrac9-old": ("Dell iDRAC", "inline", True),
    "openbmc": ("OpenBMC", "actioninfo", True),
    "supermicro": ("Supermicro", "actioninfo", True),
    "supermicro-x12": ("Supermicro", "inline", True),
    "xcc": ("Lenovo XCC", "inline", True),
    "ami": ("AMI MegaRAC", "actioninfo", False),
    "cray-ex": ("Redfish", "actioninfo", False),
    "intel": ("Redfish", "inline", True),
    "dmtf": ("Redfish", "inline", True),
}


def _host(fleet: Any, tmp_path: Path, name: str, **bmc_changes: Any) -> Host:
    inventory = write_inventory(fleet, tmp_path / f"{name}.toml", timeout=3)
    host = load_inventory([inventory]).hosts[name]
    if bmc_changes:
        host = dataclasses.replace(host, bmc=dataclasses.replace(host.bmc, **bmc_changes))
    return host


def _driver(host: Host, tls: TlsPolicy | None = None, attempts: int = 1) -> RedfishDriver:
    from oob.drivers.factory import resolve_password

    return RedfishDriver(
        host, resolve_password(host), tls or tls_policy_for(host.bmc), connect_attempts=attempts
    )


@pytest.mark.parametrize("vendor", sorted(EXPECTED))
def test_info_detects_vendor_and_nmi_support(
    vendor: str, fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory([vendor])
    host = _host(fleet, tmp_path, f"{vendor}-1")
    with _driver(host) as driver:
        info = driver.info()
    label, source, offered = EXPECTED[vendor]
    assert (info.vendor, info.nmi.source, info.nmi.offered) == (label, source, offered)
    assert info.power is PowerState.ON
    if vendor != "cray-ex":  # the EX425 capture's manager carries no FirmwareVersion
        assert info.firmware
    assert fleet.bmc(host.name).open_sessions == 0


def test_supermicro_x12_run_together_value_allows_graceful_shutdown(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory(["supermicro-x12"])
    host = _host(fleet, tmp_path, "supermicro-x12-1")
    with _driver(host) as driver:
        assert "GracefulShutdown" in driver.nmi_support().allowed
        result = driver.power(PowerAction.SHUTDOWN)
    assert result.sent == ("GracefulShutdown",)


@pytest.mark.parametrize(("vendor", "sent"), [("idrac9", ("PowerCycle",)), ("ilo5", ("ForceOff", "On"))])
def test_cycle_uses_power_cycle_or_off_then_on(
    vendor: str, sent: tuple[str, ...], fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory([vendor])
    host = _host(fleet, tmp_path, f"{vendor}-1")
    with _driver(host) as driver:
        assert driver.power(PowerAction.CYCLE).sent == sent
        assert driver.power_state() is PowerState.ON
    assert fleet.bmc(host.name).open_sessions == 0


def test_power_off_then_on(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["openbmc"])
    host = _host(fleet, tmp_path, "openbmc-1")
    with _driver(host) as driver:
        assert driver.power(PowerAction.OFF).sent == ("ForceOff",)
        assert driver.power_state() is PowerState.OFF
        assert fleet.bmc(host.name).power == "Off"
        driver.power(PowerAction.ON)
        assert driver.power_state() is PowerState.ON


def test_server_error_on_the_nmi_is_unknown_and_sent_once(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    host = _host(fleet, tmp_path, "idrac9-1")
    with _driver(host, attempts=3) as driver:
        driver.nmi_support()
        before = fleet.bmc(host.name).requests
        fleet.set_faults(host.name, http_status=500)
        with pytest.raises(OutcomeUnknown) as caught:
            driver.send_nmi()
        assert fleet.bmc(host.name).requests == before + 1
    assert caught.value.exit_code == 6
    assert caught.value.bmc_message
    assert fleet.bmc(host.name).open_sessions == 0


def test_bad_request_on_the_nmi_is_refused(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["xcc"])
    host = _host(fleet, tmp_path, "xcc-1")
    with _driver(host) as driver:
        driver.nmi_support()
        fleet.set_faults(host.name, http_status=400)
        with pytest.raises(BmcRefused) as caught:
            driver.send_nmi()
    assert caught.value.exit_code == 4
    assert caught.value.bmc_message
    assert fleet.bmc(host.name).nmi_count == 0


def test_refused_connection_is_retried_then_reported(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5"])
    host = _host(fleet, tmp_path, "ilo5-1")
    fleet.set_faults(host.name, down=True)
    retries: list[str] = []
    from oob.drivers.factory import resolve_password

    driver = RedfishDriver(
        host, resolve_password(host), tls_policy_for(host.bmc), connect_attempts=2, on_retry=retries.append
    )
    with pytest.raises(BmcUnreachable) as caught:
        driver.open()
    assert caught.value.exit_code == 3
    assert len(retries) == 1 and "nothing was sent" in retries[0]


def test_wrong_credentials_and_session_limit(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["idrac9", "ilo5"])
    fleet.set_faults("idrac9-1", auth_failure=True)
    with pytest.raises(BmcAuthError) as caught:
        _driver(_host(fleet, tmp_path, "idrac9-1")).open()
    assert caught.value.exit_code == 3
    fleet.set_faults("ilo5-1", session_limit=0)
    with pytest.raises(BmcAuthError) as limited:
        _driver(_host(fleet, tmp_path, "ilo5-1")).open()
    assert limited.value.bmc_message
    assert fleet.bmc("ilo5-1").open_sessions == 0


def test_wrong_fingerprint_is_refused_before_any_request(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    host = _host(fleet, tmp_path, "openbmc-1", fingerprint="00" * 32, ca_file=None)
    with pytest.raises(TlsError) as caught:
        _driver(host).open()
    assert "fingerprint" in caught.value.message
    assert fleet.bmc(host.name).requests == 0


def test_right_fingerprint_is_enough(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["openbmc"])
    bmc = fleet.bmc("openbmc-1")
    host = _host(fleet, tmp_path, "openbmc-1", fingerprint=bmc.fingerprint, ca_file=None)
    with _driver(host) as driver:
        assert driver.power_state() is PowerState.ON
        driver.send_nmi()  # an action opens a connection of its own: pinned too
        connections = driver._transport.connections
    assert len(connections) >= 2
    assert all(c.pinned == host.bmc.fingerprint.lower().replace(":", "") for c in connections)  # type: ignore[union-attr]


def test_environment_ca_bundle_does_not_change_trust(
    fleet_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = fleet_factory(["dmtf"])
    # the env points at the fleet's CA, the inventory says "system bundle": must fail
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fleet.ca_file))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(fleet.ca_file))
    host = _host(fleet, tmp_path, "dmtf-1", ca_file=None)
    with pytest.raises(TlsError):
        _driver(host).open()
    assert fleet.bmc("dmtf-1").requests == 0


def test_insecure_works_and_warns_naming_the_host(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["intel"])
    host = _host(fleet, tmp_path, "intel-1", ca_file=None, verify=False)
    with _driver(host) as driver:
        assert driver.power_state() is PowerState.ON
        assert any("intel-1" in w and "NOT verified" in w for w in driver.warnings)


def test_basic_auth_without_session_service(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["dmtf"])
    fleet.set_faults("dmtf-1", no_session_service=True)
    host = _host(fleet, tmp_path, "dmtf-1")
    with _driver(host) as driver:
        assert driver._transport.auth_method == "basic"
        driver.send_nmi()
    assert fleet.bmc("dmtf-1").nmi_count == 1
    assert fleet.bmc("dmtf-1").open_sessions == 0


def test_interrupt_inside_the_session_still_logs_out(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    host = _host(fleet, tmp_path, "idrac9-1")
    with pytest.raises(KeyboardInterrupt), _driver(host) as driver:
        driver.power_state()
        assert fleet.bmc(host.name).open_sessions == 1
        raise KeyboardInterrupt
    assert fleet.bmc(host.name).open_sessions == 0


def test_cray_ex_nmi_unsupported(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["cray-ex"])
    host = _host(fleet, tmp_path, "cray-ex-1")
    with _driver(host) as driver, pytest.raises(ActionUnsupported, match="NMI not supported by this BMC"):
        driver.send_nmi()
    assert fleet.bmc(host.name).nmi_count == 0


def test_shared_ssl_contexts_never_weaken_a_check(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    from oob.drivers.redfish.wire import shared_context

    ours, theirs = fleet_factory(["dmtf"]), fleet_factory(["intel"])  # two fleets, two CAs
    trusted = _host(ours, tmp_path, "dmtf-1")
    stranger = _host(theirs, tmp_path, "intel-1", ca_file=trusted.bmc.ca_file)  # signed by another CA
    with _driver(trusted) as driver:
        assert driver.power_state() is PowerState.ON
    with pytest.raises(TlsError):
        _driver(stranger).open()
    assert theirs.bmc("intel-1").requests == 0
    with _driver(stranger, TlsPolicy("insecure")) as driver:  # a CERT_NONE context, used in between
        assert driver.power_state() is PowerState.ON
    served = theirs.bmc("intel-1").requests
    with pytest.raises(TlsError):  # the CA's context was not loosened by it
        _driver(stranger).open()
    assert theirs.bmc("intel-1").requests == served
    with _driver(trusted) as driver:
        assert driver.power_state() is PowerState.ON
    assert shared_context.cache_info().hits > 0  # connections of one trust shared one context
