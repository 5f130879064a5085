"""The native format (TOML and YAML): resolution, precedence, and one-line errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from oob.errors import InventoryError
from oob.inventory import load_inventory
from oob.model import BmcConfig, DumpConfig, Host, SecretRef

MINIMAL = """
[hosts.web01]
bmc.address = "192.0.2.111"
"""


def test_minimal_host_gets_the_model_defaults(load):
    inv = load("a.toml", MINIMAL)
    host = inv.hosts["web01"]
    assert host.bmc == BmcConfig(address="192.0.2.111")
    assert host.dump == DumpConfig()
    assert (host.address, host.aliases, host.groups) == (None, (), ())
    assert host.source.endswith("a.toml")


def test_every_key_is_read(load, tmp_path):
    inv = load(
        "a.toml",
        """
        [hosts.web01]
        address = "192.0.2.11"
        aliases = ["web01.example.com", "192.0.2.12"]
        groups = ["web"]
        bmc.kind = "iLO"
        bmc.address = "https://192.0.2.111:8443"
        bmc.username = "root"
        bmc.password = "file:pw/web01"
        bmc.verify = false
        bmc.ca_file = "ca.pem"
        bmc.fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
        bmc.system = "1"
        bmc.methods = ["ipmi", "redfish"]
        bmc.ipmi_port = 6230
        bmc.timeout = 2.5
        dump.target = "ssh://kdump@198.51.100.5:2222/var/crash"
        dump.layout = "suse"
        """,
    )
    assert inv.hosts["web01"] == Host(
        name="web01",
        address="192.0.2.11",
        aliases=("web01.example.com", "192.0.2.12"),
        groups=("web",),
        bmc=BmcConfig(
            kind="ilo",
            address="https://192.0.2.111:8443",
            username="root",
            password=SecretRef("file", str(tmp_path / "pw" / "web01")),
            verify=False,
            ca_file=str(tmp_path / "ca.pem"),
            fingerprint="abcdef0123456789" * 4,
            system="1",
            methods=("ipmi", "redfish"),
            ipmi_port=6230,
            timeout=2.5,
        ),
        dump=DumpConfig(target="ssh://kdump@198.51.100.5:2222/var/crash", layout="suse"),
        source=str(tmp_path / "a.toml"),
    )


def test_precedence_defaults_then_groups_in_listed_order_then_host(load):
    inv = load(
        "a.toml",
        """
        [defaults]
        bmc.username = "from-defaults"
        bmc.timeout = 1
        bmc.system = "from-defaults"
        dump.layout = "rhel"

        [groups.first]
        bmc.timeout = 2
        bmc.system = "from-first"
        dump.layout = "suse"

        [groups.second]
        bmc.system = "from-second"
        dump.layout = "debian"

        [hosts.a]
        groups = ["first", "undefined", "second"]
        bmc.address = "192.0.2.1"
        dump.layout = "auto"

        [hosts.b]
        groups = ["second", "first"]
        bmc.address = "192.0.2.2"

        [hosts.c]
        bmc.address = "192.0.2.3"
        """,
    )
    a, b, c = inv.hosts["a"], inv.hosts["b"], inv.hosts["c"]
    assert (a.bmc.username, a.bmc.timeout, a.bmc.system, a.dump.layout) == (
        "from-defaults",
        2.0,
        "from-second",
        "auto",
    )
    assert (b.bmc.system, b.dump.layout) == ("from-first", "suse")
    assert (c.bmc.username, c.bmc.timeout, c.bmc.system, c.dump.layout) == (
        "from-defaults",
        1.0,
        "from-defaults",
        "rhel",
    )
    # a group only named by a host is a membership, in the order hosts name it
    assert a.groups == ("first", "undefined", "second")
    assert inv.groups == {"first": ("a", "b"), "second": ("a", "b"), "undefined": ("a",)}


def test_sub_tables_and_dotted_keys_are_the_same(load):
    dotted = load(
        "dotted.toml", '[hosts.h]\nbmc.address = "192.0.2.1"\nbmc.kind = "xcc"\ndump.layout = "rhel"\n'
    )
    tables = load(
        "tables.toml",
        """
        [hosts.h.bmc]
        address = "192.0.2.1"
        kind = "xcc"
        [hosts.h.dump]
        layout = "rhel"
        """,
    )
    assert dotted.hosts["h"].bmc == tables.hosts["h"].bmc
    assert dotted.hosts["h"].dump == tables.hosts["h"].dump


def test_yaml_has_the_same_structure_nested_or_dotted(load, write):
    toml = load(
        "a.toml",
        """
        [defaults]
        bmc.username = "admin"
        [groups.web]
        bmc.kind = "ilo"
        [hosts.web01]
        groups = ["web"]
        bmc.address = "192.0.2.1"
        bmc.methods = ["redfish"]
        """,
    )
    yaml = load(
        "a.yaml",
        """
        defaults:
          bmc: {username: admin}
        groups:
          web:
            bmc.kind: ilo
        hosts:
          web01:
            groups: [web]
            bmc:
              address: 192.0.2.1
            bmc.methods: [redfish]
        """,
    )
    assert toml.hosts["web01"].bmc == yaml.hosts["web01"].bmc
    assert toml.hosts["web01"].groups == yaml.hosts["web01"].groups


def test_kind_ipmi_means_ipmi_only(load):
    inv = load(
        "a.toml",
        """
        [defaults]
        bmc.methods = ["redfish", "ipmi"]
        [hosts.old]
        bmc.kind = "ipmi"
        bmc.address = "192.0.2.1"
        """,
    )
    assert inv.hosts["old"].bmc.methods == ("ipmi",)
    assert inv.hosts["old"].bmc.effective_methods == ("ipmi",)


def test_kind_ipmi_with_methods_without_ipmi_is_an_error(load_error):
    path, message = load_error(
        "a.toml",
        """
        [hosts.old]
        bmc.kind = "ipmi"
        bmc.methods = ["redfish"]
        bmc.address = "192.0.2.1"
        """,
    )
    assert message == (
        f"{path}:3: host 'old': key 'bmc.methods': bmc.kind is 'ipmi' (IPMI only) but this list has no 'ipmi'"
    )


def test_defaults_and_groups_apply_to_their_own_file_only(write):
    a = write("a.toml", '[defaults]\nbmc.username = "a-user"\n[hosts.a1]\nbmc.address = "192.0.2.1"\n')
    b = write("b.toml", '[hosts.b1]\nbmc.address = "192.0.2.2"\n')
    inv = load_inventory([a, b])
    assert inv.hosts["a1"].bmc.username == "a-user"
    assert inv.hosts["b1"].bmc.username is None
    assert list(inv.hosts) == ["a1", "b1"]
    assert inv.files == (str(a), str(b))


def test_groups_merge_across_files_in_host_order(write):
    a = write("a.toml", '[hosts.a1]\ngroups = ["web"]\nbmc.address = "192.0.2.1"\n')
    b = write("b.yaml", "hosts:\n  b1: {groups: [web, db], bmc: {address: 192.0.2.2}}\n")
    inv = load_inventory([a, b])
    assert inv.groups == {"web": ("a1", "b1"), "db": ("b1",)}


# --- errors: FILE:LINE: CONTEXT: key 'KEY': PROBLEM --------------------------------------------


def test_unknown_key_in_a_host_names_file_line_host_key_and_suggests(load_error):
    path, message = load_error(
        "a.toml",
        """
        [hosts.web01]
        bmc.address = "192.0.2.1"
        bmc.pasword = "env:X"
        """,
    )
    assert message == f"{path}:3: host 'web01': key 'bmc.pasword': unknown key (did you mean 'bmc.password'?)"


def test_unknown_key_in_a_sub_table(load_error):
    path, message = load_error(
        "a.toml",
        """
        [hosts.web01]
        address = "192.0.2.1"

        [hosts.web01.bmc]
        address = "192.0.2.111"
        ipmiport = 623
        """,
    )
    assert (
        message == f"{path}:6: host 'web01': key 'bmc.ipmiport': unknown key (did you mean 'bmc.ipmi_port'?)"
    )


def test_unknown_key_without_a_close_match(load_error):
    path, message = load_error("a.toml", '[hosts.h]\nbmc.address = "x"\ncolour = "red"\n')
    assert message == f"{path}:3: host 'h': key 'colour': unknown key"


def test_unknown_key_in_yaml_names_its_line(load_error):
    path, message = load_error(
        "a.yaml",
        """
        hosts:
          web01:
            bmc:
              address: 192.0.2.1
              usrname: admin
        """,
    )
    assert message == f"{path}:5: host 'web01': key 'bmc.usrname': unknown key (did you mean 'bmc.username'?)"


def test_unknown_key_in_defaults_and_in_a_group(load_error):
    path, message = load_error(
        "a.toml", '[defaults]\ndump.targt = "file:///x"\n[hosts.h]\nbmc.address = "x"\n'
    )
    assert message == f"{path}:2: defaults: key 'dump.targt': unknown key (did you mean 'dump.target'?)"
    path, message = load_error("b.toml", '[groups.web]\nbmc.knd = "ilo"\n[hosts.h]\nbmc.address = "x"\n')
    assert message == f"{path}:2: group 'web': key 'bmc.knd': unknown key (did you mean 'bmc.kind'?)"


def test_bmc_must_be_a_table(load_error):
    path, message = load_error("a.toml", '[hosts.h]\nbmc = "192.0.2.1"\n')
    assert message == f"{path}:2: host 'h': key 'bmc': expected a table of bmc.* settings, got a string"


def test_host_keys_are_refused_in_defaults(load_error):
    path, message = load_error("a.toml", '[defaults]\naddress = "192.0.2.1"\n[hosts.h]\nbmc.address = "x"\n')
    assert message == f"{path}:2: defaults: key 'address': only allowed in a host"


def test_unknown_top_level_key(load_error):
    path, message = load_error("a.toml", '[host.web01]\nbmc.address = "x"\n')
    assert message == (
        f"{path}:1: key 'host': unknown top-level key (did you mean 'hosts'?); expected defaults, groups and hosts"
    )


def test_missing_bmc_address_names_file_line_and_host(load_error):
    path, message = load_error(
        "a.toml",
        """
        [hosts.ok]
        bmc.address = "192.0.2.1"

        [hosts.web02]
        address = "192.0.2.12"
        """,
    )
    assert (
        message
        == f"{path}:4: host 'web02': key 'bmc.address': missing: every host needs the address of its BMC"
    )


def test_missing_bmc_address_in_yaml_for_a_host_without_settings(load_error):
    path, message = load_error("a.yaml", "hosts:\n  web01:\n")
    assert (
        message
        == f"{path}:2: host 'web01': key 'bmc.address': missing: every host needs the address of its BMC"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            'bmc.kind = "hp"',
            "expected one of auto, redfish, ilo, idrac, openbmc, supermicro, xcc, ipmi, libvirt, esxi; got 'hp'",
        ),
        (
            'bmc.kind = "idrak"',
            "expected one of auto, redfish, ilo, idrac, openbmc, supermicro, xcc, ipmi, libvirt, esxi; got 'idrak' (did you mean 'idrac'?)",
        ),
        (
            "bmc.kind = 3",
            "expected one of auto, redfish, ilo, idrac, openbmc, supermicro, xcc, ipmi, libvirt, esxi; got an integer",
        ),
        ('bmc.verify = "yes"', "expected true or false, got a string"),
        ("bmc.ipmi_port = 0", "expected a port number from 1 to 65535, got 0"),
        ("bmc.ipmi_port = 65536", "expected a port number from 1 to 65535, got 65536"),
        ('bmc.ipmi_port = "623"', "expected a port number from 1 to 65535, got a string"),
        ("bmc.ipmi_port = true", "expected a port number from 1 to 65535, got a boolean"),
        ("bmc.timeout = 0", "expected a number of seconds greater than 0, got 0"),
        ("bmc.timeout = -1.5", "expected a number of seconds greater than 0, got -1.5"),
        ("bmc.timeout = nan", "expected a number of seconds greater than 0, got nan"),
        ('bmc.timeout = "15s"', "expected a number of seconds, got a string"),
        (
            'bmc.methods = "redfish"',
            'expected a list of methods from redfish, ipmi, got a string (write ["redfish"])',
        ),
        ("bmc.methods = []", "expected a list of methods from redfish, ipmi, got an empty list"),
        (
            'bmc.methods = ["redfish", "ipmii"]',
            "unknown method 'ipmii'; expected redfish, ipmi (did you mean 'ipmi'?)",
        ),
        ('bmc.methods = ["ssh"]', "unknown method 'ssh'; expected redfish, ipmi"),
        ("bmc.methods = [1]", "expected a list of methods from redfish, ipmi, item 1 is an integer"),
        ('bmc.username = ""', "expected a string, got an empty string"),
        ("bmc.username = 1970-01-01", "expected a string, got a date/time"),
        ("bmc.system = []", "expected a string, got a list"),
        ("bmc.ca_file = 1", "expected a path to a PEM file, got an integer"),
        ('dump.layout = "ubuntu"', "expected one of auto, rhel, suse, debian; got 'ubuntu'"),
        (
            'aliases = "web01.example.com"',
            'expected a list of strings, got a string (write ["web01.example.com"])',
        ),
        ('aliases = ["a", ""]', "expected a list of strings, item 2 is empty"),
        ('aliases = ["a b"]', "expected a list of strings, item 1 ('a b') has spaces"),
        (
            'groups = ["web", "all"]',
            "group name 'all' is not valid (letters, digits, '_', '.', '-' and ':' only; 'all' is reserved)",
        ),
        ('groups = ["we b"]', "expected a list of group names, item 1 ('we b') has spaces"),
        ('address = "192.0.2.1 "', "expected an IP address or host name, got one with spaces"),
    ],
)
def test_bad_values_say_what_was_expected(load_error, line, problem):
    key = line.split(" = ")[0]
    path, message = load_error("a.toml", f'[hosts.h]\nbmc.address = "192.0.2.1"\n{line}\n')
    assert message == f"{path}:3: host 'h': key '{key}': {problem}"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("AB:CD", "got 4 hex digits (is it a SHA-1 or MD5 fingerprint?)"),
        ("00" * 20, "got 40 hex digits (is it a SHA-1 or MD5 fingerprint?)"),
        ("zz" * 32, "got a value with characters other than hex digits and colons"),
        ("", "got an empty string"),
    ],
)
def test_bad_fingerprints(load_error, value, problem):
    path, message = load_error("a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.fingerprint = "{value}"\n')
    assert (
        message
        == f"{path}:3: host 'h': key 'bmc.fingerprint': expected a SHA-256 fingerprint (64 hex digits, colons allowed), {problem}"
    )


def test_fingerprint_forms_are_normalised(load):
    digest = "0123456789abcdef" * 4
    upper = ":".join(digest[i : i + 2] for i in range(0, 64, 2)).upper()
    inv = load(
        "a.toml",
        f'[hosts.a]\nbmc.address = "x"\nbmc.fingerprint = "{upper}"\n[hosts.b]\nbmc.address = "y"\nbmc.fingerprint = "sha256:{digest}"\n',
    )
    assert inv.hosts["a"].bmc.fingerprint == digest
    assert inv.hosts["b"].bmc.fingerprint == digest


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.1",
        "bmc01.example.com",
        "https://192.0.2.1",
        "https://192.0.2.1:8443",
        "http://127.0.0.1:8000",
        "https://[2001:db8::1]:443",
        "192.0.2.1:8443",
    ],
)
def test_good_bmc_addresses(load, address):
    inv = load("a.toml", f'[hosts.h]\nbmc.address = "{address}"\n')
    assert inv.hosts["h"].bmc.address == address


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        (
            "ftp://192.0.2.1",
            "expected https://HOST[:PORT], an IP address or a host name; only https:// and http:// URLs are allowed",
        ),
        (
            "https://192.0.2.1:99999",
            "expected https://HOST[:PORT], an IP address or a host name; the port is not a number from 1 to 65535",
        ),
        ("https://", "expected https://HOST[:PORT], an IP address or a host name; no host name in it"),
        ("2001:db8::1", "write an IPv6 BMC address in brackets: https://[ADDRESS]"),
        (
            "https://admin:Hunter2@192.0.2.1",
            "do not put credentials in the BMC address; use bmc.username and bmc.password",
        ),
        ("bmc 01", "expected https://HOST[:PORT], an IP address or a host name, got one with spaces"),
    ],
)
def test_bad_bmc_addresses(load_error, address, problem):
    path, message = load_error("a.toml", f'[hosts.h]\nbmc.address = "{address}"\n')
    assert message == f"{path}:2: host 'h': key 'bmc.address': {problem}"
    assert "Hunter2" not in message


@pytest.mark.parametrize(
    "target",
    [
        "ssh://root@dumpsrv.example.com/var/crash",
        "ssh://kdump@192.0.2.5:2222/srv/crash",
        "file:///mnt/crash",
        "file://localhost/mnt/crash",
    ],
)
def test_good_dump_targets(load, target):
    inv = load("a.toml", f'[hosts.h]\nbmc.address = "x"\ndump.target = "{target}"\n')
    assert inv.hosts["h"].dump.target == target


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("/var/crash", "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH"),
        ("nfs://server/export", "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH"),
        (
            "ssh://dumpsrv/var/crash",
            "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH; the user is missing",
        ),
        (
            "ssh://root@/var/crash",
            "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH; the server is missing",
        ),
        ("ssh://root@dumpsrv", "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH; the path is missing"),
        (
            "ssh://root@dumpsrv:0x16/var/crash",
            "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH; the port is not a number from 1 to 65535",
        ),
        ("ssh://root:Hunter2@dumpsrv/var/crash", "do not put a password in the dump target; ssh uses keys"),
        (
            "file://mnt/crash",
            "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH; a file target is an absolute path: file:///mnt/crash",
        ),
        (
            "file:///mnt/crash?x=1",
            "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH; no '?' or '#' parts",
        ),
    ],
)
def test_bad_dump_targets(load_error, target, problem):
    path, message = load_error("a.toml", f'[hosts.h]\nbmc.address = "x"\ndump.target = "{target}"\n')
    assert message == f"{path}:3: host 'h': key 'dump.target': {problem}"
    assert "Hunter2" not in message


def test_a_bad_value_in_a_group_names_the_group(load_error):
    path, message = load_error(
        "a.yaml",
        """
        groups:
          web:
            bmc:
              verify: maybe
        hosts:
          web01: {groups: [web], bmc: {address: x}}
        """,
    )
    assert message == f"{path}:4: group 'web': key 'bmc.verify': expected true or false, got a string"


def test_a_key_given_nested_and_dotted_is_set_twice(load_error):
    path, message = load_error(
        "a.yaml",
        """
        hosts:
          h:
            bmc: {address: x}
            bmc.address: y
        """,
    )
    assert message == f"{path}:4: host 'h': key 'bmc.address': set twice"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("web,01", "'web,01'"), ("web*", "'web*'"), ("all", "'all'"), ("@db", "'@db'"), ("", "''")],
)
def test_host_names_that_selectors_cannot_address_are_refused(load_error, name, shown):
    path, message = load_error("a.toml", f'[hosts."{name}"]\nbmc.address = "x"\n')
    assert (
        message
        == f"{path}:1: host name {shown} is not valid (letters, digits, '_', '.', '-' and ':' only; 'all' is reserved)"
    )


def test_a_host_that_is_not_a_table(load_error):
    path, message = load_error("a.yaml", "hosts:\n  h: [1, 2]\n")
    assert message == f"{path}:2: host 'h': expected a table of settings, got a list"


def test_numeric_yaml_host_names_are_names(load):
    inv = load("a.yaml", "hosts:\n  1234:\n    bmc.address: x\n")
    assert list(inv.hosts) == ["1234"]


def test_duplicate_host_across_files_names_both_files(write):
    a = write("a.toml", '[hosts.web01]\nbmc.address = "x"\n')
    b = write("b.yaml", "hosts:\n  other: {bmc.address: y}\n  web01: {bmc.address: z}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory([a, b])
    assert str(info.value) == f"{b}:3: host 'web01' is already defined in {a}:1"


def test_duplicate_host_in_one_yaml_file(load_error):
    path, message = load_error("a.yaml", "hosts:\n  web01: {bmc.address: x}\n  web01: {bmc.address: y}\n")
    assert message == f"{path}:3: YAML syntax error: duplicate key 'web01'"


def test_duplicate_host_in_one_toml_file(load_error):
    path, message = load_error(
        "a.toml", '[hosts.web01]\nbmc.address = "x"\n[hosts.web01]\nbmc.address = "y"\n'
    )
    # tomllib's wording may change between Python versions; the file, line and kind may not
    assert message.startswith(f"{path}:3: TOML syntax error: ")
    assert "twice" in message


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.toml", ""),
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing yet\n"),
        ("empty-map.yaml", "{}\n"),
    ],
)
def test_an_empty_inventory_is_an_error(load_error, name, text):
    path, message = load_error(name, text)
    assert message == f"{path}: empty inventory: no hosts"


def test_an_inventory_without_hosts_is_an_error(load_error):
    path, message = load_error("a.toml", '[defaults]\nbmc.username = "admin"\n')
    assert message == f"{path}: no hosts in this inventory (add a [hosts.NAME] table)"
    path, message = load_error("b.yaml", "hosts: {}\n")
    assert message == f"{path}: no hosts in this inventory (add a [hosts.NAME] table)"


def test_no_paths_at_all():
    with pytest.raises(InventoryError, match=r"^no inventory: use -i FILE or set OOB_INVENTORY$"):
        load_inventory([])


def test_paths_may_be_strings(write):
    path = write("a.toml", MINIMAL)
    assert list(load_inventory([str(path)]).hosts) == ["web01"]


def test_relative_paths_are_relative_to_the_inventory_file(write, tmp_path, monkeypatch):
    path = write(
        "site/inv.toml",
        '[hosts.h]\nbmc.address = "x"\nbmc.ca_file = "../certs/ca.pem"\nbmc.password = "file:h.pw"\n',
    )
    monkeypatch.chdir(Path("/"))
    host = load_inventory([path]).hosts["h"]
    assert host.bmc.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert host.bmc.password == SecretRef("file", str(tmp_path / "site" / "h.pw"))


def test_probe_forms(load, load_error):
    inv = load(
        "p.toml",
        """
        [defaults]
        bmc.address = "192.0.2.100"
        probe = "ssh:2222"
        [hosts.a]
        [hosts.b]
        probe = "tcp:192.0.2.7:22"
        """,
    )
    assert inv.hosts["a"].probe == "ssh:2222"
    assert inv.hosts["b"].probe == "tcp:192.0.2.7:22"
    for bad in ("http:22", "tcp:", "tcp:99999", "tcp::22"):
        _, message = load_error("q.toml", f'[hosts.a]\nbmc.address = "192.0.2.1"\nprobe = "{bad}"\n')
        assert "host 'a': key 'probe': expected ssh:PORT or tcp:PORT" in message


def test_notify_lists(load, load_error):
    inv = load(
        "n.toml",
        """
        [defaults]
        bmc.address = "192.0.2.100"
        notify = ["slack=env:SLACK_OPS"]
        [groups.storage]
        notify = ["slack=env:SLACK_STORAGE", "pagerduty=env:PD_STORAGE"]
        [hosts.a]
        [hosts.b]
        groups = ["storage"]
        """,
    )
    assert inv.hosts["a"].notify == ("slack=env:SLACK_OPS",)
    assert inv.hosts["b"].notify == ("slack=env:SLACK_STORAGE", "pagerduty=env:PD_STORAGE")
    _, message = load_error(
        "m.toml", '[hosts.a]\nbmc.address = "192.0.2.1"\nnotify = ["slack=https://hooks.example.com/T/B/X"]\n'
    )
    assert "notify" in message and "give a reference" in message
    assert "hooks.example.com" not in message
