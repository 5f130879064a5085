"""libvirt's test driver (``test:///FILE.xml``, in-process, no daemon) as the hypervisor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oob.model import BmcConfig, Host

RUNNING_UUID = "6b8d1f5e-3c2a-4e0b-9a71-2f4c8d9e0a11"

GUESTS = """\
<node>
  <domain type="test">
    <name>vm1</name>
    <uuid>{uuid}</uuid>
    <memory unit="MiB">64</memory>
    <vcpu>2</vcpu>
    <os><type>hvm</type></os>
  </domain>
  <domain type="test">
    <name>frozen</name>
    <memory unit="MiB">64</memory>
    <os><type>hvm</type></os>
  </domain>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>down</name>
    <memory unit="MiB">64</memory>
    <os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type="test">
    <name>huge</name>
    <memory unit="TiB">64</memory>
    <os><type>hvm</type></os>
  </domain>
</node>
"""


@pytest.fixture
def guests_uri(tmp_path: Path) -> str:
    """A test-driver node: running guests vm1 (64 MiB), frozen and huge (64 TiB); down, shut off."""
    path = tmp_path / "guests.xml"
    path.write_text(GUESTS.format(uuid=RUNNING_UUID))
    return f"test://{path}"


@pytest.fixture
def guest(guests_uri: str) -> Callable[..., Host]:
    def make(
        domain: str = "vm1", name: str | None = None, timeout: float = 5.0, uri: str | None = None
    ) -> Host:
        return Host(
            name=name or domain,
            bmc=BmcConfig(kind="libvirt", address=uri or guests_uri, domain=domain, timeout=timeout),
        )

    return make


@pytest.fixture
def inventory(tmp_path: Path, guests_uri: str) -> Callable[..., Path]:
    """An inventory file with one libvirt host per (name, domain[, uri])."""

    def write(*entries: tuple[str, ...], extra: str = "") -> Path:
        lines: list[str] = []
        for entry in entries:
            name, domain = entry[0], entry[1]
            uri = entry[2] if len(entry) > 2 else guests_uri
            lines += [
                f"[hosts.{name}]",
                'bmc.kind = "libvirt"',
                f'bmc.address = "{uri}"',
                f'bmc.domain = "{domain}"',
                "bmc.timeout = 5",
                extra,
                "",
            ]
        path = tmp_path / "inventory.toml"
        path.write_text("\n".join(lines))
        return path

    return write


def libvirt_error(code: int, message: str = "said by libvirt") -> Any:
    """A ``libvirtError`` carrying ``code``, as the binding raises it."""
    import libvirt

    error = libvirt.libvirtError(message)
    # what virGetLastError() gives: (code, domain, message, level, str1, str2, str3, int1, int2)
    error.err = (code, libvirt.VIR_FROM_QEMU, message, libvirt.VIR_ERR_ERROR, None, None, None, -1, -1)
    return error
