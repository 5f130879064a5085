"""Build the driver for one host and one method, with its credentials resolved."""

from __future__ import annotations

from collections.abc import Callable

from oob.drivers.base import BmcDriver
from oob.errors import UsageError
from oob.model import Host


def resolve_password(host: Host) -> str:
    from oob.secrets import resolve_secret

    if host.bmc.password is None:
        raise UsageError(f"host '{host.name}': key 'bmc.password' is not set", host=host.name)
    return resolve_secret(host.bmc.password, host=host.name)


def make_driver(
    host: Host,
    method: str,
    *,
    insecure: bool = False,
    connect_attempts: int = 3,
    on_retry: Callable[[str], None] | None = None,
) -> BmcDriver:
    """A driver for ``method`` ("redfish" or "ipmi"), not yet opened."""
    if method == "redfish":
        from oob.drivers.redfish.driver import RedfishDriver
        from oob.drivers.tls import tls_policy_for

        tls = tls_policy_for(host.bmc, insecure=insecure)
        return RedfishDriver(
            host, resolve_password(host), tls, connect_attempts=connect_attempts, on_retry=on_retry
        )
    if method == "ipmi":
        from oob.drivers.ipmi import IpmiDriver

        return IpmiDriver(host, resolve_password(host), connect_attempts=connect_attempts, on_retry=on_retry)
    raise UsageError(f"host '{host.name}': unknown BMC method '{method}'", host=host.name)
