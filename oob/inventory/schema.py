"""The keys an inventory may set, how each is checked, and how a host is built from layers.

Both formats come through here: the native format names keys ``bmc.password``; Ansible names
them ``bmc_password``.  Each value is checked where it is written (so an error points at that
line), giving a *layer* (``defaults``, a group, a host) of :class:`Entry` objects; a host is the
merge of its layers, lowest first.

Messages never show the value of ``bmc.password``, nor of a key whose value may hold a
credential (``bmc.address``, ``dump.target`` may be written as ``user:pw@...``).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import SplitResult, urlsplit

from oob.errors import InventoryError, SecretError
from oob.model import (
    BMC_KINDS,
    BMC_TIMEOUT_MAX,
    BMC_TIMEOUT_MIN,
    DUMP_LAYOUTS,
    HYPERVISOR_KINDS,
    REDFISH_AUTHS,
    BmcConfig,
    DumpConfig,
    Host,
    SshConfig,
)
from oob.safetext import is_printable, printable
from oob.secrets import group_or_world_accessible, parse_secret_ref

#: where a value sits in the parsed document: ("hosts", "web01", "bmc", "password")
KeyPath = tuple[str | int, ...]

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,254}")
NAME_RULE = "letters, digits, '_', '.', '-' and ':' only"
NAME_MAX = 255

#: bounds of ``bmc.timeout`` (see :mod:`oob.model`)
TIMEOUT_MIN = BMC_TIMEOUT_MIN
TIMEOUT_MAX = BMC_TIMEOUT_MAX
#: longest piece of the user's text quoted in a message
SHOWN_MAX = 80


def shown(text: object, limit: int = SHOWN_MAX) -> str:
    """User text for a message: control characters escaped, cut to ``limit`` characters."""
    value = text if isinstance(text, str) else str(text)
    return printable(value[:limit]) + ("..." if len(value) > limit else "")


class VaultValue:
    """An Ansible ``!vault`` value.  Never shows its ciphertext."""

    def __repr__(self) -> str:
        return "<vault>"


@dataclass(frozen=True)
class Source:
    """One inventory file, for messages and relative paths."""

    #: the file as the user named it
    label: str
    #: directory relative paths are resolved against (absolute)
    base_dir: Path
    #: ``st_mode`` of the file, for the literal-password rule
    mode: int
    #: the line (1-based) of a key path, when the format can tell
    locate: Callable[[KeyPath], int | None]

    def where(self, path: KeyPath = ()) -> str:
        line = self.locate(path) if path else None
        return f"{self.label}:{line}" if line else self.label

    def error(
        self, problem: str, *, path: KeyPath = (), context: str | None = None, key: str | None = None
    ) -> InventoryError:
        """``FILE[:LINE]: [CONTEXT: ][key 'KEY': ]PROBLEM`` as one line."""
        parts = [self.where(path)]
        if context:
            parts.append(context)
        if key:
            parts.append(f"key '{key}'")
        parts.append(problem)
        # every part may hold the user's text: one line, no control characters, bounded
        return InventoryError(": ".join(shown(part.replace("\n", " "), 400) for part in parts))


@dataclass(frozen=True)
class Entry:
    """A checked value and where it was written."""

    value: Any
    path: KeyPath
    #: the key as the user wrote it, for messages: 'bmc.password' or 'bmc_password'
    label: str
    context: str


Layer = dict[str, Entry]
Fail = Callable[[str], NoReturn]


def did_you_mean(word: str, candidates: Sequence[str], *, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def type_name(value: object) -> str:
    if isinstance(value, VaultValue):
        return "a vault-encrypted value"
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime, date, time)):
        return "a date/time"
    return f"a {type(value).__name__}"


# --- value checks: each returns the normalised value or calls fail(problem) -------------------


def _string(value: Any, fail: Fail, what: str = "a string") -> str:
    if not isinstance(value, str):
        fail(f"expected {what}, got {type_name(value)}")
    if not value.strip():
        fail(f"expected {what}, got an empty string")
    if not is_printable(value):
        fail(f"expected {what}, got one with a control or invisible character")
    return value


def _ascii_word(value: Any, fail: Fail, what: str) -> str:
    text = _word(value, fail, what)
    if not text.isascii():
        fail(f"expected {what}, got one with a non-ASCII character (write a name in its xn-- form)")
    return text


_IPV4_LIKE = re.compile(r"[0-9.]+")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def host_problem(host: str) -> str | None:
    """None when ``host`` is an IP address or a DNS name; else what is wrong with it."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if _IPV4_LIKE.fullmatch(host):
        return "not a valid IPv4 address"
    if ":" in host:
        return "not a valid IPv6 address"
    name = host.removesuffix(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return "not a valid host name (letters, digits, '-' and '_' in dot-separated parts)"
    return None


def _word(value: Any, fail: Fail, what: str = "a string without spaces") -> str:
    text = _string(value, fail, what)
    if any(ch.isspace() for ch in text):
        fail(f"expected {what}, got one with spaces")
    return text


def _address(value: Any, fail: Fail) -> str:
    what = "an IP address or host name"
    text = _ascii_word(value, fail, what)
    problem = host_problem(text[1:-1] if text.startswith("[") and text.endswith("]") else text)
    if problem:
        fail(f"expected {what}; {problem}")
    return text


def _string_list(value: Any, fail: Fail, what: str = "a list of strings") -> tuple[str, ...]:
    if isinstance(value, str):
        fail(f'expected {what}, got a string (write ["{value}"])')
    if not isinstance(value, list):
        fail(f"expected {what}, got {type_name(value)}")
    items: dict[str, None] = {}
    for index, item in enumerate(value):
        if not isinstance(item, str):
            fail(f"expected {what}, item {index + 1} is {type_name(item)}")
        if not item.strip():
            fail(f"expected {what}, item {index + 1} is empty")
        if any(ch.isspace() for ch in item):
            fail(f"expected {what}, item {index + 1} ({shown(repr(item))}) has spaces")
        if not item.isascii() or not is_printable(item):
            fail(f"expected {what}, item {index + 1} has a non-ASCII or control character")
        items.setdefault(item)
    return tuple(items)


def _group_list(value: Any, fail: Fail) -> tuple[str, ...]:
    names = _string_list(value, fail, "a list of group names")
    for name in names:
        if len(name) > NAME_MAX:
            fail(f"group name {shown(repr(name))} is longer than {NAME_MAX} characters")
        if not NAME_RE.fullmatch(name) or name == "all":
            fail(f"group name {shown(repr(name))} is not valid ({NAME_RULE}; 'all' is reserved)")
    return names


def _enum(choices: Sequence[str]) -> Callable[[Any, Fail], str]:
    def check(value: Any, fail: Fail) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            got = shown(repr(value)) if isinstance(value, str) else type_name(value)
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            fail(f"expected one of {', '.join(choices)}; got {got}{hint}")
        return value.lower()

    return check


def _bool(value: Any, fail: Fail) -> bool:
    if not isinstance(value, bool):
        fail(f"expected true or false, got {type_name(value)}")
    return value


def _port(value: Any, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(f"expected a port number from 1 to 65535, got {type_name(value)}")
    if not 1 <= value <= 65535:
        fail(f"expected a port number from 1 to 65535, got {value}")
    return value


def _seconds(value: Any, fail: Fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"expected a number of seconds, got {type_name(value)}")
    if not math.isfinite(value) or value <= 0:
        fail(f"expected a number of seconds greater than 0, got {shown(value)}")
    if not TIMEOUT_MIN <= value <= TIMEOUT_MAX:
        fail(f"expected a number of seconds from {TIMEOUT_MIN:g} to {TIMEOUT_MAX:g}, got {shown(value)}")
    return float(value)


#: the methods ``bmc.methods`` may list: a hypervisor's method comes with its ``bmc.kind``
BMC_METHODS = ("redfish", "ipmi")


def _methods(value: Any, fail: Fail) -> tuple[str, ...]:
    what = f"a list of methods from {', '.join(BMC_METHODS)}"
    methods = _string_list(value, fail, what)
    if not methods:
        fail(f"expected {what}, got an empty list")
    for method in methods:
        if method in HYPERVISOR_KINDS:
            fail(f"'{method}' is not a BMC method; write bmc.kind = '{method}' (and bmc.domain) instead")
        if method not in BMC_METHODS:
            fail(
                f"unknown method {shown(repr(method))}; expected {', '.join(BMC_METHODS)}"
                f"{did_you_mean(method, BMC_METHODS)}"
            )
    return methods


_HEX = re.compile(r"[0-9a-f]*")


def _fingerprint(value: Any, fail: Fail) -> str:
    what = "a SHA-256 fingerprint (64 hex digits, colons allowed)"
    text = _string(value, fail, what).strip().lower()
    digits = text.removeprefix("sha256:").replace(":", "")
    if not _HEX.fullmatch(digits):
        fail(f"expected {what}, got a value with characters other than hex digits and colons")
    if len(digits) != 64:
        fail(f"expected {what}, got {len(digits)} hex digits (is it a SHA-1 or MD5 fingerprint?)")
    return digits


def _port_of(parts: SplitResult, fail: Fail, what: str) -> int | None:
    """The URL's port: None when absent; a number from 1 to 65535 or an error."""
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None and parts.netloc.endswith(":"):
        port = 0
    if port is not None and not 1 <= port <= 65535:
        fail(f"expected {what}; the port is not a number from 1 to 65535")
    return port


def _split_url(text: str, fail: Fail, what: str) -> tuple[SplitResult, str | None]:
    """``urlsplit`` and the host name, any parse error as ``fail``."""
    try:
        parts = urlsplit(text)
        return parts, parts.hostname
    except ValueError:
        # "https://[::1", "ssh://root@dump[01:3]srv/...": brackets that are not an IPv6 address
        fail(f"expected {what}; it is not a valid URL (only an IPv6 address goes in [brackets])")


def _any_bmc_address(value: Any, fail: Fail) -> str:
    """What every ``bmc.address`` is (its form depends on ``bmc.kind``: :func:`check_bmc_address`)."""
    # never echo the value: "https://admin:pw@bmc" must not end up in a message
    text = _ascii_word(value, fail, "https://HOST[:PORT], an IP address or a host name")
    if not is_printable(text) or any(c.isspace() for c in text):
        fail("expected the address of the host's BMC, got one with a space or a control character")
    return text


def check_bmc_address(kind: str, text: str, fail: Fail) -> str:
    """``bmc.address`` for its ``bmc.kind``: a BMC's URL or host, a libvirt URI, an ESXi host."""
    if kind == "libvirt":
        return _libvirt_uri(text, fail)
    if kind == "esxi":
        return _esxi_address(text, fail)
    return _bmc_address(text, fail)


#: libvirt URI schemes oob accepts (``driver[+transport]``): QEMU/KVM, Xen (libxl), the test driver
_LIBVIRT_DRIVERS = ("qemu", "xen", "test")
_LIBVIRT_TRANSPORTS = ("", "ssh", "libssh", "libssh2", "tls", "tcp", "unix")
#: URI parameters oob passes on; ``command``, ``netcat`` and ``socket`` on a remote URI name
#: programs or paths libvirt would run or use: an inventory never chooses a program to run
_LIBVIRT_PARAMETERS = (
    "keyfile",
    "no_verify",
    "known_hosts",
    "known_hosts_verify",
    "sshauth",
    "mode",
    "pkipath",
    "no_tty",
    "socket",
)


def _libvirt_uri(text: str, fail: Fail) -> str:
    what = "a libvirt URI such as qemu:///system or qemu+ssh://root@kvm07/system"
    parts, hostname = _split_url(text, fail, what)
    driver, _, transport = parts.scheme.partition("+")
    if driver not in _LIBVIRT_DRIVERS or transport not in _LIBVIRT_TRANSPORTS:
        fail(
            f"expected {what}; the scheme must be one of {', '.join(_LIBVIRT_DRIVERS)}, optionally +ssh, +tls, +unix …"
        )
    if parts.password is not None:
        fail("do not put a password in the libvirt URI; libvirt's own SSH keys or SASL configuration hold it")
    if parts.fragment:
        fail(f"expected {what}; no '#' part")
    _port_of(parts, fail, what)
    if hostname:
        problem = host_problem(hostname)
        if problem:
            fail(f"expected {what}; the host is {problem}")
    for name in (item.partition("=")[0] for item in parts.query.split("&") if item):
        if name not in _LIBVIRT_PARAMETERS:
            fail(f"expected {what}; oob does not pass the URI parameter {shown(repr(name))} to libvirt")
        if name == "socket" and hostname:
            fail(f"expected {what}; a socket path only on a local URI")
    return text


def _port_and_host(parts: SplitResult, hostname: str | None, fail: Fail, what: str) -> None:
    """The port, if any, is a port; the host is there and is an IP address or a DNS name."""
    _port_of(parts, fail, what)
    if not hostname:
        fail(f"expected {what}; no host name in it")
    problem = host_problem(hostname)
    if problem:
        fail(f"expected {what}; the host is {problem}")


def _esxi_address(text: str, fail: Fail) -> str:
    what = "the ESXi host as HOST, HOST:PORT or ssh://USER@HOST[:PORT]"
    parts, hostname = _split_url(text if "://" in text else f"ssh://{text}", fail, what)
    if parts.scheme != "ssh":
        fail(f"expected {what}; oob reaches ESXi over SSH only")
    if parts.password is not None:
        fail("do not put a password in the ESXi address; oob logs in to ESXi with an SSH key")
    _port_and_host(parts, hostname, fail, what)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        fail(f"expected {what}; no path, '?' or '#' parts")
    return text


def _bmc_address(value: Any, fail: Fail) -> str:
    # never echo the value: "https://admin:pw@bmc" must not end up in a message
    what = "https://HOST[:PORT], an IP address or a host name"
    text = _ascii_word(value, fail, what)
    try:
        if "://" not in text and ipaddress.ip_address(text).version == 6:
            fail("write an IPv6 BMC address in brackets: https://[ADDRESS]")
    except ValueError:
        pass
    parts, hostname = _split_url(text if "://" in text else f"https://{text}", fail, what)
    if parts.scheme not in ("https", "http"):
        fail(f"expected {what}; only https:// and http:// URLs are allowed")
    if "@" in parts.netloc:
        fail("do not put credentials in the BMC address; use bmc.username and bmc.password")
    _port_and_host(parts, hostname, fail, what)
    if parts.query or parts.fragment:
        fail(f"expected {what}; no '?' or '#' parts")
    return text


def _dump_target(value: Any, fail: Fail) -> str:
    what = "ssh://USER@SERVER[:PORT]/PATH or file:///PATH"
    text = _word(value, fail, what)
    if not is_printable(text):
        fail(f"expected {what}; it has a control or invisible character")
    parts, hostname = _split_url(text, fail, what)
    if parts.query or parts.fragment:
        fail(f"expected {what}; no '?' or '#' parts")
    if parts.scheme == "ssh":
        if not parts.netloc.isascii():
            fail(f"expected {what}; the user and server must be ASCII (write a name in its xn-- form)")
        if parts.password is not None:
            fail("do not put a password in the dump target; ssh uses keys")
        if not parts.username:
            fail(f"expected {what}; the user is missing")
        if not _USER.fullmatch(parts.username):
            fail(f"expected {what}; the user is not a user name (letters, digits, '_', '.', '-')")
        if not hostname:
            fail(f"expected {what}; the server is missing")
        problem = host_problem(hostname)
        if problem:
            fail(f"expected {what}; the server is {problem}")
        _port_of(parts, fail, what)
        if not parts.path.startswith("/"):
            fail(f"expected {what}; the path is missing")
        return text
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            fail(f"expected {what}; a file target is an absolute path: file:///mnt/crash")
        return text
    fail(f"expected {what}")


_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}\$?")


def _ssh_user(value: Any, fail: Fail) -> str:
    text = _word(value, fail, "a user name")
    if not _USER.fullmatch(text):
        fail("expected a user name (letters, digits, '_', '.', '-'; no '@' or ':')")
    return text


_PORT = re.compile(r"[0-9]{1,5}")


def _ssh_jump(value: Any, fail: Fail) -> str:
    from oob.ssh import parse_jump

    what = "[user@]host[:port] (a comma list for several jump hosts), or none"
    text = _ascii_word(value, fail, what)
    try:
        hops = parse_jump(text)
    except ValueError as exc:
        fail(f"expected {what}; {exc}")
    for hop in hops:
        if hop.user is not None and not _USER.fullmatch(hop.user):
            fail(f"expected {what}; '{hop.user}' is not a user name")
        problem = host_problem(hop.server)
        if problem:
            fail(f"expected {what}; '{hop.server}' is {problem}")
    return text


def _probe(value: Any, fail: Fail) -> str:
    what = "ssh:PORT or tcp:PORT (on the host's address), or ssh:ADDRESS:PORT or tcp:ADDRESS:PORT"
    text = _ascii_word(value, fail, what)
    scheme, _, rest = text.partition(":")
    if scheme not in ("ssh", "tcp") or not rest:
        fail(f"expected {what}")
    host, sep, port = rest.rpartition(":")
    if sep and not host:
        fail(f"expected {what}; the address is empty")
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        fail(f"expected {what}; the port is not a number from 1 to 65535")
    if host:
        problem = host_problem(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        if problem:
            fail(f"expected {what}; the address is {problem}")
    return text


def _notify(value: Any, fail: Fail) -> tuple[str, ...]:
    from oob.errors import UsageError
    from oob.notify import parse_target

    specs = _string_list(
        value, fail, "a list of FORMAT=REF (generic=env:VAR, slack=file:PATH, pagerduty=env:VAR)"
    )
    for spec in specs:
        try:
            parse_target(spec)
        except UsageError as exc:
            fail(exc.message.removeprefix("--notify").strip(": "))
    return specs


def _domain(value: Any, fail: Fail) -> str:
    # an ESXi display name may hold spaces ("web 01"); it is only ever compared, never run
    what = "the guest's name or UUID on its hypervisor"
    text = _string(value, fail, what)
    if len(text) > 255 or text != text.strip():
        fail(f"expected {what}: at most 255 characters, no leading or trailing space")
    return text


# --- the keys --------------------------------------------------------------------------------

Check = Callable[[Any, Fail], Any]

#: native key -> check.  ``bmc.password``, ``bmc.ca_file``, ``ssh.key`` and ``ssh.known_hosts``
#: need the file (paths are relative to it) and are handled in
#: :func:`check_value`.
CHECKS: dict[str, Check | None] = {
    "address": _address,
    "aliases": _string_list,
    "groups": _group_list,
    "probe": _probe,
    "notify": _notify,
    "bmc.kind": _enum(BMC_KINDS),
    "bmc.address": _any_bmc_address,
    "bmc.username": _string,
    "bmc.password": None,
    "bmc.verify": _bool,
    "bmc.ca_file": None,
    "bmc.fingerprint": _fingerprint,
    "bmc.system": _string,
    "bmc.methods": _methods,
    "bmc.ipmi_port": _port,
    "bmc.timeout": _seconds,
    "bmc.domain": _domain,
    "bmc.auth": _enum(REDFISH_AUTHS),
    "dump.target": _dump_target,
    "dump.layout": _enum(DUMP_LAYOUTS),
    "dump.fence_kdump": _bool,
    "ssh.user": _ssh_user,
    "ssh.port": _port,
    "ssh.jump": _ssh_jump,
    "ssh.key": None,
    "ssh.known_hosts": None,
}
KEYS: tuple[str, ...] = tuple(CHECKS)
#: keys that describe one machine: not in ``defaults`` nor in a group
HOST_ONLY: tuple[str, ...] = ("address", "aliases", "groups")


def check_value(source: Source, key: str, value: Any, *, path: KeyPath, context: str, label: str) -> Entry:
    """Check one value of a known key; raise :class:`InventoryError` naming file, context, key."""

    def fail(problem: str) -> NoReturn:
        raise source.error(problem, path=path, context=context, key=label)

    if isinstance(value, VaultValue):
        fail("vault-encrypted values are not supported; use env:/file:/keyring:")
    if key == "bmc.password":
        return Entry(_password(source, value, fail, label), path, label, context)
    if key == "bmc.ca_file":
        # os.path.expanduser leaves "~nosuchuser" alone where Path.expanduser raises RuntimeError
        ca_file = Path(os.path.expanduser(_string(value, fail, "a path to a PEM file")))
        return Entry(os.path.normpath(source.base_dir / ca_file), path, label, context)
    if key in ("ssh.key", "ssh.known_hosts"):
        what = "a path to a private key file" if key == "ssh.key" else "a path to a known_hosts file"
        file = Path(os.path.expanduser(_string(value, fail, what)))
        return Entry(os.path.normpath(source.base_dir / file), path, label, context)
    check = CHECKS[key]
    assert check is not None
    return Entry(check(value, fail), path, label, context)


def _password(source: Source, value: Any, fail: Fail, label: str) -> Any:
    if not isinstance(value, str):
        # no value, not even its type's repr: a YAML password of 12345 is still a password
        fail(f"expected a string (env:VAR, file:PATH or keyring:SERVICE/USER), got {type_name(value)}")
    try:
        ref = parse_secret_ref(value, base_dir=source.base_dir)
    except SecretError as exc:
        fail(exc.message)
    if ref.scheme == "literal" and group_or_world_accessible(source.mode):
        fail(
            "a literal password is only allowed in a file that group and others cannot read "
            f"(this one has mode {stat.S_IMODE(source.mode):04o}); use env:VAR or file:PATH, "
            f"or run: chmod 600 {source.label}"
        )
    return ref


def flatten(
    table: Mapping[Any, Any], path: KeyPath, prefix: str = "", *, source: Source | None = None
) -> Iterator[tuple[str, Any, KeyPath]]:
    """``{"bmc": {"kind": "ilo"}}`` and ``{"bmc.kind": "ilo"}`` both give ``("bmc.kind", "ilo", path)``.

    A YAML alias may make a table contain itself: that is an error (with ``source``), never
    an endless walk."""
    within: list[int] = []

    def walk(table: Mapping[Any, Any], path: KeyPath, prefix: str) -> Iterator[tuple[str, Any, KeyPath]]:
        within.append(id(table))
        for raw_key, value in table.items():
            key = f"{prefix}{raw_key}"
            if isinstance(value, dict):
                if id(value) in within:
                    problem = "the table contains itself (recursive YAML alias)"
                    if source is None:
                        raise InventoryError(problem)
                    raise source.error(problem, path=(*path, str(raw_key)), key=shown(key))
                yield from walk(value, (*path, str(raw_key)), f"{key}.")
            else:
                yield key, value, (*path, str(raw_key))
        within.pop()

    yield from walk(table, path, prefix)


def native_layer(source: Source, table: Any, path: KeyPath, context: str, *, host: bool) -> Layer:
    """Check a ``defaults``, group or host table of the native format."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise source.error(
            f"expected a table of settings, got {type_name(table)}", path=path, context=context
        )
    allowed = KEYS if host else tuple(k for k in KEYS if k not in HOST_ONLY)
    layer: Layer = {}
    for key, value, key_path in flatten(table, path, source=source):
        if key not in allowed:
            if key in HOST_ONLY:
                raise source.error("only allowed in a host", path=key_path, context=context, key=key)
            if key in ("bmc", "dump", "ssh"):
                raise source.error(
                    f"expected a table of {key}.* settings, got {type_name(value)}",
                    path=key_path,
                    context=context,
                    key=key,
                )
            raise source.error(
                f"unknown key{did_you_mean(key, allowed)}", path=key_path, context=context, key=shown(key)
            )
        if key in layer:
            raise source.error("set twice", path=key_path, context=context, key=key)
        layer[key] = check_value(source, key, value, path=key_path, context=context, label=key)
    return layer


def build_host(
    name: str,
    source: Source,
    path: KeyPath,
    layers: Sequence[Layer],
    *,
    groups: tuple[str, ...],
    label: Callable[[str], str] = lambda key: key,
) -> Host:
    """Merge layers (lowest precedence first) into a :class:`Host`."""
    merged: Layer = {}
    for layer in layers:
        merged.update(layer)
    context = f"host '{name}'"

    def value(key: str, default: Any) -> Any:
        entry = merged.get(key)
        return default if entry is None else entry.value

    if "bmc.address" not in merged:
        raise source.error(
            "missing: every host needs the address of its BMC",
            path=path,
            context=context,
            key=label("bmc.address"),
        )
    kind = value("bmc.kind", "auto")
    methods = merged.get("bmc.methods")
    if kind == "ipmi" and methods is not None and "ipmi" not in methods.value:
        raise source.error(
            f"{label('bmc.kind')} is 'ipmi' (IPMI only) but this list has no 'ipmi'",
            path=methods.path,
            context=context,
            key=methods.label,
        )
    address_entry = merged["bmc.address"]

    def address_fail(problem: str) -> NoReturn:
        raise source.error(problem, path=address_entry.path, context=context, key=address_entry.label)

    check_bmc_address(kind, address_entry.value, address_fail)
    domain = merged.get("bmc.domain")
    if kind in HYPERVISOR_KINDS and domain is None:
        raise source.error(
            f"missing: {label('bmc.kind')} '{kind}' needs bmc.domain, the guest's name"
            + (" or UUID" if kind == "libvirt" else " (its display name on the ESXi host)"),
            path=path,
            context=context,
            key=label("bmc.domain"),
        )
    if kind not in HYPERVISOR_KINDS and domain is not None:
        raise source.error(
            f"bmc.domain names a virtual machine's guest: set {label('bmc.kind')} to 'libvirt' or 'esxi'",
            path=domain.path,
            context=context,
            key=domain.label,
        )
    defaults = BmcConfig()
    bmc = BmcConfig(
        kind=kind,
        address=value("bmc.address", defaults.address),
        username=value("bmc.username", defaults.username),
        password=value("bmc.password", defaults.password),
        verify=value("bmc.verify", defaults.verify),
        ca_file=value("bmc.ca_file", defaults.ca_file),
        fingerprint=value("bmc.fingerprint", defaults.fingerprint),
        system=value("bmc.system", defaults.system),
        # kind "ipmi" is a BMC without Redfish: whatever the defaults said, IPMI only; IPMI is
        # otherwise tried only where the inventory says the BMC has it (bmc.methods or bmc.ipmi_port)
        methods=(kind,)
        if kind in ("ipmi", *HYPERVISOR_KINDS)
        else value("bmc.methods", ("redfish", "ipmi") if "bmc.ipmi_port" in merged else defaults.methods),
        ipmi_port=value("bmc.ipmi_port", defaults.ipmi_port),
        timeout=value("bmc.timeout", defaults.timeout),
        domain=value("bmc.domain", None),
        auth=value("bmc.auth", defaults.auth),
    )
    dump = DumpConfig(
        target=value("dump.target", None),
        layout=value("dump.layout", "auto"),
        fence_kdump=value("dump.fence_kdump", False),
    )
    # only what the inventory says: the rest is the user's ssh configuration's (oob.ssh)
    ssh = SshConfig(
        user=value("ssh.user", None),
        port=value("ssh.port", None),
        jump=value("ssh.jump", None),
        key=value("ssh.key", None),
        known_hosts=value("ssh.known_hosts", None),
    )
    return Host(
        name=name,
        address=value("address", None),
        aliases=value("aliases", ()),
        probe=value("probe", None),
        notify=value("notify", ()),
        groups=groups,
        bmc=bmc,
        dump=dump,
        ssh=ssh,
        source=source.label,
    )


def check_name(source: Source, name: Any, path: KeyPath, what: str) -> str:
    """Host and group names: selectors split on ',' and treat '@*?[' specially."""
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)
    if isinstance(name, str) and len(name) > NAME_MAX:
        raise source.error(f"{what} name {shown(repr(name))} is longer than {NAME_MAX} characters", path=path)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name == "all":
        quoted = shown(repr(name)) if isinstance(name, str) else type_name(name)
        raise source.error(f"{what} name {quoted} is not valid ({NAME_RULE}; 'all' is reserved)", path=path)
    return name


@dataclass
class FileInventory:
    """What one file defines, before files are merged."""

    source: Source
    hosts: list[Host]
    #: host name -> where it is defined, for "defined twice" messages
    host_paths: dict[str, KeyPath]
    #: group -> host names, in host order; groups without hosts too
    groups: dict[str, list[str]]
