"""Fuzzing the inventory loaders (TOML, YAML, Ansible YAML) and the selectors.

The real example inventories are mutated byte- and token-wise with a fixed seed: truncated,
control characters and NUL inserted, Unicode digits, huge numbers, brackets, deep nesting,
wrong types.  The only outcomes allowed are a loaded inventory or an OobError with exit code 2
on one printable line; a handful also go through the real CLI.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from oob.errors import OobError
from oob.inventory import Inventory, load_inventory
from oob.safetext import is_printable

from .conftest import EXAMPLES

SEED = 20261130
CASES_PER_FILE = 1200
SELECTOR_CASES = 3000
SOURCES = ("example.toml", "example.yaml", "ansible-hosts.yaml")

# fmt: off
HOSTILE_TOKENS = [
    "\x00", "\x07", "\x1b[2J", "\r", "\x7f", "\x85", "\u202e", "\u200b", "\ufeff", "\t",
    "\u0661\u0662", "\u096f", "\uff11",
    "9" * 5000, "1e308", "-1e308", "1e-6", "nan", "inf", "-0", "0", "65536", "0x7fffffff", "true", "null",
    "[", "]", "[[", "]]", "{", "}", "[01:3]", "[0:99999999]", "[1-3]", "[a:c]", "[\u0661:\u0662]", "[::1",
    "https://[::1", "ssh://root@dump[01:3]srv/x", "https://a:b@h", "https://h:0", "https://h:99999",
    "*", "&a", "*a", "<<", "!vault", "!!binary", "!!timestamp", "!!float", "{{ x }}",
    "'", '"', "\\", ":", ",", "=", "#", "\n", "-", "@", "%",
    "x" * 300, "é", "bmc", "hosts", "groups", "children", "vars", "all", "~nosuchuser/x", "file:~nosuchuser",
]
# fmt: on
TOKEN = re.compile(r"\s+|[=:\[\]{},\"']|[^\s=:\[\]{},\"']+")


def _nest(rng: random.Random) -> str:
    depth = rng.choice([2, 10, 63, 64, 65, 200, 3000])
    opener, closer = rng.choice([("[", "]"), ("{a: ", "}"), ("{a = ", "}")])
    return opener * depth + closer * depth


def _wrong_type(rng: random.Random) -> str:
    return rng.choice(
        ["[]", "{}", "[1, 2]", "{x = 1}", "{x: 1}", "true", "1", "1.5", '""', "1979-05-27", "[[1]]"]
    )


def mutate(text: str, rng: random.Random) -> str:
    """One to three mutations, byte- or token-wise."""
    for _ in range(rng.randint(1, 3)):
        how = rng.randrange(11)
        at = rng.randrange(len(text) + 1)
        if how == 0:  # truncation
            text = text[:at]
        elif how == 1:  # a control character, NUL or format character
            text = text[:at] + rng.choice(HOSTILE_TOKENS[:10]) + text[at:]
        elif how == 2:  # ASCII digits to Unicode digits
            text = re.sub(
                r"[0-9]", lambda m: chr(0x0660 + int(m.group())) if rng.random() < 0.3 else m.group(), text
            )
        elif how == 3:  # a number made huge, tiny or not a number
            numbers = list(re.finditer(r"\b[0-9]+\b", text))
            if numbers:
                number = rng.choice(numbers)
                text = text[: number.start()] + rng.choice(HOSTILE_TOKENS[13:24]) + text[number.end() :]
        elif how == 4:  # brackets and ranges
            text = text[:at] + rng.choice(HOSTILE_TOKENS[24:37]) + text[at:]
        elif how == 5:  # deep nesting in place of a value
            text = (
                re.sub(r"= .*|: [^\n]+", lambda m: m.group()[:2] + _nest(rng), text, count=1)
                if rng.random() < 0.5
                else text[:at] + _nest(rng) + text[at:]
            )
        elif how == 6:  # a value of the wrong type
            values = list(re.finditer(r"(?<== )[^\n]+|(?<=: )[^\n]+", text))
            if values:
                value = rng.choice(values)
                text = text[: value.start()] + _wrong_type(rng) + text[value.end() :]
        elif how == 7:  # token-wise: replace a token with a hostile one
            tokens = TOKEN.findall(text)
            if tokens:
                tokens[rng.randrange(len(tokens))] = rng.choice(HOSTILE_TOKENS)
                text = "".join(tokens)
        elif how == 8:  # token-wise: drop or duplicate a token
            tokens = TOKEN.findall(text)
            if tokens:
                index = rng.randrange(len(tokens))
                tokens[index] = "" if rng.random() < 0.5 else tokens[index] * 2
                text = "".join(tokens)
        elif how == 9:  # line-wise: drop, duplicate or swap lines
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            choice = rng.randrange(3)
            if choice == 0:
                del lines[i]
            elif choice == 1:
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:  # a random byte, which may break UTF-8
            data = text.encode("utf-8", "surrogatepass")
            spot = rng.randrange(len(data) + 1)
            data = data[:spot] + bytes([rng.randrange(256)]) + data[spot + 1 :]
            return data.decode("utf-8", "surrogateescape")
    return text


def cases(source: str, count: int) -> list[str]:
    rng = random.Random(f"{SEED}:{source}")
    text = (EXAMPLES / source).read_text()
    return [mutate(text, rng) for _ in range(count)]


def write_case(directory: Path, source: str, index: int, text: str) -> Path:
    path = directory / f"case{index}{Path(source).suffix}"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    path.chmod(0o600 if index % 2 else 0o644)  # literal passwords allowed in half of them
    return path


def load_or_error(path: Path) -> Inventory | OobError:
    try:
        return load_inventory([path])
    except OobError as exc:  # anything else fails the test with its traceback
        return exc


def assert_clean(outcome: Inventory | OobError, text: str) -> None:
    if isinstance(outcome, OobError):
        message = str(outcome)
        assert outcome.exit_code == 2, (message, text[:400])
        assert "\n" not in message and is_printable(message), (message, text[:400])
        assert len(message) < 2000


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", SOURCES)
def test_mutated_examples_load_or_fail_with_exit_2(tmp_path, source):
    loaded = failed = 0
    for index, text in enumerate(cases(source, CASES_PER_FILE)):
        path = write_case(tmp_path, source, index, text)
        outcome = load_or_error(path)
        assert_clean(outcome, text)
        if isinstance(outcome, OobError):
            failed += 1
        else:
            loaded += 1
            assert outcome.hosts
        path.unlink()
    # the mutations must exercise both outcomes, or the fuzz proves nothing
    assert failed > CASES_PER_FILE // 4
    assert loaded > 10


SELECTOR_ALPHABET = [
    *list("web0123456789*?[]!-:@,.a "),
    "١",
    "\x00",
    "\x1b",
    "é",
    "db",
    "lab",
    "all",
    "[01-03]",
    "[1:2]",
]


def selectors(rng: random.Random, inventory: Inventory) -> list[str]:
    known = [*inventory.hosts, *(f"@{group}" for group in inventory.groups), "all"]
    result: list[str] = []
    for _ in range(SELECTOR_CASES):
        if rng.random() < 0.5:
            result.append("".join(rng.choice(SELECTOR_ALPHABET) for _ in range(rng.randint(0, 30))))
        else:
            word = list(rng.choice(known))
            for _ in range(rng.randint(1, 3)):
                word.insert(rng.randrange(len(word) + 1), rng.choice(SELECTOR_ALPHABET))
            result.append("".join(word))
    result += ["*a" * 40 + "*b", "web[" + "9" * 5000 + "-1]", "node[0-" + "9" * 19 + "]", "x" * 5000]
    return result


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", SOURCES)
def test_fuzzed_selectors_select_or_fail_with_exit_2(source):
    inventory = load_inventory([EXAMPLES / source])
    rng = random.Random(f"{SEED}:selectors:{source}")
    selected = refused = 0
    for selector in selectors(rng, inventory):
        try:
            hosts = inventory.select([selector])
        except OobError as exc:
            assert exc.exit_code == 2, selector
            assert "\n" not in str(exc) and is_printable(str(exc)), selector
            refused += 1
        else:
            assert hosts and all(host.name in inventory.hosts for host in hosts)
            selected += 1
    assert selected > 10 and refused > 1000


@pytest.mark.timeout(120)
def test_mutated_examples_through_the_real_cli(tmp_path, oob: Callable[..., object]):
    """A handful of the cases above, including each kind of refusal, through `oob inventory check`."""
    picked: list[Path] = []
    for source in SOURCES:
        for index, text in enumerate(cases(source, 40)):
            if index % 10 == 0:
                picked.append(write_case(tmp_path, source, index, text))
    picked.append(
        write_case(tmp_path, "ansible-hosts.yaml", 901, (EXAMPLES / "ansible-hosts.yaml").read_text())
    )
    picked.append(write_case(tmp_path, "x.yaml", 903, "all:\n  hosts:\n    web[0:99999999]:\n"))
    picked.append(write_case(tmp_path, "x.toml", 905, '[hosts.h]\nbmc.address = "https://[::1"\n'))
    codes = set()
    for path in picked:
        result = oob("inventory", "check", "-i", str(path), env={"OOB_BMC_PASSWORD": "fuzz"})
        assert result.code in (0, 2), (path.read_text(errors="replace")[:300], result.stderr)  # type: ignore[attr-defined]
        assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
        codes.add(result.code)  # type: ignore[attr-defined]
    assert codes == {0, 2}  # the unmutated Ansible example loads, its credentials resolve


KEYS = [
    "all", "hosts", "groups", "defaults", "children", "vars", "web", "web[01:03]", "h1", "bmc", "dump", "ssh",
    "address", "aliases", "probe", "kind", "password", "timeout", "ipmi_port", "port", "target", "methods",
    "bmc.address", "bmc_address", "bmc_timeout", "ansible_host", "oob_aliases", "dump_target", "bmc_kind",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["192.0.2.1", "https://[::1", "ssh://root@dump[01:3]srv/x", "x", "env:X", "ipmi", "tcp:22"]
    ),
    st.text(max_size=12),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=40,
)


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.sampled_from(KEYS), TREES, min_size=1, max_size=4))
def test_documents_of_any_shape_load_or_fail_with_exit_2(tmp_path_factory, document):
    """Wrong types everywhere: every shape the keys can take, native and Ansible alike."""
    text = yaml.safe_dump(document, allow_unicode=True)
    path = tmp_path_factory.mktemp("shape") / "inventory.yaml"
    path.write_text(text)
    path.chmod(0o600)
    assert_clean(load_or_error(path), text)
