"""Ansible YAML inventories: nesting, variable precedence, host ranges, errors."""

from __future__ import annotations

import pytest

from oob.model import SecretRef

NESTED = """
all:
  vars:
    bmc_username: from-all
    bmc_timeout: 1
    bmc_system: from-all
    dump_layout: rhel
    ansible_user: ignored
    ntp_servers: [ignored]
  hosts:
    lonely: {bmc_address: 192.0.2.1}
  children:
    dc1:
      vars:
        bmc_timeout: 2
        bmc_system: from-dc1
      children:
        web:
          vars:
            bmc_system: from-web
            bmc_kind: ilo
          hosts:
            web01: {bmc_address: 192.0.2.11, ansible_host: 192.0.2.111, oob_aliases: [web01.example.com]}
            web02:
              bmc_address: 192.0.2.12
              bmc_system: from-host
        db:
          hosts:
            db01: {bmc_address: 192.0.2.21, bmc_user: dbadmin}
"""


def test_group_vars_inherit_down_children_and_host_vars_win(load):
    inv = load("hosts.yaml", NESTED)
    lonely, web01, web02, db01 = (inv.hosts[name] for name in ("lonely", "web01", "web02", "db01"))
    assert (lonely.bmc.username, lonely.bmc.timeout, lonely.bmc.system, lonely.groups) == (
        "from-all",
        1.0,
        "from-all",
        (),
    )
    assert (web01.bmc.timeout, web01.bmc.system, web01.bmc.kind, web01.dump.layout) == (
        2.0,
        "from-web",
        "ilo",
        "rhel",
    )
    assert web02.bmc.system == "from-host"
    assert (db01.bmc.system, db01.bmc.username, db01.bmc.kind) == ("from-dc1", "dbadmin", "auto")
    assert (web01.address, web01.aliases) == ("192.0.2.111", ("web01.example.com",))


def test_hosts_belong_to_every_group_above_them(load):
    inv = load("hosts.yaml", NESTED)
    assert inv.hosts["web01"].groups == ("dc1", "web")
    assert inv.hosts["db01"].groups == ("dc1", "db")
    assert inv.groups == {"dc1": ("web01", "web02", "db01"), "web": ("web01", "web02"), "db": ("db01",)}
    assert list(inv.hosts) == ["lonely", "web01", "web02", "db01"]


def test_top_level_groups_without_all(load):
    inv = load(
        "hosts.yml",
        """
        web:
          hosts:
            web01: {bmc_address: 192.0.2.11}
        db:
          vars: {bmc_kind: idrac}
          hosts:
            db01: {bmc_address: 192.0.2.21}
        """,
    )
    assert list(inv.hosts) == ["web01", "db01"]
    assert inv.hosts["db01"].bmc.kind == "idrac"
    assert inv.groups == {"web": ("web01",), "db": ("db01",)}


def test_a_host_in_several_groups_gets_all_of_them_and_later_host_vars_win(load):
    inv = load(
        "hosts.yaml",
        """
        all:
          children:
            zeta:
              vars: {bmc_system: zeta}
              hosts:
                h1: {bmc_address: 192.0.2.1, bmc_timeout: 5}
            alpha:
              vars: {bmc_system: alpha, bmc_kind: xcc}
              hosts:
                h1: {bmc_timeout: 7}
        """,
    )
    host = inv.hosts["h1"]
    # same depth: Ansible orders groups by name, so zeta (applied later) wins over alpha
    assert host.groups == ("alpha", "zeta")
    assert (host.bmc.system, host.bmc.kind) == ("zeta", "xcc")
    assert (host.bmc.address, host.bmc.timeout) == ("192.0.2.1", 7.0)


def test_a_deeper_group_wins_whatever_its_name(load):
    inv = load(
        "hosts.yaml",
        """
        zz:
          vars: {bmc_system: parent}
          children:
            aa:
              vars: {bmc_system: child}
              hosts:
                h: {bmc_address: x}
        """,
    )
    assert inv.hosts["h"].bmc.system == "child"
    assert inv.hosts["h"].groups == ("zz", "aa")


def test_a_group_defined_in_two_places_is_one_group(load):
    inv = load(
        "hosts.yaml",
        """
        all:
          children:
            dc1:
              children:
                web:
                  hosts:
                    web01:
        web:
          vars: {bmc_kind: openbmc}
          hosts:
            web01: {bmc_address: 192.0.2.11}
        """,
    )
    assert inv.hosts["web01"].bmc.kind == "openbmc"
    assert inv.hosts["web01"].groups == ("dc1", "web")


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
        ("node[8:10]", ["node8", "node9", "node10"]),
        ("node[08:10]", ["node08", "node09", "node10"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("n[0:6:3]", ["n0", "n3", "n6"]),
        ("n[:2]", ["n0", "n1", "n2"]),
        ("rack[1:2]-node[01:02]", ["rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"]),
    ],
)
def test_host_ranges(load, pattern, names):
    inv = load("hosts.yaml", f"all:\n  vars: {{bmc_address: x}}\n  hosts:\n    '{pattern}':\n")
    assert list(inv.hosts) == names


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("n[3:1]", "the range goes backwards"),
        ("n[c:a]", "the range goes backwards"),
        ("n[01:100]", "a zero-padded range needs the same number of digits at both ends"),
        ("n[1-3]", "expected a range [START:END] or [START:END:STEP]"),
        ("n[1:3:0]", "the step must be a positive integer"),
        ("n[a:10]", "expected a range of numbers [01:20] or of letters [a:c]"),
    ],
)
def test_bad_host_ranges(load_error, pattern, problem):
    path, message = load_error("hosts.yaml", f"all:\n  hosts:\n    '{pattern}':\n")
    assert message == f"{path}:3: host pattern '{pattern}': {problem}"


def test_unknown_bmc_variable_suggests_the_right_one(load_error):
    path, message = load_error(
        "hosts.yaml",
        """
        all:
          hosts:
            web01:
              bmc_address: 192.0.2.11
              bmc_pasword: env:X
        """,
    )
    assert (
        message
        == f"{path}:5: host 'web01': key 'bmc_pasword': unknown variable (did you mean 'bmc_password'?)"
    )


def test_unknown_dump_variable_in_group_vars(load_error):
    path, message = load_error(
        "hosts.yaml",
        """
        web:
          vars:
            dump_targets: file:///mnt/crash
          hosts:
            web01: {bmc_address: x}
        """,
    )
    assert (
        message
        == f"{path}:3: group 'web': key 'dump_targets': unknown variable (did you mean 'dump_target'?)"
    )


def test_bad_value_uses_the_ansible_variable_name(load_error):
    path, message = load_error(
        "hosts.yaml", "all:\n  hosts:\n    h:\n      bmc_address: x\n      bmc_ipmi_port: 70000\n"
    )
    assert (
        message
        == f"{path}:5: host 'h': key 'bmc_ipmi_port': expected a port number from 1 to 65535, got 70000"
    )


def test_missing_bmc_address_names_the_ansible_variable(load_error):
    path, message = load_error("hosts.yaml", "all:\n  hosts:\n    web01:\n      ansible_host: 192.0.2.11\n")
    assert (
        message
        == f"{path}:3: host 'web01': key 'bmc_address': missing: every host needs the address of its BMC"
    )


def test_vault_values_are_refused_clearly(load_error):
    path, message = load_error(
        "hosts.yaml",
        """
        all:
          vars:
            ansible_become_password: !vault |
              $ANSIBLE_VAULT;1.1;AES256
              6162636465
          hosts:
            web01:
              bmc_address: 192.0.2.11
              bmc_password: !vault |
                $ANSIBLE_VAULT;1.1;AES256
                3132333435
        """,
    )
    assert message == (
        f"{path}:9: host 'web01': key 'bmc_password': vault-encrypted values are not supported; use env:/file:/keyring:"
    )
    assert "3132333435" not in message


def test_jinja_templates_are_refused(load_error):
    path, message = load_error(
        "hosts.yaml",
        """
        all:
          vars:
            bmc_password: "{{ lookup('env', 'BMC_PW') }}"
          hosts:
            web01: {bmc_address: x}
        """,
    )
    assert message == (
        f"{path}:3: group 'all': key 'bmc_password': Jinja templates are not supported here; use env:VAR, "
        "file:PATH, keyring:SERVICE/USER or a plain value"
    )


def test_bmc_user_and_bmc_username_together(load_error):
    path, message = load_error(
        "hosts.yaml", "all:\n  hosts:\n    h: {bmc_address: x, bmc_user: a, bmc_username: b}\n"
    )
    assert message == f"{path}:3: host 'h': key 'bmc_username': set twice (as 'bmc_user' and 'bmc_username')"


def test_unknown_key_in_a_group(load_error):
    path, message = load_error("hosts.yaml", "all:\n  children:\n    web:\n      host:\n        web01:\n")
    assert message == (
        f"{path}:4: group 'web': key 'host': unknown key in a group (did you mean 'hosts'?); "
        "expected hosts, children or vars"
    )


def test_groups_that_contain_each_other(load_error):
    path, message = load_error(
        "hosts.yaml",
        """
        a:
          children:
            b:
              children:
                a:
                  hosts:
                    h: {bmc_address: x}
        """,
    )
    assert message == f"{path}:1: group 'a': groups contain each other: a -> b -> a"


def test_a_recursive_yaml_alias_is_refused(load_error):
    path, message = load_error("hosts.yaml", "a: &A\n  children:\n    b:\n      children:\n        c: *A\n")
    assert message == f"{path}:5: group 'c': the group contains itself (recursive YAML alias)"


def test_relative_paths_and_literal_rule_apply_to_ansible_too(load, load_error, tmp_path):
    inv = load(
        "inv/hosts.yaml",
        "all:\n  hosts:\n    h: {bmc_address: x, bmc_ca_file: ca.pem, bmc_password: 'file:pw'}\n",
    )
    assert inv.hosts["h"].bmc.ca_file == str(tmp_path / "inv" / "ca.pem")
    assert inv.hosts["h"].bmc.password == SecretRef("file", str(tmp_path / "inv" / "pw"))
    path, message = load_error(
        "open.yaml", "all:\n  hosts:\n    h: {bmc_address: x, bmc_password: hunter2}\n", mode=0o644
    )
    assert message.startswith(f"{path}:3: host 'h': key 'bmc_password': a literal password is only allowed")
    assert "hunter2" not in message


def test_an_ansible_inventory_without_hosts(load_error):
    path, message = load_error("hosts.yaml", "all:\n  children:\n    web:\n")
    assert message == f"{path}: no hosts in this inventory"


# --- telling the formats apart -------------------------------------------------------------------


def test_native_yaml_is_not_mistaken_for_ansible(load):
    inv = load("a.yaml", "hosts:\n  web01:\n    bmc: {address: x}\n")
    assert inv.hosts["web01"].bmc.address == "x"


def test_ansible_groups_called_hosts_or_groups_are_ansible(load):
    inv = load("a.yaml", "hosts:\n  hosts:\n    web01: {bmc_address: x}\ngroups:\n  children:\n    hosts:\n")
    assert inv.hosts["web01"].groups == ("groups", "hosts")


def test_a_native_typo_at_the_top_is_reported_as_native(load_error):
    path, message = load_error("a.yaml", "defualts: {}\nhosts:\n  web01: {bmc: {address: x}}\n")
    assert message == (
        f"{path}:1: key 'defualts': unknown top-level key (did you mean 'defaults'?); "
        "expected defaults, groups and hosts"
    )
