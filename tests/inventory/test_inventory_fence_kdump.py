"""``dump.fence_kdump``: the host's kdump tells this machine when it starts (fence_kdump_nodes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oob.inventory import Inventory


def test_default_false_and_inherited_from_defaults_and_groups(load: Callable[..., Inventory]) -> None:
    inv = load(
        "inv.toml",
        """
        [defaults]
        bmc.address = "192.0.2.100"
        [groups.cluster]
        dump.fence_kdump = true
        [hosts.web01]
        [hosts.db01]
        groups = ["cluster"]
        [hosts.db02]
        groups = ["cluster"]
        dump.fence_kdump = false
        """,
    )
    assert inv.hosts["web01"].dump.fence_kdump is False
    assert inv.hosts["db01"].dump.fence_kdump is True
    assert inv.hosts["db02"].dump.fence_kdump is False
    assert inv.hosts["db01"].to_dict()["dump"] == {"target": None, "layout": "auto", "fence_kdump": True}


def test_a_string_is_one_line_naming_the_key(load_error: Callable[..., Any]) -> None:
    path, message = load_error(
        "inv.toml",
        """
        [hosts.web01]
        bmc.address = "192.0.2.100"
        dump.fence_kdump = "yes"
        """,
    )
    assert message == f"{path}:3: host 'web01': key 'dump.fence_kdump': expected true or false, got a string"


def test_ansible_variable(load: Callable[..., Inventory]) -> None:
    inv = load(
        "hosts.yaml",
        """
        all:
          hosts:
            db01:
              ansible_host: 192.0.2.11
              bmc_address: 192.0.2.111
              dump_fence_kdump: true
        """,
    )
    assert inv.hosts["db01"].dump.fence_kdump is True


def test_a_typo_says_what_was_meant(load_error: Callable[..., Any]) -> None:
    _, message = load_error(
        "inv.toml",
        """
        [hosts.web01]
        bmc.address = "192.0.2.100"
        dump.fence_kdum = true
        """,
    )
    assert "dump.fence_kdump" in message
