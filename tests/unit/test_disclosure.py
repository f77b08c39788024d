"""Disclosure control, checked against an attacker who solves the margins.

The attacker knows every count that is not hidden (published or not: zeros included) and that
counts are not negative; the hidden counts are the unknowns of the linear system "cells sum
to their margins". A count is recovered when it takes the same value in every non-negative
solution. The check is independent of the product's graph method: exact Gaussian elimination
over the rationals gives the solutions as the truth plus the null space, and, the system being
a network (totally unimodular), any other solution differs from the truth somewhere along a
vector of -1, 0 and 1, which is enumerated through the free unknowns.
"""

import itertools
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from services.insights.disclosure import ALL, Key, protect, published, with_margins


def equations(full: dict[Key, int], ndim: int) -> list[dict[Key, int]]:
    """Each equation as {key: coefficient}, summing to zero."""
    if ndim == 1:
        return [{key: 1 for key in full if key != (ALL,)} | {(ALL,): -1}]
    rows = {r for r, _ in full}
    cols = {c for _, c in full}
    out: list[dict[Key, int]] = []
    for r in rows:
        row: dict[Key, int] = {(r, c): 1 for c in cols if c != ALL}
        out.append(row | {(r, ALL): -1})
    for c in cols:
        col: dict[Key, int] = {(r, c): 1 for r in rows if r != ALL}
        out.append(col | {(ALL, c): -1})
    return out


def recovered(full: dict[Key, int], unknown: set[Key], ndim: int) -> set[Key]:
    """The unknowns the equations pin to one value (over the rationals)."""
    names = sorted(unknown)
    index = {key: i for i, key in enumerate(names)}
    matrix = []
    for eq in equations(full, ndim):
        row = [Fraction(0)] * (len(names) + 1)
        for key, coef in eq.items():
            if key in index:
                row[index[key]] += coef
            else:
                row[-1] -= coef * full.get(key, 0)  # known: to the right-hand side
        matrix.append(row)
    pivots: list[int] = []
    r = 0
    for col in range(len(names)):
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][col] != 0), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        lead = matrix[r][col]
        matrix[r] = [v / lead for v in matrix[r]]
        for i in range(len(matrix)):
            if i != r and matrix[i][col] != 0:
                factor = matrix[i][col]
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[r], strict=True)]
        pivots.append(col)
        r += 1
    free = sorted(set(range(len(names))) - set(pivots))
    movable: set[Key] = set()
    for steps in itertools.product((-1, 0, 1), repeat=len(free)):
        d = [Fraction(0)] * len(names)
        for f, step in zip(free, steps, strict=True):
            d[f] = Fraction(step)
        for row_i, col in enumerate(pivots):
            d[col] = -sum((matrix[row_i][f] * d[f] for f in free), Fraction(0))
        if all(full[names[i]] + d[i] >= 0 for i in range(len(names))):
            movable |= {names[i] for i in range(len(names)) if d[i] != 0}
    return set(names) - movable


small_counts = st.one_of(st.integers(0, 3), st.integers(0, 14), st.integers(0, 60))


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[Key, int], int]:
    ndim = draw(st.sampled_from([1, 2, 2, 2]))
    rows = draw(st.integers(1, 4))
    cols = draw(st.integers(1, 4)) if ndim == 2 else 1
    counts: dict[Key, int] = {}
    for r in range(rows):
        for c in range(cols):
            key = (f"r{r}", f"c{c}") if ndim == 2 else (f"r{r}",)
            counts[key] = draw(small_counts)
    return counts, ndim


@settings(max_examples=400, deadline=None)
@given(tables(), st.sampled_from([2, 5, 11, 11, 11]))
def test_no_suppressed_count_is_recoverable_and_k_holds(table, k) -> None:
    counts, ndim = table
    full = with_margins(counts, ndim)
    hidden = protect(counts, ndim=ndim, k=k)
    shown = {key for key, v in full.items() if published(v, key, [hidden], k)}
    # k is honoured for every cell and margin that is published.
    assert all(full[key] >= k for key in shown)
    # Every count below k other than zero is hidden (zeros are never shown either).
    assert {key for key, v in full.items() if 0 < v < k} <= hidden
    assert not hidden & shown
    # The attacker knows everything not hidden; nothing hidden follows from it.
    assert recovered(full, set(hidden), ndim) == set()


@settings(max_examples=150, deadline=None)
@given(tables())
def test_two_way_tables_keep_the_one_way_tables_margins(table) -> None:
    """A two-way table hides exactly the margins its one-way tables hide: every query agrees on
    every number they share, so combining queries gives no more than each one alone."""
    counts, ndim = table
    if ndim != 2:
        return
    hidden = protect(counts, ndim=2, k=11)
    for axis in (0, 1):
        line: dict[Key, int] = {}
        for key, v in counts.items():
            line[(key[axis],)] = line.get((key[axis],), 0) + v
        one_way = protect(line, ndim=1, k=11)
        as_margins = {
            (key[0], ALL) if axis == 0 else (ALL, key[0]) for key in one_way if key != (ALL,)
        }
        margins = {key for key in hidden if ALL in key and key != (ALL, ALL)}
        ours = {key for key in margins if (key[1] == ALL) == (axis == 0)}
        assert ours == as_margins


def test_a_lone_small_cell_takes_the_smallest_other_cell_with_it() -> None:
    counts: dict[Key, int] = {("a",): 3, ("b",): 40, ("c",): 15, ("d",): 0}
    hidden = protect(counts, ndim=1, k=11)
    assert hidden == {("a",), ("c",)}


def test_two_way_example_hides_a_cycle() -> None:
    """3 in (x, p) is primary; its row and column each need a second hidden cell, and those
    need a fourth: the cheapest rectangle is (x, p), (x, q), (y, p), (y, q)."""
    counts: dict[Key, int] = {
        ("x", "p"): 3,
        ("x", "q"): 20,
        ("x", "s"): 50,
        ("y", "p"): 30,
        ("y", "q"): 12,
        ("y", "s"): 60,
    }
    hidden = protect(counts, ndim=2, k=11)
    assert hidden == {("x", "p"), ("x", "q"), ("y", "p"), ("y", "q")}
