"""Reading an inventory file: TOML or YAML to Python data, with a way back to line numbers.

Syntax errors become one line ``FILE:LINE: ... syntax error: PROBLEM``.  The offending text is
never quoted (it may be a password), only its position.

An inventory is hostile until checked, so reading it is bounded: at most :data:`MAX_FILE_BYTES`,
nested at most :data:`MAX_DEPTH` deep, at most :data:`MAX_VALUES` values with every YAML alias
counted where it is used (a "billion laughs" file is refused before it is expanded), and no
key or text value holds a control or invisible character (:func:`oob.safetext.is_printable`;
a value may hold line breaks and tabs).
"""

from __future__ import annotations

import functools
import os
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oob.errors import InventoryError
from oob.inventory.schema import KeyPath, Source, VaultValue, shown
from oob.safetext import is_printable

Locator = Callable[[KeyPath], int | None]
SUFFIXES: dict[str, str] = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}

#: largest inventory file read (a site of 100,000 hosts fits in a few MiB)
MAX_FILE_BYTES = 16 * 1024 * 1024
#: deepest nesting of tables and lists (Ansible groups nest through ``children``: two levels each)
MAX_DEPTH = 64
#: most values (keys, texts, numbers, tables, lists) in one file, YAML aliases counted at each use
MAX_VALUES = 2_000_000


def read_inventory_file(path: Path) -> tuple[Any, Source]:
    """Parse ``path``; return its data (``None`` for an empty YAML file) and its :class:`Source`."""
    label = shown(str(path), 400)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InventoryError(
            f"{label}: unsupported inventory file type '{shown(path.suffix) or '(none)'}'; expected .toml, .yaml "
            "or .yml (Ansible INI inventories are not supported: use their YAML form)"
        )
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise InventoryError(f"{label}: not a regular file")
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InventoryError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InventoryError(f"{label}: is a directory, not an inventory file") from None
    except PermissionError:
        raise InventoryError(f"{label}: cannot read the file: permission denied") from None
    except OSError as exc:
        raise InventoryError(f"{label}: cannot read the file: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InventoryError(
            f"{label}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split the inventory"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{label}: not UTF-8 text (bad byte at offset {exc.start})") from None
    text = text.removeprefix("\ufeff")
    base_dir = Path(os.path.abspath(path)).parent
    if fmt == "toml":
        data: Any = _load_toml(label, text)
        source = Source(label, base_dir, mode, toml_locator(text))
    else:
        data, locate = _load_yaml(label, text)
        source = Source(label, base_dir, mode, locate)
    check_values(source, data)
    return data, source


def check_values(source: Source, data: Any) -> None:
    """Every key and text value printable; nesting and size bounded.

    Iterative, and a table or list that contains itself (a recursive YAML alias) is not
    followed into itself: the format's reader says what it means there."""
    count = 0
    on_path: set[int] = set()
    # (value, its path) to visit, or (None, id) to leave a table or list: depth first, so
    # on_path holds exactly the tables and lists around the value being visited
    stack: list[tuple[Any, Any]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if value is None and isinstance(path, int):
            on_path.discard(path)
            continue
        count += 1
        if count > MAX_VALUES:
            raise source.error(f"more than {MAX_VALUES} values (YAML aliases count at each use)")
        if isinstance(value, str):
            # line breaks and tabs are text in a value (an Ansible variable oob does not read
            # may be a block of lines); oob's own keys take no whitespace at all (schema.py)
            if not is_printable(value.replace("\r\n", "").replace("\n", "").replace("\t", "")):
                raise _unprintable(source, path, "text")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if len(path) >= MAX_DEPTH:
            raise source.error(f"nested more than {MAX_DEPTH} deep", path=path)
        on_path.add(id(value))
        stack.append((None, id(value)))
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and not is_printable(key):
                    raise _unprintable(source, (*path, key), "key")
                if id(item) not in on_path:
                    stack.append((item, (*path, str(key))))
        else:
            for index, item in enumerate(value):
                if id(item) not in on_path:
                    stack.append((item, (*path, index)))


def _unprintable(source: Source, path: KeyPath, what: str) -> InventoryError:
    # the value is never shown (it may be a password); the key is, escaped
    parts = [str(part) for part in path]
    context = None
    # ("hosts", "web01", "bmc", "address") -> host 'web01', key 'bmc.address' (Ansible's too)
    for index in range(len(parts) - 3, -1, -1):
        if parts[index] == "hosts":
            context, parts = f"host '{shown(parts[index + 1])}'", parts[index + 2 :]
            break
    return source.error(
        f"the {what} has a control or invisible character; names, addresses and values must be printable",
        path=path,
        context=context,
        key=".".join(parts) or None,
    )


# --- TOML ------------------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _load_toml(label: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise InventoryError(f"{label}: TOML syntax error: nested too deep") from None
    except ValueError as exc:
        if not isinstance(exc, tomllib.TOMLDecodeError):
            # int() of a number with thousands of digits; its text is never quoted
            raise InventoryError(f"{label}: TOML syntax error: a number has too many digits") from None
        message = str(exc)
        position = _TOML_POSITION.search(message)
        problem = message[: position.start()] if position else message
        if position and position.group(1):
            where = f"{label}:{position.group(1)}"
            problem = f"{problem} (column {position.group(2)})"
        else:
            where = label
        raise InventoryError(f"{where}: TOML syntax error: {shown(problem, 300)}") from None


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"({_DOTTED})\s*=")


def _split_dotted(dotted: str) -> tuple[str, ...]:
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in re.findall(_KEY_PART, dotted))


def toml_locator(text: str) -> Locator:
    """Best-effort line of a key path in TOML text (tomllib does not keep positions).

    Understands table headers and (dotted) keys; the line of an exact match wins, then the first
    line inside the path (a host's header), then the closest enclosing key (an inline table).
    """

    def locate(path: KeyPath) -> int | None:
        target = tuple(str(part) for part in path)
        table: tuple[str, ...] = ()
        inside: int | None = None
        enclosing: tuple[int, int | None] = (0, None)
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = _HEADER.match(stripped)
            if header:
                table = _split_dotted(header.group(1))
                full = table
            else:
                assign = _ASSIGN.match(stripped)
                if not assign:
                    continue
                full = table + _split_dotted(assign.group(1))
            if full == target:
                return number
            if inside is None and full[: len(target)] == target:
                inside = number
            elif len(full) < len(target) and target[: len(full)] == full and len(full) > enclosing[0]:
                enclosing = (len(full), number)
        return inside if inside is not None else enclosing[1]

    return locate


# --- YAML ------------------------------------------------------------------------------------


@functools.cache
def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that reports duplicate keys and reads Ansible's ``!vault``/``!unsafe`` tags,
        refuses nesting deeper than :data:`MAX_DEPTH` while composing (PyYAML's composer
        recurses), and turns a value its constructors cannot build into a marked error."""

        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"nested more than {MAX_DEPTH} deep",
                        self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except _CONSTRUCTOR_FAILURES:
                # int() of 5,000 digits, a 13th month, "!!float foo": built-in errors whose
                # text may quote the value (a password): only the position is said
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a value that cannot be read (a number, date or tag out of range)",
                    node.start_mark,
                ) from None

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, _ in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key '{key_node.value}'", key_node.start_mark
                        )
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep=deep)

    Loader.add_constructor("!vault", lambda loader, node: VaultValue())
    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]
    return Loader


#: what PyYAML's constructors let escape from Python's own int(), float(), datetime(), re
_CONSTRUCTOR_FAILURES = (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError)


def _load_yaml(label: str, text: str) -> tuple[Any, Locator]:
    import yaml

    loader = None
    try:
        loader = _yaml_loader()(text)  # the reader refuses control characters here already
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(label, node)
        data = None if node is None else loader.construct_document(node)
    except RecursionError:
        # a merge key (<<) that merges itself: PyYAML follows it without end
        raise InventoryError(f"{label}: YAML error: nested too deep (a recursive alias or merge)") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InventoryError(
            f"{label}:{line}: YAML syntax error: a control or non-printable character (U+{exc.character:04X})"
            if isinstance(exc.character, int) and exc.encoding == "unicode"
            else f"{label}:{line}: YAML syntax error: {exc.reason}"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark else label
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            # "while parsing a block mapping" reads as a note; "expected a single document" as a start
            if exc.context.startswith("while"):
                problem = f"{exc.problem} ({exc.context})"
            else:
                problem = f"{exc.context} {exc.problem}"
        raise InventoryError(f"{where}: YAML syntax error: {shown(problem, 300)}") from None
    except yaml.YAMLError as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InventoryError(f"{label}: YAML error: {shown(reason, 300)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, yaml_locator(node)


def _check_expansion(label: str, root: Any) -> None:
    """Refuse a node graph whose aliases expand past :data:`MAX_VALUES` values, before it is
    constructed (merge keys copy what they merge: a few lines can stand for 10**9 entries).
    A node that contains itself is not followed into itself."""
    import yaml

    count = 0
    on_path: set[int] = set()
    # a node to visit, or the id of one to leave (depth first, as in check_values)
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, int):
            on_path.discard(node)
            continue
        count += 1
        if count > MAX_VALUES:
            mark = node.start_mark
            raise InventoryError(
                f"{label}:{mark.line + 1}: YAML error: more than {MAX_VALUES} values "
                "(YAML aliases count at each use)"
            )
        if isinstance(node, yaml.ScalarNode):
            continue
        on_path.add(id(node))
        stack.append(id(node))
        children = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else node.value
        )
        stack.extend(child for child in children if id(child) not in on_path)


def yaml_locator(root: Any) -> Locator:
    """Line of the last key of a path that exists in the YAML node tree."""
    import yaml

    def locate(path: KeyPath) -> int | None:
        node, line = root, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        line, node = key_node.start_mark.line + 1, value_node
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    return locate
