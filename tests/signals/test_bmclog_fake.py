"""The fake driver's event log (for runbook tests): an applied NMI adds its entry; a BMC
without a log offers none; a scripted read failure raises like any read."""

from __future__ import annotations

import datetime as dt

import pytest

from oob.drivers.fake import FakeBmc, Fault, Stage
from oob.errors import BmcUnreachable
from oob.model import BmcConfig, Host
from oob.signals.bmclog import EntryKind, SourceStatus

HOST = Host(name="web1", bmc=BmcConfig(address="192.0.2.5", username="admin"))


def test_an_applied_nmi_is_in_the_fake_bmc_log() -> None:
    bmc = FakeBmc()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with bmc.driver(HOST, "ipmi") as driver:
        driver.send_nmi()
        log = driver.read_event_log(since)
    assert [e.kind for e in log.entries] == [EntryKind.NMI]
    assert log.entries[0].source == "SEL" and log.method == "ipmi"
    with bmc.driver(HOST, "redfish") as driver:
        later = driver.read_event_log(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
    assert later.kept == 0 and later.outside == 1


def test_a_fake_bmc_without_a_log_offers_none_and_read_failures_raise() -> None:
    bmc = FakeBmc(event_log=None)
    with bmc.driver(HOST, "redfish") as driver:
        log = driver.read_event_log()
    assert not log.offered and [s.status for s in log.sources] == [SourceStatus.NOT_OFFERED]
    bmc.fail(Stage.READ, Fault.UNREACHABLE, method="redfish")
    with bmc.driver(HOST, "redfish") as driver, pytest.raises(BmcUnreachable):
        driver.read_event_log()
