"""The fake BMC itself (oob.drivers.fake) and the injection point it is used through
(oob.drivers.factory.use_drivers): other teams' tests rely on both behaving as documented."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from oob.drivers import factory
from oob.drivers.factory import make_driver, use_drivers
from oob.drivers.fake import Advertise, FakeBmc, FakeDriver, FakeFleet, Fault, Stage
from oob.errors import ActionUnsupported, BmcAuthError, BmcRefused, BmcUnreachable, OutcomeUnknown, UsageError
from oob.model import PowerAction, PowerState

from .conftest import make_host

HOST = make_host("web01", "127.0.1.1")


def test_use_drivers_restores_the_previous_factory_even_on_error() -> None:
    outer, inner = FakeFleet(), FakeFleet()
    outer.add("127.0.1.1")
    inner_bmc = inner.add("127.0.1.1")
    with use_drivers(outer):
        with pytest.raises(ZeroDivisionError), use_drivers(inner):
            assert isinstance(make_driver(HOST, "redfish"), FakeDriver)
            assert inner.find(HOST) is inner_bmc
            raise ZeroDivisionError
        assert factory._factory is outer
    assert factory._factory is None


def test_use_drivers_reaches_worker_threads() -> None:
    fleet = FakeFleet()
    bmc = fleet.add("127.0.1.1")
    with use_drivers(fleet), ThreadPoolExecutor(4) as pool:
        drivers = list(pool.map(lambda _: make_driver(HOST, "ipmi"), range(4)))
    assert all(isinstance(d, FakeDriver) and d.bmc is bmc and d.method == "ipmi" for d in drivers)


def test_without_use_drivers_make_driver_builds_the_real_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOB_TEST_PW", "not-a-real-password")
    # built, not opened: nothing connects
    assert type(make_driver(HOST, "redfish")).__name__ == "RedfishDriver"
    assert type(make_driver(HOST, "ipmi")).__name__ == "IpmiDriver"
    with pytest.raises(UsageError, match="unknown BMC method 'telnet'"):
        make_driver(HOST, "telnet")


def test_a_fleet_finds_hosts_by_name_then_bmc_address() -> None:
    fleet = FakeFleet()
    by_name = fleet.add("web01")
    by_address = fleet.add("127.0.1.2")
    assert fleet.find(HOST) is by_name
    assert fleet.find(make_host("web02", "127.0.1.2")) is by_address
    with pytest.raises(BmcUnreachable, match=r"no BMC answers at 127\.0\.1\.9"):
        fleet(make_host("web09", "127.0.1.9"), "redfish")
    with pytest.raises(UsageError):
        fleet(HOST, "telnet")


def test_a_failure_strikes_as_often_as_scripted() -> None:
    bmc = FakeBmc()
    bmc.fail(Stage.LOGIN, Fault.UNREACHABLE, method="redfish", times=1)
    with pytest.raises(BmcUnreachable):
        bmc.driver(HOST, "redfish").open()
    with bmc.driver(HOST, "redfish") as driver:
        assert driver.power_state() is PowerState.ON
    bmc.fail(Stage.READ, Fault.AUTH)
    with pytest.raises(BmcAuthError), bmc.driver(HOST, "ipmi") as driver:
        driver.power_state()
    bmc.heal()
    with bmc.driver(HOST, "ipmi") as driver:
        assert driver.power_state() is PowerState.ON
    assert (bmc.logins("redfish"), bmc.logins("ipmi"), bmc.open_sessions()) == (2, 2, 0)


def test_a_failure_after_the_action_applied_it() -> None:
    bmc = FakeBmc()
    bmc.fail(Stage.POWER, Fault.REFUSED, applied=True)  # says no, does it anyway
    bmc.fail(Stage.NMI, Fault.OUTCOME_UNKNOWN, applied=False)  # lost on the way
    with bmc.driver(HOST, "redfish") as driver:
        with pytest.raises(BmcRefused):
            driver.power(PowerAction.OFF)
        with pytest.raises(OutcomeUnknown):
            driver.send_nmi()
    assert (bmc.power, bmc.power_actions_applied(), bmc.nmis_applied()) == (PowerState.OFF, ["ForceOff"], 0)
    assert [r.result for r in bmc.requests if r.operation in ("off", "nmi")] == [
        "applied, then refused",
        "outcome_unknown",
    ]


def test_nmi_support_as_each_method_reports_it() -> None:
    unadvertised = FakeBmc(reset_types=("On", "ForceOff"), advertise=Advertise.NONE, ipmi_nmi=False)
    with unadvertised.driver(HOST, "redfish") as driver:
        assert (driver.nmi_support().offered, driver.nmi_support().source) == (None, "unadvertised")
        with pytest.raises(BmcRefused, match="ResetType Nmi"):  # sent unchecked, the BMC says no
            driver.send_nmi()
    with unadvertised.driver(HOST, "ipmi") as driver:
        assert driver.nmi_support().offered is True
        with pytest.raises(ActionUnsupported):  # 0xCC: the diagnostic interrupt is not wired up
            driver.send_nmi()
    assert unadvertised.nmis_applied() == 0


def test_credentials_are_checked_when_the_bmc_has_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    bmc = FakeBmc(password="right")
    monkeypatch.setenv("OOB_TEST_PW", "wrong")
    with pytest.raises(BmcAuthError):
        bmc.driver(HOST, "redfish").open()
    monkeypatch.setenv("OOB_TEST_PW", "right")
    with bmc.driver(HOST, "redfish") as driver:
        assert driver.info().vendor == "Fake BMC"
    assert (bmc.logins(), bmc.open_sessions()) == (2, 0)


def test_the_session_limit_refuses_a_login_beyond_it() -> None:
    bmc = FakeBmc(session_limit=2, other_sessions=1)
    first = bmc.driver(HOST, "redfish")
    first.open()
    with pytest.raises(BmcAuthError, match="no session free"):
        bmc.driver(HOST, "redfish").open()
    first.close()
    first.close()  # twice is harmless
    assert bmc.open_sessions() == 0


def test_calls_before_open_are_a_loud_error() -> None:
    driver = FakeBmc().driver(HOST, "redfish")
    with pytest.raises(RuntimeError, match="before open"):
        driver.send_nmi()


def test_many_threads_on_one_bmc_are_counted_exactly() -> None:
    bmc = FakeBmc()

    def nmi(method: str) -> None:
        with bmc.driver(HOST, method) as driver:
            driver.power_state()
            driver.send_nmi()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(nmi, ["redfish", "ipmi"] * 100))
    assert (bmc.nmis_applied("redfish"), bmc.nmis_applied("ipmi")) == (100, 100)
    assert (bmc.logins(), bmc.open_sessions(), len(bmc.requests)) == (200, 0, 800)


def test_the_hook_sees_every_applied_action() -> None:
    seen: list[str] = []
    bmc = FakeBmc(on_apply=lambda b, applied: seen.append(f"{applied.method}:{applied.reset_type}"))
    with bmc.driver(HOST, "redfish") as driver:
        driver.send_nmi()
        driver.power(PowerAction.CYCLE)
    with bmc.driver(HOST, "ipmi") as driver:
        assert driver.power(PowerAction.SHUTDOWN).sent == ("chassis control 0x05 (soft shutdown)",)
    assert seen == ["redfish:Nmi", "redfish:PowerCycle", "ipmi:GracefulShutdown"]


def test_a_failure_after_applying_is_not_spent_by_an_action_the_bmc_cannot_do() -> None:
    bmc = FakeBmc(power=PowerState.OFF)
    bmc.fail(Stage.POWER, Fault.OUTCOME_UNKNOWN, applied=True, times=1)
    with bmc.driver(HOST, "ipmi") as driver:
        with pytest.raises(BmcRefused, match="the host is off"):
            driver.power(PowerAction.RESET)
        with pytest.raises(OutcomeUnknown):
            driver.power(PowerAction.ON)
        assert driver.power(PowerAction.OFF).sent == ("chassis control 0x00 (power down)",)
    assert bmc.power_actions_applied() == ["On", "ForceOff"]
