"""oob preflight, BMC side, in-process on fake BMCs: what plan_host finds, as checks.

The host side logs in over SSH (tests/preflight does that against a real sshd); here the
hosts have no address, so it is one "ssh" failure and no connection, and the assertions
are on the BMC checks — and on the BMC being left as it was: no NMI, no power action,
oob's sessions closed."""

from __future__ import annotations

from oob.drivers.fake import Advertise, FakeBmc, FakeFleet, Fault, Stage
from oob.model import PowerState
from oob.preflight.checks import FAIL, OK, SKIP, WARN
from oob.runbook.methods import DriverOptions
from oob.runbook.preflight import BMC_CHECK_NAMES, HostReadiness, PreflightRequest, run_preflight

from .conftest import Events, make_host


def bmc_side(result: HostReadiness) -> dict[str, str]:
    return {c.name: c.status for c in result.checks if c.side == "bmc"}


def reason(result: HostReadiness, name: str) -> str:
    check = result.check(name)
    assert check is not None
    return check.reason


def test_a_good_bmc_passes_every_bmc_check(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(other_sessions=2))

    report = run_preflight([host], PreflightRequest(), emit=events)

    [result] = report.hosts
    assert bmc_side(result) == {name: OK for name in BMC_CHECK_NAMES}
    assert reason(result, "nmi") == "NMI offered via redfish (inline)"
    assert reason(result, "sessions").startswith("3 open (oob's included), timeout 1800 s")
    assert result.check("ssh") is not None and result.check("ssh").status == FAIL  # type: ignore[union-attr]
    assert not result.ready and report.exit_code == 1
    assert (bmc.nmis_applied(), bmc.power_actions_applied(), bmc.open_sessions()) == (0, [], 0)
    assert bmc.logins() == 1
    assert "readiness" in events.kinds("web01")


def test_a_supermicro_at_its_session_limit_warns(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1", kind="supermicro")
    fleet.add("127.0.1.1", FakeBmc(kind="supermicro", other_sessions=15))

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result)["sessions"] == WARN
    assert "at the 16 a supermicro BMC allows" in reason(result, "sessions")


def test_no_session_free_fails_the_sessions_check(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(session_limit=4, other_sessions=4))

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result) == {
        "reachable": OK,
        "auth": FAIL,
        "tls": OK,
        "power": SKIP,
        "nmi": SKIP,
        "sessions": FAIL,
    }
    assert bmc.logins("ipmi") == 0


def test_auth_failure_fails_auth_and_leaves_ipmi_alone(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")
    bmc.fail(Stage.LOGIN, Fault.AUTH, method="redfish")

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result)["reachable"] == OK
    assert bmc_side(result)["auth"] == FAIL
    assert (bmc.logins("redfish"), bmc.logins("ipmi")) == (1, 0)


def test_an_unreachable_bmc_fails_reachable(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    fleet.add("127.0.1.1", FakeBmc(methods=frozenset()))

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result)["reachable"] == FAIL
    assert bmc_side(result)["nmi"] == SKIP


def test_nmi_only_over_ipmi_is_ok_and_says_why(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    fleet.add("127.0.1.1", FakeBmc(reset_types=("On", "ForceOff"), advertise=Advertise.ACTIONINFO))

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result)["nmi"] == OK
    assert reason(result, "nmi").startswith("NMI offered via ipmi (ipmi); redfish: NMI not supported")
    assert bmc_side(result)["sessions"] == SKIP  # no Redfish session to read it with


def test_an_unadvertised_nmi_warns(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    fleet.add("127.0.1.1", FakeBmc(advertise=Advertise.NONE))

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result)["nmi"] == WARN


def test_a_host_that_is_off_fails_power(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(power=PowerState.OFF))

    [result] = run_preflight([host], PreflightRequest(), emit=events).hosts

    assert bmc_side(result)["power"] == FAIL
    assert bmc.power_actions_applied() == []


def test_insecure_tls_warns(fleet: FakeFleet, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    fleet.add("127.0.1.1")

    [result] = run_preflight([host], PreflightRequest(driver=DriverOptions(insecure=True)), emit=events).hosts

    assert bmc_side(result)["tls"] == WARN


def test_many_hosts_in_parallel_each_get_their_checks(fleet: FakeFleet, events: Events) -> None:
    hosts = [make_host(f"web{i:02}", f"127.0.1.{i}") for i in range(1, 9)]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]
    bmcs[3].methods = frozenset({"ipmi"})

    report = run_preflight(hosts, PreflightRequest(parallel=8), emit=events)

    assert [r.host for r in report.hosts] == [h.name for h in hosts]
    assert [bmc_side(r)["nmi"] for r in report.hosts] == [OK] * 8
    assert [r.check("nmi").data["via"] for r in report.hosts] == (  # type: ignore[union-attr]
        ["redfish"] * 3 + ["ipmi"] + ["redfish"] * 4
    )
    assert all(b.open_sessions() == 0 and b.nmis_applied() == 0 for b in bmcs)
