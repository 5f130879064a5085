"""Build the driver for one host and one method, with its credentials resolved.

Tests (oob's own, and other teams') can put an in-process driver in place of the real
ones with :func:`use_drivers`, the way httpx takes a ``MockTransport``::

    from oob.drivers.factory import use_drivers
    from oob.drivers.fake import FakeFleet

    fleet = FakeFleet()
    fleet.add("10.0.0.5")                  # the BMC at bmc.address 10.0.0.5
    with use_drivers(fleet):
        outcomes = run_nmi(hosts, ...)     # every make_driver() now returns fleet(host, method)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from oob.drivers.base import BmcDriver
from oob.errors import UsageError
from oob.model import Host

#: what :func:`use_drivers` takes: ``factory(host, method)`` returns a driver, not yet
#: opened, for ``method`` ("redfish" or "ipmi"), or raises an ``OobError``
DriverFactory = Callable[[Host, str], BmcDriver]

# Process-wide on purpose, not a ContextVar: runbooks work on hosts in worker threads,
# which a ContextVar set in the caller's thread would not reach.
_factory: DriverFactory | None = None
_factory_lock = threading.Lock()


@contextmanager
def use_drivers(factory: DriverFactory) -> Iterator[DriverFactory]:
    """For the duration of the block, :func:`make_driver` returns ``factory(host, method)``
    in every thread of the process, instead of a real driver; the previous factory (or
    none: the real drivers) is back afterwards, even when the block raises.

    Meant for tests.  Blocks may be nested; two threads must not each hold their own
    block at the same time (the last one entered wins for both until it exits).
    """
    global _factory
    with _factory_lock:
        previous, _factory = _factory, factory
    try:
        yield factory
    finally:
        with _factory_lock:
            _factory = previous


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
    refresh: bool = False,
) -> BmcDriver:
    """A driver for ``method`` ("redfish" or "ipmi"), not yet opened (or, inside
    :func:`use_drivers`, whatever its factory returns).  ``refresh``: discover the BMC
    afresh instead of trusting the discovery cache (``--refresh``)."""
    injected = _factory
    if injected is not None:
        return injected(host, method)
    if method == "redfish":
        from oob.drivers.redfish.discovery import default_cache
        from oob.drivers.redfish.driver import RedfishDriver
        from oob.drivers.tls import tls_policy_for

        tls = tls_policy_for(host.bmc, insecure=insecure)
        return RedfishDriver(
            host,
            resolve_password(host),
            tls,
            connect_attempts=connect_attempts,
            on_retry=on_retry,
            discovery=default_cache(),
            refresh=refresh,
        )
    if method == "ipmi":
        from oob.drivers.ipmi import IpmiDriver

        return IpmiDriver(host, resolve_password(host), connect_attempts=connect_attempts, on_retry=on_retry)
    if method == "libvirt":
        from oob.drivers.libvirt import LibvirtDriver

        return LibvirtDriver(host, connect_attempts=connect_attempts, on_retry=on_retry)
    if method == "esxi":
        from oob.drivers.esxi import EsxiDriver

        return EsxiDriver(host)
    raise UsageError(f"host '{host.name}': unknown BMC method '{method}'", host=host.name)
