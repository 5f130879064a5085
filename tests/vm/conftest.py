"""One real guest per test session, under a real session libvirtd (see tests/vm/fixture.py).

Tests that need it (these, and oob's libvirt driver tests against a real QEMU) live under
tests/vm/ and take ``vm_guest``; booting once per session keeps the suite's cost to one TCG
boot.  A test that powers the guest off or crashes it calls ``vm_guest.ensure_armed()``
when done, so the next test finds it running with kdump armed.

For oob, the guest is a host like this.  It has no network, so its probe says nothing
about it: ``oob crash`` needs ``--reboot-grace 0`` (it would wait for the guest to answer
after its dump), and the probe and SSH port are best a loopback port the test holds bound
but never listens on (refused at once: the guest "looks hung" without ``--force``,
whatever answers on this machine's port 22; test_guest.py's ``cli`` fixture)::

    [hosts.guest]
    address = "127.0.0.1"
    probe = "tcp:127.0.0.1:<port>"
    ssh.port = <port>
    bmc.kind = "libvirt"
    bmc.address = "<vm_guest.uri>"
    bmc.domain = "<vm_guest.domain>"
    dump.target = "<vm_guest.dump_target>"
    dump.layout = "rhel"

A hypervisor-side dump must be written where the daemon's user may write:
``vm_guest.scratch_dir``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.vm.fixture import VmGuest, running_guest


@pytest.fixture(scope="session")
def vm_guest() -> Iterator[VmGuest]:
    with running_guest() as guest:
        yield guest
