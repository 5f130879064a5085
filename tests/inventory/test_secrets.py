"""Credential references: parsing, resolving env/file/keyring, and messages that never hold a value."""

from __future__ import annotations

from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from oob.errors import SecretError
from oob.inventory import check_secrets, load_inventory
from oob.model import SecretRef
from oob.secrets import parse_secret_ref, resolve_secret

VALUE = "Pa55-w0rd!"


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self, entries: dict[tuple[str, str], str] | None = None) -> None:
        super().__init__()
        self.entries = dict(entries or {})

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("D-Bus is not running")


@pytest.fixture
def use_keyring():
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


def secret_error(ref: SecretRef, host: str = "web01") -> str:
    with pytest.raises(SecretError) as info:
        resolve_secret(ref, host=host)
    message = str(info.value)
    assert "\n" not in message
    assert VALUE not in message
    assert info.value.host == host
    assert info.value.exit_code == 2
    return message


# --- parse_secret_ref ------------------------------------------------------------------------


def test_parse_references(tmp_path):
    assert parse_secret_ref("env:OOB_PW") == SecretRef("env", "OOB_PW")
    assert parse_secret_ref("keyring:oob/bmc/admin") == SecretRef("keyring", "oob/bmc/admin")
    assert parse_secret_ref("file:/etc/oob/pw") == SecretRef("file", "/etc/oob/pw")
    assert parse_secret_ref("file:pw/../web01.pw", base_dir=tmp_path) == SecretRef(
        "file", str(tmp_path / "web01.pw")
    )
    assert parse_secret_ref("file:~/pw") == SecretRef("file", str(Path.home() / "pw"))
    assert parse_secret_ref(VALUE) == SecretRef("literal", VALUE)
    # a colon later in a literal is part of the password
    assert parse_secret_ref("ab:cd:ef").scheme == "literal"


def test_relative_file_without_base_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_secret_ref("file:pw") == SecretRef("file", str(tmp_path / "pw"))


def test_literal_reference_never_prints_its_value():
    ref = parse_secret_ref(VALUE)
    assert VALUE not in repr(ref) and VALUE not in str(ref) and VALUE not in ref.describe()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env:", "env:: expected env:VARIABLE_NAME (letters, digits and '_')"),
        ("env:1X", "env:1X: expected env:VARIABLE_NAME (letters, digits and '_')"),
        ("keyring:/admin", "keyring:/admin: expected keyring:SERVICE/USER"),
        ("keyring:oob/", "keyring:oob/: expected keyring:SERVICE/USER"),
        ("file: ", "file: needs a path (file:PATH)"),
        ("", "the password is empty"),
        (
            f"ENV:{VALUE}",
            "looks like a mistyped reference (did you mean 'env:'?); use env:VAR, file:PATH or keyring:SERVICE/USER",
        ),
        (
            f"keyrng:{VALUE}",
            "looks like a mistyped reference (did you mean 'keyring:'?); use env:VAR, file:PATH or keyring:SERVICE/USER",
        ),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(SecretError) as info:
        parse_secret_ref(text)
    assert str(info.value) == message
    assert VALUE not in str(info.value)


# --- env ---------------------------------------------------------------------------------------


def test_env(monkeypatch):
    monkeypatch.setenv("OOB_TEST_PW", VALUE)
    assert resolve_secret(SecretRef("env", "OOB_TEST_PW"), host="web01") == VALUE


def test_env_missing(monkeypatch):
    monkeypatch.delenv("OOB_TEST_PW", raising=False)
    assert secret_error(SecretRef("env", "OOB_TEST_PW")) == (
        "web01: password env:OOB_TEST_PW: environment variable OOB_TEST_PW is not set"
    )


def test_env_empty(monkeypatch):
    monkeypatch.setenv("OOB_TEST_PW", "")
    assert secret_error(SecretRef("env", "OOB_TEST_PW")) == (
        "web01: password env:OOB_TEST_PW: environment variable OOB_TEST_PW is empty"
    )


# --- file --------------------------------------------------------------------------------------


def secret_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "bmc.pw"
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "value"),
    [
        (VALUE.encode(), VALUE),
        (f"{VALUE}\n".encode(), VALUE),
        (f"{VALUE}\r\n".encode(), VALUE),
        (f"{VALUE}\n\n".encode(), f"{VALUE}\n"),  # only one newline is stripped
        (f" {VALUE} \n".encode(), f" {VALUE} "),  # spaces are part of the password
    ],
)
def test_file(tmp_path, content, value):
    path = secret_file(tmp_path, content)
    assert resolve_secret(SecretRef("file", str(path)), host="web01") == value


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o620])
def test_file_accessible_by_others_is_refused(tmp_path, mode):
    path = secret_file(tmp_path, VALUE.encode(), mode)
    assert secret_error(SecretRef("file", str(path))) == (
        f"web01: password file:{path}: group or others can access the file (mode {mode:04o}); run: chmod 600 {path}"
    )


def test_file_owner_read_only_is_fine(tmp_path):
    path = secret_file(tmp_path, VALUE.encode(), 0o400)
    assert resolve_secret(SecretRef("file", str(path)), host="web01") == VALUE


def test_file_missing(tmp_path):
    path = tmp_path / "nope.pw"
    assert secret_error(SecretRef("file", str(path))) == f"web01: password file:{path}: no such file"


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_file_empty(tmp_path, content):
    path = secret_file(tmp_path, content)
    assert secret_error(SecretRef("file", str(path))) == f"web01: password file:{path}: the file is empty"


def test_file_is_a_directory(tmp_path):
    assert (
        secret_error(SecretRef("file", str(tmp_path)))
        == f"web01: password file:{tmp_path}: is a directory, not a file"
    )


def test_file_unreadable(tmp_path, deny_read):
    path = secret_file(tmp_path, VALUE.encode())
    deny_read(path)
    assert secret_error(SecretRef("file", str(path))) == (
        f"web01: password file:{path}: cannot read the file: permission denied"
    )


def test_file_not_utf8(tmp_path):
    path = secret_file(tmp_path, b"\xff\xfe")
    assert (
        secret_error(SecretRef("file", str(path)))
        == f"web01: password file:{path}: the file is not UTF-8 text"
    )


# --- keyring -----------------------------------------------------------------------------------


def test_keyring(use_keyring):
    use_keyring(MemoryKeyring({("oob-bmc", "admin"): VALUE}))
    assert resolve_secret(SecretRef("keyring", "oob-bmc/admin"), host="web01") == VALUE


def test_keyring_service_may_contain_a_slash(use_keyring):
    use_keyring(MemoryKeyring({("oob/bmc", "admin"): VALUE}))
    assert resolve_secret(parse_secret_ref("keyring:oob/bmc/admin"), host="web01") == VALUE


def test_keyring_without_the_entry(use_keyring):
    use_keyring(MemoryKeyring({("oob-bmc", "root"): VALUE}))
    assert secret_error(SecretRef("keyring", "oob-bmc/admin")) == (
        "web01: password keyring:oob-bmc/admin: no entry for service 'oob-bmc' and user 'admin' in the keyring "
        "(MemoryKeyring)"
    )


def test_keyring_without_a_backend(use_keyring):
    use_keyring(keyring.backends.fail.Keyring())
    assert secret_error(SecretRef("keyring", "oob-bmc/admin")) == (
        "web01: password keyring:oob-bmc/admin: no keyring backend is available on this machine; use env: or file:"
    )


def test_keyring_backend_failure_is_translated(use_keyring):
    use_keyring(BrokenKeyring())
    assert secret_error(SecretRef("keyring", "oob-bmc/admin")) == (
        "web01: password keyring:oob-bmc/admin: the keyring failed: RuntimeError: D-Bus is not running"
    )


def test_keyring_empty_entry(use_keyring):
    use_keyring(MemoryKeyring({("oob-bmc", "admin"): ""}))
    assert secret_error(SecretRef("keyring", "oob-bmc/admin")) == (
        "web01: password keyring:oob-bmc/admin: the keyring entry is empty"
    )


# --- check_secrets -----------------------------------------------------------------------------


def test_check_secrets_resolves_every_host_and_raises_the_first_error(write, monkeypatch, tmp_path):
    secret_file(tmp_path, f"{VALUE}\n".encode())
    path = write(
        "inv.toml",
        """
        [hosts.a]
        bmc.address = "x"
        bmc.password = "file:bmc.pw"
        [hosts.b]
        bmc.address = "y"
        bmc.password = "env:OOB_TEST_B"
        [hosts.c]
        bmc.address = "z"
        bmc.password = "env:OOB_TEST_C"
        [hosts.d]
        bmc.address = "w"
        """,
    )
    hosts = list(load_inventory([path]).hosts.values())
    monkeypatch.delenv("OOB_TEST_B", raising=False)
    monkeypatch.delenv("OOB_TEST_C", raising=False)
    with pytest.raises(SecretError) as info:
        check_secrets(hosts)
    assert str(info.value) == "b: password env:OOB_TEST_B: environment variable OOB_TEST_B is not set"
    monkeypatch.setenv("OOB_TEST_B", VALUE)
    with pytest.raises(SecretError, match=r"^c: password env:OOB_TEST_C: "):
        check_secrets(hosts)
    monkeypatch.setenv("OOB_TEST_C", VALUE)
    assert check_secrets(hosts) is None
