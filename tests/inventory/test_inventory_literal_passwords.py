"""A literal password may sit in an owner-only inventory; its value never appears anywhere."""

from __future__ import annotations

import logging

import pytest

from oob.errors import InventoryError
from oob.inventory import load_inventory
from oob.model import SecretRef
from oob.secrets import resolve_secret

SECRET = "S3cr3t-Pa55"


def test_literal_in_an_owner_only_file_is_accepted_and_hidden(load):
    inv = load("a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.password = "{SECRET}"\n', mode=0o600)
    host = inv.hosts["h"]
    assert host.bmc.password == SecretRef("literal", SECRET)
    assert resolve_secret(host.bmc.password, host="h") == SECRET
    for text in (
        repr(host),
        str(host),
        repr(host.bmc),
        repr(host.bmc.password),
        str(host.to_dict()),
        repr(inv.hosts),
    ):
        assert SECRET not in text
    assert "<literal>" in repr(host)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_literal_in_a_file_others_can_read_is_refused(load_error, mode):
    path, message = load_error(
        "a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.password = "{SECRET}"\n', mode=mode
    )
    assert message == (
        f"{path}:3: host 'h': key 'bmc.password': a literal password is only allowed in a file that group and "
        f"others cannot read (this one has mode {mode:04o}); use env:VAR or file:PATH, or run: chmod 600 {path}"
    )
    assert SECRET not in message


def test_literal_in_defaults_of_a_yaml_file_is_refused_with_its_line(load_error):
    path, message = load_error(
        "a.yaml",
        f"""
        defaults:
          bmc:
            password: {SECRET}
        hosts:
          h: {{bmc: {{address: x}}}}
        """,
        mode=0o644,
    )
    assert message.startswith(f"{path}:3: defaults: key 'bmc.password': a literal password is only allowed")
    assert SECRET not in message


def test_references_are_fine_in_a_readable_file(load):
    inv = load("a.toml", '[hosts.h]\nbmc.address = "x"\nbmc.password = "env:OOB_PW"\n', mode=0o644)
    assert inv.hosts["h"].bmc.password == SecretRef("env", "OOB_PW")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            f"evn:{SECRET}",
            "looks like a mistyped reference (did you mean 'env:'?); use env:VAR, file:PATH or keyring:SERVICE/USER",
        ),
        (
            f"File:{SECRET}",
            "looks like a mistyped reference (did you mean 'file:'?); use env:VAR, file:PATH or keyring:SERVICE/USER",
        ),
        ("env:OOB-PW", "env:OOB-PW: expected env:VARIABLE_NAME (letters, digits and '_')"),
        ("keyring:oob", "keyring:oob: expected keyring:SERVICE/USER"),
        ("file:", "file: needs a path (file:PATH)"),
        ("", "the password is empty"),
    ],
)
def test_bad_references(load_error, value, problem):
    path, message = load_error("a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.password = "{value}"\n')
    assert message == f"{path}:3: host 'h': key 'bmc.password': {problem}"
    assert SECRET not in message


def test_a_password_of_the_wrong_type_is_not_shown(load_error):
    path, message = load_error("a.yaml", "hosts:\n  h:\n    bmc.address: x\n    bmc.password: 8675309\n")
    assert message == (
        f"{path}:4: host 'h': key 'bmc.password': expected a string (env:VAR, file:PATH or "
        "keyring:SERVICE/USER), got an integer"
    )
    assert "8675309" not in message


def test_syntax_errors_do_not_quote_the_password_line(load_error):
    _, message = load_error("a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.password = "{SECRET}\n')
    assert SECRET not in message
    _, message = load_error("a.yaml", f"hosts:\n  h:\n    bmc.password: '{SECRET}\n")
    assert SECRET not in message
    _, message = load_error("b.yaml", f"hosts:\n  h:\n    bmc.password: {SECRET}: {SECRET}\n")
    assert SECRET not in message


def test_other_errors_in_a_host_with_a_literal_do_not_show_it(load_error):
    _, message = load_error(
        "a.toml", f'[hosts.h]\nbmc.password = "{SECRET}"\nbmc.kind = "nope"\nbmc.address = "x"\n'
    )
    assert "key 'bmc.kind'" in message and SECRET not in message
    _, message = load_error("b.toml", f'[hosts.h]\nbmc.password = "{SECRET}"\n')
    assert "key 'bmc.address': missing" in message and SECRET not in message


def test_nothing_is_logged_with_the_value(load, caplog):
    caplog.set_level(logging.DEBUG)
    inv = load("a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.password = "{SECRET}"\n')
    resolve_secret(inv.hosts["h"].bmc.password, host="h")
    assert SECRET not in caplog.text


def test_the_exception_chain_holds_no_value(load_error, write):
    path = write("a.toml", f'[hosts.h]\nbmc.address = "x"\nbmc.password = "{SECRET}"\n', mode=0o644)
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    error = info.value
    seen = []
    while error is not None:
        seen.append(repr(error) + str(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert seen and all(SECRET not in text for text in seen)
