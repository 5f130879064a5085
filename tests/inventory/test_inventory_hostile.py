"""Hostile inventories: every one is a single-line InventoryError (exit 2) naming the file, the
host and the key where it can; never another exception, never an unbounded amount of work."""

from __future__ import annotations

import pytest

from oob.errors import InventoryError, SecretError
from oob.inventory import load_inventory
from oob.inventory.files import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from oob.model import SecretRef
from oob.safetext import is_printable
from oob.secrets import MAX_SECRET_FILE_BYTES, resolve_secret

BMC = 'bmc.address = "192.0.2.1"\n'


def toml_host(line: str) -> str:
    """The line is line 4, in host 'h'."""
    return f"[defaults]\n{BMC}[hosts.h]\n{line}\n"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('bmc.address = "https://[::1"', "it is not a valid URL (only an IPv6 address goes in [brackets])"),
        (
            'bmc.address = "https://[bmc01]"',
            "it is not a valid URL (only an IPv6 address goes in [brackets])",
        ),
        ('bmc.address = "https://bmc:0"', "the port is not a number from 1 to 65535"),
        ('bmc.address = "https://bmc:65536"', "the port is not a number from 1 to 65535"),
        ('bmc.address = "https://bmc:"', "the port is not a number from 1 to 65535"),
        ('bmc.address = "https://bmc:https"', "the port is not a number from 1 to 65535"),
        ('bmc.address = "https://admin@bmc"', "do not put credentials in the BMC address"),
        ('bmc.address = "https://bmc\u00e9.example.com"', "got one with a non-ASCII character"),
        ('bmc.address = "https://bmc_%41"', "the host is not a valid host name"),
        ('bmc.address = "999.1.1.1"', "the host is not a valid IPv4 address"),
        ('bmc.address = "https://bmc/?x=1"', "no '?' or '#' parts"),
        ('bmc.address = ["192.0.2.1"]', "got a list"),
        ('dump.target = "ssh://root@dump[01:3]srv/var/crash"', "it is not a valid URL"),
        ('dump.target = "ssh://root@dumpsrv:0/var/crash"', "the port is not a number from 1 to 65535"),
        ('dump.target = "ssh://root@dumpsrv:99999/var/crash"', "the port is not a number from 1 to 65535"),
        ('dump.target = "ssh://r%00t@dumpsrv/var/crash"', "the user is not a user name"),
        ('dump.target = "ssh://root@dümpsrv/var/crash"', "the user and server must be ASCII"),
        ('dump.target = "ssh://root@dump..srv/var/crash"', "the server is not a valid host name"),
        ('address = "web\u00e901"', "got one with a non-ASCII character"),
        ('address = "1.2.3.4.5"', "not a valid IPv4 address"),
        ('aliases = ["w\u00e9b01"]', "item 1 has a non-ASCII or control character"),
        ('probe = "ssh:\u0662\u0662"', "got one with a non-ASCII character"),
        ('probe = "ssh:' + "9" * 5000 + '"', "the port is not a number from 1 to 65535"),
        ('probe = "tcp:bad..name:22"', "the address is not a valid host name"),
        ("bmc.timeout = 1e308", "expected a number of seconds from 0.5 to 600, got 1e+308"),
        ("bmc.timeout = 1e-6", "expected a number of seconds from 0.5 to 600, got 1e-06"),
        ("bmc.timeout = 601", "expected a number of seconds from 0.5 to 600, got 601"),
        ("bmc.timeout = inf", "expected a number of seconds greater than 0, got inf"),
        ("bmc.timeout = true", "expected a number of seconds, got a boolean"),
        ("ssh.port = 0", "expected a port number from 1 to 65535, got 0"),
        ("ssh.port = 1e3", "expected a port number from 1 to 65535, got a number"),
        ('bmc.username = "ad\\u0000min"', "the text has a control or invisible character"),
        ('bmc.system = "\\u202eSystem.1"', "the text has a control or invisible character"),
    ],
)
def test_bad_values_are_one_line_naming_file_host_and_key(load_error, line, problem):
    path, message = load_error("a.toml", toml_host(line))
    key = line.split(" = ")[0]
    assert message.startswith(f"{path}:4: host 'h': key '{key}': ")
    assert problem in message
    assert is_printable(message)


def test_a_home_directory_of_no_user_is_a_path_not_a_crash(load):
    # Path.expanduser raises RuntimeError for "~nosuchuser"; it is a relative path like any other
    inv = load(
        "a.toml",
        toml_host('bmc.ca_file = "~oob-no-such-user/ca.pem"\nbmc.password = "file:~oob-no-such-user/pw"'),
    )
    host = inv.hosts["h"]
    assert host.bmc.ca_file.endswith("~oob-no-such-user/ca.pem")
    assert host.bmc.password.location.endswith("~oob-no-such-user/pw")


def test_credentials_in_an_address_are_never_shown(load_error):
    _, message = load_error("a.toml", toml_host('bmc.address = "https://admin:s3cret@[::1"'))
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # NUL, ESC and bidi characters: in a key, in a value, raw in the YAML text
        (
            "a.yaml",
            'hosts:\n  h:\n    bmc.address: "1.2\\x00.3.4"\n',
            ":3: host 'h': key 'bmc.address': the text has",
        ),
        (
            "a.yaml",
            "hosts:\n  h:\n    bmc.address: x\n    bmc.username: a\x01b\n",
            ":4: YAML syntax error: a control",
        ),
        (
            "a.toml",
            '[hosts.h]\nbmc.address = "x"\n"bmc.k\\u001b[2J" = 1\n',
            "key 'bmc.k\\x1b[2J': the key has",
        ),
        ("a.yaml", 'hosts:\n  "h\\e":\n    bmc.address: x\n', "key 'hosts.h\\x1b': the key has"),
        (
            "a.yaml",
            'hosts:\n  h:\n    bmc.address: x\n    "a\\u202e": 1\n    "a\\u202e": 2\n',
            ":5: YAML syntax error: duplicate key 'a\\u202e'",
        ),
        # numbers Python's int() refuses, dates that do not exist, tags that do not fit
        (
            "a.yaml",
            "hosts:\n  h:\n    bmc.address: x\n    bmc.timeout: " + "9" * 5000 + "\n",
            ":4: YAML syntax error",
        ),
        (
            "a.toml",
            "[hosts.h]\nbmc.address = 'x'\nbmc.timeout = " + "9" * 5000 + "\n",
            "a number has too many digits",
        ),
        (
            "a.yaml",
            "hosts:\n  h:\n    bmc.address: x\n    bmc.username: 2020-13-45\n",
            ":4: YAML syntax error",
        ),
        (
            "a.yaml",
            "hosts:\n  h:\n    bmc.address: x\n    bmc.username: !!timestamp x\n",
            ":4: YAML syntax error",
        ),
        (
            "a.yaml",
            "hosts:\n  h:\n    bmc.address: x\n    bmc.username: !!float x\n",
            ":4: YAML syntax error",
        ),
        # nesting
        ("a.yaml", "hosts: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH} deep"),
        ("a.toml", "hosts = " + "[" * 5000 + "]" * 5000 + "\n", "TOML syntax error: nested too deep"),
        ("a.toml", "[" + ".".join(["k"] * 500) + "]\n", f"nested more than {MAX_DEPTH} deep"),
        (
            "a.yaml",
            "hosts: &h\n  h: {bmc.address: x, bmc: *h}\n",
            "the table contains itself (recursive YAML alias)",
        ),
        # Ansible host ranges: counted before they are expanded
        (
            "h.yaml",
            "all:\n  hosts:\n    web[0:99999999]:\n",
            "gives 100000000 hosts; one file lists at most 100000",
        ),
        ("h.yaml", "all:\n  hosts:\n    'w[0:999][0:999]':\n", "gives 1000000 hosts"),
        ("h.yaml", "all:\n  hosts:\n    'w[0:" + "9" * 1000 + "]':\n", "the end has more than 18 digits"),
        ("h.yaml", "all:\n  hosts:\n    'w[\u0661:\u0662]':\n", "the start has a digit other than 0-9"),
        ("h.yaml", "all:\n  hosts:\n    'w[1:2:\u0661]':\n", "the step must be a positive integer"),
    ],
)
def test_hostile_files(load_error, name, text, expected):
    path, message = load_error(name, text)
    assert message.startswith(str(path))
    assert expected in message
    assert is_printable(message)


def test_line_breaks_and_tabs_are_text_but_not_in_oob_keys(load, load_error):
    # Ansible variables oob does not read may be blocks of lines
    inv = load(
        "h.yaml", "all:\n  vars:\n    motd: |\n      one\n      \ttwo\n  hosts:\n    h: {bmc_address: x}\n"
    )
    assert list(inv.hosts) == ["h"]
    _, message = load_error("a.yaml", 'hosts:\n  h: {bmc.address: x, bmc.username: "a\\nb"}\n')
    assert "key 'bmc.username': expected a string, got one with a control or invisible character" in message


def test_billion_laughs_is_refused_before_it_is_expanded(load_error):
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    text += "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    _, message = load_error("lol.yaml", text)
    assert f"more than {MAX_VALUES} values (YAML aliases count at each use)" in message


def test_a_merge_key_bomb_is_refused_before_it_is_expanded(load_error):
    text = "a0: &a0 {" + ", ".join(f"k{i}: 1" for i in range(10)) + "}\n"
    text += "".join(f"a{i}: &a{i}\n  <<: [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    _, message = load_error("merge.yaml", text)
    assert f"more than {MAX_VALUES} values" in message


def test_a_file_over_the_size_cap(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InventoryError, match=r"larger than 16 MiB; split the inventory$"):
        load_inventory([path])


def test_not_a_regular_file(tmp_path):
    link = tmp_path / "null.toml"
    link.symlink_to("/dev/null")
    with pytest.raises(InventoryError, match=r"null.toml: not a regular file$"):
        load_inventory([link])


def test_a_long_chain_of_groups_is_bounded(load_error):
    # a chain made of top-level entries: as long as the file allows, not as deep as its nesting
    text = "".join(f"g{i}:\n  children:\n    g{i + 1}:\n" for i in range(1500))
    text += "g1500:\n  hosts:\n    h: {bmc_address: x}\n"
    _, message = load_error("chain.yaml", text)
    assert "the group is inside more than 1000 groups" in message


def test_a_deep_but_allowed_chain_of_groups_loads(load):
    text = "".join(f"g{i}:\n  children:\n    g{i + 1}:\n" for i in range(300))
    text += "g300:\n  hosts:\n    h: {bmc_address: x}\n"
    inv = load("chain.yaml", text)
    assert len(inv.hosts["h"].groups) == 301


def test_long_names_are_cut_in_messages(load_error):
    name = "x" * 5000
    _, message = load_error("a.toml", f"[hosts.{name}]\n{BMC}")
    assert "is longer than 255 characters" in message
    assert len(message) < 600


def test_a_password_file_is_read_only_up_to_its_cap(tmp_path):
    path = tmp_path / "huge.pw"
    with open(path, "wb") as handle:
        handle.truncate(MAX_SECRET_FILE_BYTES + 1)
    path.chmod(0o600)
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("file", str(path)), host="web01")
    assert str(info.value) == f"web01: password file:{path}: the file is larger than 64 KiB: not a password"
    assert info.value.exit_code == 2
