"""Host ranges, by property: expansion equals a reference, its size is known by arithmetic
before any name is made, the cap holds, zero padding is kept, only ASCII digits count."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oob.errors import UsageError
from oob.inventory.ranges import (
    MAX_DIGITS,
    MAX_HOSTS,
    expand_host_pattern,
    pattern_count,
    split_host_pattern,
)
from oob.inventory.selectors import compile_pattern

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)
small = st.integers(min_value=0, max_value=300)
steps = st.integers(min_value=1, max_value=7)


def reference(start: int, end: int, step: int, width: int) -> list[str]:
    return [f"n{number:0{width}d}" for number in range(start, end + 1, step)]


@SETTINGS
@given(small, small, steps)
def test_a_small_range_expands_like_the_reference(a, b, step):
    start, end = min(a, b), max(a, b)
    names = expand_host_pattern(f"n[{start}:{end}:{step}]")
    assert names == reference(start, end, step, 0)
    assert len(names) == pattern_count(split_host_pattern(f"n[{start}:{end}:{step}]"))


@SETTINGS
@given(small, small, st.integers(min_value=3, max_value=6))
def test_zero_padding_is_kept(a, b, width):
    start, end = min(a, b), max(a, b)
    names = expand_host_pattern(f"n[{start:0{width}d}:{end:0{width}d}]")
    assert names == reference(start, end, 1, width)
    assert all(len(name) == width + 1 for name in names)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(0, 10**MAX_DIGITS - 1), st.integers(0, 10**MAX_DIGITS - 1), steps),
        min_size=1,
        max_size=3,
    ),
    st.integers(min_value=1, max_value=2_000),
)
def test_the_count_is_arithmetic_and_the_cap_holds(ranges, limit):
    pattern = "-".join(f"r[{min(a, b)}:{max(a, b)}:{step}]" for a, b, step in ranges)
    expected = 1
    for a, b, step in ranges:
        expected *= (max(a, b) - min(a, b)) // step + 1
    assert pattern_count(split_host_pattern(pattern)) == expected
    if expected > limit:
        # refused before a single name is made (an 18-digit range would not fit in memory)
        with pytest.raises(UsageError, match=rf"^gives {expected} hosts, more than the {limit} allowed$"):
            expand_host_pattern(pattern, limit=limit)
    else:
        names = expand_host_pattern(pattern, limit=limit)
        assert len(names) == expected <= limit
        assert len(set(names)) == len(names)


def test_the_default_cap_refuses_a_huge_pattern_at_once():
    with pytest.raises(UsageError, match=rf"^gives 100000000 hosts, more than the {MAX_HOSTS} allowed$"):
        expand_host_pattern("web[0:99999999]")


non_ascii_digit = st.characters(whitelist_categories=["Nd"]).filter(lambda ch: not ch.isascii())


@SETTINGS
@given(non_ascii_digit, small)
def test_only_ascii_digits(digit, number):
    for pattern in (f"n[{digit}:{number}]", f"n[{number}:{digit}{digit}]", f"n[0:9:{digit}]"):
        with pytest.raises(UsageError):
            expand_host_pattern(pattern)
        with pytest.raises(UsageError):
            compile_pattern(pattern.replace(":", "-", 1))("n1")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("n[1:" + "9" * (MAX_DIGITS + 1) + "]", f"the end has more than {MAX_DIGITS} digits"),
        ("n[" + "9" * 5000 + ":1]", f"the start has more than {MAX_DIGITS} digits"),
        ("n[0:9:" + "9" * 5000 + "]", "the step must be a positive integer"),
        ("n[٠:٩]", "the start has a digit other than 0-9"),
        ("n[1:٩x]", "a range takes the digits 0-9 only"),
        ("n[5:1]", "the range goes backwards"),
        ("n[é:z]", "expected a range of numbers [01:20] or of letters [a:c]"),
    ],
)
def test_bad_ranges_say_why(pattern, problem):
    with pytest.raises(UsageError) as info:
        expand_host_pattern(pattern)
    assert info.value.message == problem


@SETTINGS
@given(small, small, st.integers(0, 400), st.booleans())
def test_a_selector_range_matches_exactly_its_numbers(a, b, number, padded):
    start, end = min(a, b), max(a, b)
    width = 4 if padded else 0
    matches = compile_pattern(f"n[{start:0{width}d}-{end:0{width}d}]")
    assert matches(f"n{number:0{width}d}") == (start <= number <= end)
    if padded:
        assert not matches(f"n{number}") or len(str(number)) == width
    else:
        assert not matches(f"n0{number}")
