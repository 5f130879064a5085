"""Credential references: parsed from the inventory, resolved only when a driver needs them.

    env:VAR                  the environment variable VAR (set and not empty)
    file:PATH                the file's contents without one trailing newline; relative to the
                             inventory file; refused if group or others can access it
    keyring:SERVICE/USER     the system keyring (the ``keyring`` package, imported when used)
    anything else            a literal password (the loader allows it only in an inventory file
                             that group and others cannot access)

Messages name the reference (``env:OOB_BMC_PASSWORD``), never the value: a literal is shown as
``<literal>``.  Every failure is a :class:`~oob.errors.SecretError` (exit 2).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from oob.errors import SecretError
from oob.model import Host, SecretRef

SCHEMES: tuple[str, ...] = ("env", "file", "keyring")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PREFIX = re.compile(r"([A-Za-z]+):")
#: largest ``file:`` secret read (a password, not a disk image someone pointed at)
MAX_SECRET_FILE_BYTES = 64 * 1024


def parse_secret_ref(text: str, *, base_dir: Path | None = None) -> SecretRef:
    """Turn ``env:VAR``, ``file:PATH``, ``keyring:SERVICE/USER`` or a literal into a reference.

    ``file:`` paths are made absolute (relative to ``base_dir``, else the current directory).
    Raises :class:`SecretError` with a message that never contains the text of a literal.
    """
    scheme, sep, rest = text.partition(":")
    if sep and scheme == "env":
        if not _ENV_NAME.fullmatch(rest):
            raise SecretError(f"env:{rest}: expected env:VARIABLE_NAME (letters, digits and '_')")
        return SecretRef("env", rest)
    if sep and scheme == "file":
        if not rest.strip():
            raise SecretError("file: needs a path (file:PATH)")
        path = Path(os.path.expanduser(rest))  # Path.expanduser raises on "~nosuchuser"
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return SecretRef("file", os.path.normpath(path))
    if sep and scheme == "keyring":
        service, _, user = rest.rpartition("/")
        if not service or not user:
            raise SecretError(f"keyring:{rest}: expected keyring:SERVICE/USER")
        return SecretRef("keyring", rest)
    if not text:
        raise SecretError("the password is empty")
    # "evn:X", "File:/x" or "keyring :x" would silently become a literal password and fail at
    # 3 a.m. as an authentication error; say so now.  Only the scheme is named, never the text.
    prefix = _PREFIX.match(text)
    if prefix:
        close = difflib.get_close_matches(prefix.group(1).lower(), SCHEMES, n=1, cutoff=0.6)
        if close:
            raise SecretError(
                f"looks like a mistyped reference (did you mean '{close[0]}:'?); "
                "use env:VAR, file:PATH or keyring:SERVICE/USER"
            )
    return SecretRef("literal", text)


def group_or_world_accessible(mode: int) -> bool:
    return bool(stat.S_IMODE(mode) & 0o077)


def resolve_secret(ref: SecretRef, *, host: str) -> str:
    """The secret's value.  Raises :class:`SecretError` naming ``host`` and the reference."""
    if ref.scheme == "literal":
        return ref.location
    if ref.scheme == "env":
        return _from_env(ref, host)
    if ref.scheme == "file":
        return _from_file(ref, host)
    if ref.scheme == "keyring":
        return _from_keyring(ref, host)
    raise SecretError(f"password {ref}: unknown reference scheme {ref.scheme!r}", host=host)


def check_secrets(hosts: Iterable[Host]) -> None:
    """Resolve every host's password once (for ``oob inventory check``); raise the first error."""
    for host in hosts:
        if host.bmc.password is not None:
            resolve_secret(host.bmc.password, host=host.name)


def _from_env(ref: SecretRef, host: str) -> str:
    value = os.environ.get(ref.location)
    if value is None:
        raise SecretError(f"password {ref}: environment variable {ref.location} is not set", host=host)
    if not value:
        raise SecretError(f"password {ref}: environment variable {ref.location} is empty", host=host)
    return value


def _from_file(ref: SecretRef, host: str) -> str:
    path = ref.location
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise SecretError(f"password {ref}: not a regular file", host=host)
            if group_or_world_accessible(mode):
                raise SecretError(
                    f"password {ref}: group or others can access the file "
                    f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}",
                    host=host,
                )
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
            if len(data) > MAX_SECRET_FILE_BYTES:
                raise SecretError(
                    f"password {ref}: the file is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB: not a password",
                    host=host,
                )
    except FileNotFoundError:
        raise SecretError(f"password {ref}: no such file", host=host) from None
    except IsADirectoryError:
        raise SecretError(f"password {ref}: is a directory, not a file", host=host) from None
    except PermissionError:
        raise SecretError(f"password {ref}: cannot read the file: permission denied", host=host) from None
    except OSError as exc:
        raise SecretError(f"password {ref}: cannot read the file: {exc.strerror}", host=host) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"password {ref}: the file is not UTF-8 text", host=host) from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise SecretError(f"password {ref}: the file is empty", host=host)
    return text


def _from_keyring(ref: SecretRef, host: str) -> str:
    service, _, user = ref.location.rpartition("/")
    try:
        import keyring
        from keyring.errors import NoKeyringError
    except ImportError:
        raise SecretError(f"password {ref}: the 'keyring' package is not installed", host=host) from None
    # The library boundary: backends (Secret Service over D-Bus, macOS Keychain, plugins) raise
    # anything.  Translate it into our error; the message of a backend never holds the password.
    try:
        backend = keyring.get_keyring()
        value = backend.get_password(service, user)
    except NoKeyringError:
        raise SecretError(
            f"password {ref}: no keyring backend is available on this machine; use env: or file:", host=host
        ) from None
    except Exception as exc:  # noqa: BLE001 - see above
        raise SecretError(
            f"password {ref}: the keyring failed: {type(exc).__name__}: {exc}", host=host
        ) from None
    if value is None:
        raise SecretError(
            f"password {ref}: no entry for service {service!r} and user {user!r} in the keyring "
            f"({type(backend).__name__})",
            host=host,
        )
    if not value:
        raise SecretError(f"password {ref}: the keyring entry is empty", host=host)
    return value
