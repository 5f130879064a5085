"""Selectors that would hang a backtracking matcher, malformed ones, and the glob matcher
checked against fnmatch wherever their rules agree."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oob.errors import UsageError
from oob.inventory.selectors import MAX_SELECTOR, compile_pattern

LONG = "a" * 250


@pytest.fixture
def inv(load):
    return load(
        "long.toml",
        f'[defaults]\nbmc.address = "192.0.2.200"\n[hosts.{LONG}]\ngroups = ["{LONG}"]\n'
        f"[hosts.{LONG}b]\n[hosts.web01]\n",
    )


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "selector", ["*a" * 15 + "*b", "*a" * 60 + "*", "@" + "*a" * 30 + "*", "?*" * 100 + "b"]
)
def test_a_catastrophic_glob_returns(inv, selector):
    # a backtracking regex takes minutes on these; the guard is the per-test timeout
    hosts = inv.select([selector, "web01"])
    assert [host.name for host in hosts][-1] == "web01"


@pytest.mark.timeout(5)
def test_a_catastrophic_glob_that_matches_nothing_is_exit_2(inv):
    with pytest.raises(UsageError, match=r"^no host matches '(\*a){15}\*c'"):
        inv.select(["*a" * 15 + "*c"])


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("node[01-", "selector 'node[01-': '[' without a closing ']'"),
        ("node[", "selector 'node[': '[' without a closing ']'"),
        ("node[z-a]", "selector 'node[z-a]': the character range z-a goes backwards"),
        (
            "node[1-" + "9" * 30 + "]",
            "selector 'node[1-"
            + "9" * 30
            + "]': the range [1-"
            + "9" * 30
            + "]: the end has more than 18 digits",
        ),
        ("node[\u0661-\u0662]", "only ASCII letters, digits and punctuation"),
        ("n\u0661", "only ASCII letters, digits and punctuation"),
        ("web\x1b[2J", "selector 'web\\x1b[2J': only ASCII"),
        ("x" * (MAX_SELECTOR + 1), f"is longer than {MAX_SELECTOR} characters"),
    ],
)
def test_malformed_selectors_are_one_line_exit_2(inv, selector, problem):
    with pytest.raises(UsageError) as info:
        inv.select([selector])
    assert info.value.exit_code == 2
    assert problem in str(info.value)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


# fnmatch's rules and ours agree on '*', '?', and classes of letters without '!' or '^' tricks
glob_chars = st.sampled_from([*list("ab.-*?"), "[ab]", "[a-c]", "[!a]"])
names = st.text(alphabet="abc.-", max_size=12)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(glob_chars, max_size=10).map("".join), names)
def test_globs_match_like_fnmatch(pattern, name):
    assert compile_pattern(pattern)(name) == fnmatch.fnmatchcase(name, pattern)


def test_many_failing_selectors_are_named_up_to_ten(inv):
    with pytest.raises(UsageError) as info:
        inv.select([f"nohost{i}" for i in range(25)])
    message = str(info.value)
    assert message.count("no host matches") == 10
    assert message.endswith("; and 15 more")
