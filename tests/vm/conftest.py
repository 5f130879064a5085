"""One real guest per test session, under a real session libvirtd (see tests/vm/fixture.py).

Tests that need it (these, and oob's libvirt driver tests) live under tests/vm/ and take
``vm_guest``; booting once per session keeps the suite's cost to one TCG boot.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.vm.fixture import VmGuest, running_guest


@pytest.fixture(scope="session")
def vm_guest() -> Iterator[VmGuest]:
    with running_guest() as guest:
        yield guest
