"""The hostile Redfish BMC fixtures of tests/hostile, for the BMC log tests here."""

from tests.hostile.conftest import (  # noqa: F401 - fixtures
    bystander,
    hostile_bmc,
    hostile_ca,
    hostile_driver,
    hostile_host,
)
