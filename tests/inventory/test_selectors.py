"""Selecting hosts: names, globs, @groups, all, numeric ranges, comma lists; errors name the selector."""

from __future__ import annotations

import pytest

from oob.errors import InventoryError, UsageError

FLEET = """
[defaults]
bmc.address = "192.0.2.200"

[hosts.web01]
groups = ["web", "frontend"]
address = "192.0.2.11"
aliases = ["www1.example.com"]
[hosts.web02]
groups = ["web", "frontend"]
[hosts.web10]
groups = ["web"]
[hosts.db01]
groups = ["db"]
[hosts.db02]
groups = ["db"]
[hosts.node1]
[hosts.node2]
[hosts.node09]
[hosts.node10]
[hosts.node11]
[hosts.node20]
[hosts.rack1-node01]
[hosts.rack1-node02]
[hosts.rack1-node05]
[hosts.rack2-node01]
[hosts.rack3-node01]

[groups.empty]
"""


@pytest.fixture
def inv(load):
    return load("fleet.toml", FLEET)


def names(hosts):
    return [host.name for host in hosts]


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["db02"], ["db02"]),
        (["web*"], ["web01", "web02", "web10"]),
        (["web0?"], ["web01", "web02"]),
        (["web0[12]"], ["web01", "web02"]),
        (["web0[!1]"], ["web02"]),
        (["@db"], ["db01", "db02"]),
        (["@front*"], ["web01", "web02"]),
        (["node[1-10]"], ["node1", "node2", "node10"]),
        (["node[09-11]"], ["node09", "node10", "node11"]),
        (["node[01:20]"], ["node09", "node10", "node11", "node20"]),
        (["rack[1-2]-node[01-04]"], ["rack1-node01", "rack1-node02", "rack2-node01"]),
        (["rack*-node01"], ["rack1-node01", "rack2-node01", "rack3-node01"]),
        (["db02,web01"], ["db02", "web01"]),
        (["db02, web01,"], ["db02", "web01"]),
        (["192.0.2.11"], ["web01"]),
        (["www1.example.com"], ["web01"]),
    ],
)
def test_selectors(inv, selectors, expected):
    assert names(inv.select(selectors)) == expected


@pytest.mark.parametrize("selector", ["all", "@all"])
def test_all_in_inventory_order(inv, selector):
    assert names(inv.select([selector])) == list(inv.hosts)


def test_order_of_first_match_without_duplicates(inv):
    selected = names(inv.select(["db02", "@web", "web01,db*", "all"]))
    assert selected[:5] == ["db02", "web01", "web02", "web10", "db01"]
    assert len(selected) == len(set(selected)) == len(inv.hosts)


def test_select_returns_the_host_objects(inv):
    assert inv.select(["web01"]) == [inv.hosts["web01"]]


def test_no_match_names_the_selector_and_a_close_host(inv):
    with pytest.raises(UsageError) as info:
        inv.select(["web01", "wbe01"])
    assert str(info.value) == "no host matches 'wbe01' (did you mean 'web01'?)"
    assert info.value.exit_code == 2
    assert not isinstance(info.value, InventoryError)


def test_every_failing_selector_is_named_on_one_line(inv):
    with pytest.raises(UsageError) as info:
        inv.select(["zzz", "web01", "mail*", "@dbs", "node[30-40]"])
    assert str(info.value) == (
        "no host matches 'zzz'; no host matches 'mail*'; no group 'dbs' in the inventory (did you mean '@db'?); "
        "no host matches 'node[30-40]'"
    )


def test_a_group_name_without_at(inv):
    with pytest.raises(UsageError, match=r"^no host 'db' \(did you mean the group '@db'\?\)$"):
        inv.select(["db"])


def test_an_empty_group(inv):
    with pytest.raises(UsageError, match=r"^group 'empty' has no hosts$"):
        inv.select(["@empty"])


def test_a_backwards_range(inv):
    with pytest.raises(UsageError, match=r"^selector 'node\[20-01\]': the range \[20-01\] goes backwards$"):
        inv.select(["node[20-01]"])


@pytest.mark.parametrize("selectors", [[], [""], [" , "]])
def test_nothing_selected(inv, selectors):
    with pytest.raises(UsageError, match=r"^no hosts selected: give host names, globs, @group or all$"):
        inv.select(selectors)


def test_a_huge_range_is_matched_not_expanded(inv):
    assert names(inv.select(["node[1-999999999999]"])) == ["node1", "node2", "node10", "node11", "node20"]


def test_regex_characters_are_literal(load):
    inv = load("a.toml", '[defaults]\nbmc.address = "x"\n[hosts."a.b"]\n[hosts.axb]\n')
    assert names(inv.select(["a.b"])) == ["a.b"]
    assert names(inv.select(["a.*"])) == ["a.b"]
