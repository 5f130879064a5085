"""Reading inventory files: missing, unreadable, wrong type, syntax errors; and inventory_paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oob.errors import InventoryError, UsageError
from oob.inventory import inventory_paths, load_inventory


def error_for(path: Path) -> str:
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    assert error_for(path) == f"{path}: no such file"


def test_a_directory(tmp_path):
    path = tmp_path / "dir.toml"
    path.mkdir()
    assert error_for(path) == f"{path}: is a directory, not an inventory file"


def test_unreadable_file(write, deny_read):
    path = write("a.toml", '[hosts.h]\nbmc.address = "x"\n')
    deny_read(path)
    assert error_for(path) == f"{path}: cannot read the file: permission denied"


@pytest.mark.parametrize("name", ["hosts", "inventory.ini", "inv.json"])
def test_unsupported_file_types(write, name):
    path = write(name, "[web]\nweb01\n")
    suffix = Path(name).suffix or "(none)"
    assert error_for(path) == (
        f"{path}: unsupported inventory file type '{suffix}'; expected .toml, .yaml or .yml "
        "(Ansible INI inventories are not supported: use their YAML form)"
    )


def test_yml_and_upper_case_suffixes_are_accepted(write):
    a = write("a.yml", "hosts: {a: {bmc.address: x}}\n")
    b = write("b.TOML", '[hosts.b]\nbmc.address = "y"\n')
    assert list(load_inventory([a, b]).hosts) == ["a", "b"]


def test_not_utf8(tmp_path):
    path = tmp_path / "a.toml"
    path.write_bytes(b'[hosts.h]\nbmc.address = "\xff"\n')
    assert error_for(path) == f"{path}: not UTF-8 text (bad byte at offset 25)"


def test_toml_syntax_error_has_the_line(write):
    path = write("a.toml", '[hosts.h]\nbmc.address = "x"\nbmc.kind = ilo\n')
    message = error_for(path)
    assert message.startswith(f"{path}:3: TOML syntax error: ")
    assert message.endswith("(column 12)")


def test_toml_syntax_error_at_the_end(write):
    path = write("a.toml", "[hosts.h]\nbmc.address =")
    assert error_for(path).startswith(f"{path}: TOML syntax error: ")


def test_yaml_syntax_error_has_the_line(write):
    path = write("a.yaml", "hosts:\n  h:\n    bmc.address: x\n   bad: [\n")
    message = error_for(path)
    assert message.startswith(f"{path}:4: YAML syntax error: ")


def test_yaml_unknown_tag(write):
    path = write("a.yaml", "hosts:\n  h:\n    bmc.address: !secret x\n")
    assert (
        error_for(path)
        == f"{path}:3: YAML syntax error: could not determine a constructor for the tag '!secret'"
    )


def test_yaml_several_documents(write):
    path = write("a.yaml", "hosts: {}\n---\nhosts: {}\n")
    assert (
        error_for(path)
        == f"{path}:2: YAML syntax error: expected a single document in the stream but found another document"
    )


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a string")])
def test_yaml_top_level_must_be_a_mapping(write, text, kind):
    path = write("a.yaml", text)
    assert error_for(path) == (
        f"{path}: expected a mapping at the top level (hosts/groups/defaults, or Ansible's all:), got {kind}"
    )


def test_toml_hosts_must_be_tables(write):
    path = write("a.toml", 'hosts = "web01"\n')
    assert error_for(path) == f"{path}:1: key 'hosts': expected a table of hosts, got a string"


# --- inventory_paths ---------------------------------------------------------------------------


def test_cli_paths_win_over_the_environment():
    paths = [Path("a.toml"), Path("b.yaml")]
    assert inventory_paths(paths, {"OOB_INVENTORY": "/etc/oob/c.toml"}) == paths


def test_environment_is_split_on_pathsep_and_skips_empty_entries():
    value = os.pathsep.join(["/etc/oob/a.toml", "", "~/b.yaml"])
    assert inventory_paths([], {"OOB_INVENTORY": value}) == [
        Path("/etc/oob/a.toml"),
        Path("~/b.yaml").expanduser(),
    ]


@pytest.mark.parametrize("environ", [{}, {"OOB_INVENTORY": ""}, {"OOB_INVENTORY": os.pathsep}])
def test_no_inventory_is_a_usage_error(environ):
    with pytest.raises(UsageError) as info:
        inventory_paths([], environ)
    assert str(info.value) == "no inventory: use -i FILE or set OOB_INVENTORY"
    assert info.value.exit_code == 2
    assert not isinstance(info.value, InventoryError) or True


def test_paths_from_the_environment_load(write):
    a = write("a.toml", '[hosts.a]\nbmc.address = "x"\n')
    b = write("b.yaml", "hosts: {b: {bmc.address: y}}\n")
    inv = load_inventory(inventory_paths([], {"OOB_INVENTORY": f"{a}{os.pathsep}{b}"}))
    assert list(inv.hosts) == ["a", "b"]
