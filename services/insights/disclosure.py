"""Disclosure control for count tables: primary and secondary cell suppression, and periods.

A table has zero, one or two dimensions; a key names a cell by its categories, with `ALL` in a
position for the margin over that dimension (`(ALL, ALL)` is the grand total). Margins are the
cells of the tables with fewer dimensions, which other queries publish, so they are protected
together with the cells:

- Primary: a non-zero count below k is hidden. Zeros are below k and so never published
  either, but protection treats them as known unless it chooses to hide one (below).
- Secondary: no hidden value may be recomputed from the published values of its table and its
  margins. Written as a table whose every row and column sums to zero (margins negated), the
  hidden cells are the edges of a bipartite graph (row node, column node), and the solutions
  for them differ exactly along cycles of that graph (adding and taking a unit in turn; a
  count cannot go below zero, so a hidden zero may only grow). A hidden value is therefore
  fixed unless some cycle through it can move; where none can, the cheapest chain of further
  cells (the smallest counts) is hidden to make one.
- Margins are fixed by the table of fewer dimensions (the two-way table never hides more of a
  margin than the one-way table does), so every query agrees on every number it shares.
- Periods are unions of whole calendar-aligned blocks (`atoms`). A count over several blocks is
  published only if it is at least k and hidden in none of its blocks: it is then a sum of
  numbers each either zero or published, so comparing periods reveals nothing new.
"""

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping

ALL = "*"
"""The category of a margin: every category of that dimension."""

Key = tuple[str, ...]
Counts = Mapping[Key, int]


def with_margins(counts: Counts, ndim: int) -> dict[Key, int]:
    """The cells plus every margin (keys with `ALL`) of an `ndim`-way table."""
    full: dict[Key, int] = defaultdict(int)
    for key, value in counts.items():
        assert len(key) == ndim, key
        for mask in itertools.product((False, True), repeat=ndim):
            full[tuple(ALL if m else c for m, c in zip(mask, key, strict=True))] += value
    full.setdefault((ALL,) * ndim, 0)
    return dict(full)


def protect(counts: Counts, *, ndim: int, k: int) -> frozenset[Key]:
    """The keys (cells and margins) whose non-zero values must stay unknown."""
    if ndim not in (0, 1, 2):
        raise ValueError("tables have at most two dimensions")
    full = with_margins(counts, ndim)
    if ndim == 0:
        return frozenset(key for key, v in full.items() if 0 < v < k)
    if ndim == 1:
        return frozenset(_protect_line(full, k))
    rows = _protect_line(_project(full, 0), k)
    cols = _protect_line(_project(full, 1), k)
    hidden = {key for key, v in full.items() if ALL not in key and 0 < v < k}
    hidden |= {(r, ALL) for (r,) in rows} | {(ALL, c) for (c,) in cols}
    return frozenset(_close_cycles(full, hidden))


def published(value: int, key: Key, hidden: Iterable[frozenset[Key]], k: int) -> bool:
    """Whether `key` of a period may be published: at least k, and hidden in none of the
    period's blocks (`hidden`: one pattern per block)."""
    return value >= k and not any(key in h for h in hidden)


def _project(full: Mapping[Key, int], axis: int) -> dict[Key, int]:
    """The one-way table along `axis` (its cells are the two-way table's margins)."""
    return {(key[axis],): v for key, v in full.items() if key[1 - axis] == ALL}


def _protect_line(line: Mapping[Key, int], k: int) -> set[Key]:
    """One-way table: cells summing to the total. A lone unknown is recoverable by subtraction,
    so a second one (the smallest published count) joins it."""
    hidden = {key for key, v in line.items() if 0 < v < k}
    if len(hidden) == 1:
        candidates = sorted(
            (v, key) for key, v in line.items() if key not in hidden and v > 0 and key != (ALL,)
        )
        if candidates:
            hidden.add(candidates[0][1])
    return hidden


Node = tuple[str, str]
Arc = tuple[Node, Node, Key]


def _arcs(key: Key, value: int) -> list[Arc]:
    """The ways a cycle may pass through `key`. Written with margins negated, a cycle adds t
    to the cells it passes from a row to a column and takes t from the others; a margin moves
    the other way. A zero may only grow, so it is passed one way only."""
    row, col = ("r", key[0]), ("c", key[1])
    margin = (key[0] == ALL) != (key[1] == ALL)
    grows_row_to_col = not margin
    arcs: list[Arc] = []
    if value > 0 or grows_row_to_col:
        arcs.append((row, col, key))
    if value > 0 or not grows_row_to_col:
        arcs.append((col, row, key))
    return arcs


def _close_cycles(full: Mapping[Key, int], hidden: set[Key]) -> set[Key]:
    """Hide further cells (never margins) until every hidden key lies on a cycle along which
    it can move: then no hidden value is fixed by the published ones."""
    candidates = {key: v for key, v in full.items() if ALL not in key}
    while True:
        exposed = sorted(key for key in hidden if not _movable(key, full, hidden))
        if not exposed:
            return hidden
        path = _cheapest_cycle(exposed[0], full, hidden, candidates)
        if path is None:
            # Not expected with margins from `_protect_line`; withhold all cells if it happens.
            rest = set(candidates) - hidden
            if not rest:
                return hidden
            hidden |= rest
            continue
        hidden |= path


def _movable(key: Key, full: Mapping[Key, int], hidden: set[Key]) -> bool:
    """Whether some cycle of hidden keys through `key` can move (breadth-first search)."""
    adjacency: dict[Node, list[Node]] = defaultdict(list)
    for other in hidden:
        if other != key:
            for a, b, _ in _arcs(other, full[other]):
                adjacency[a].append(b)
    for a, b, _ in _arcs(key, full[key]):
        # Through `key` from a to b, then back from b to a.
        seen = {b}
        frontier = [b]
        while frontier:
            node = frontier.pop()
            if node == a:
                return True
            for nxt in adjacency[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
    return False


def _cheapest_cycle(
    key: Key, full: Mapping[Key, int], hidden: set[Key], candidates: Mapping[Key, int]
) -> set[Key] | None:
    """The published cells to hide so that `key` can move, cheapest first: Dijkstra back to
    its start over hidden keys at no cost and published cells at their count plus one."""
    adjacency: dict[Node, list[tuple[Node, Key, int]]] = defaultdict(list)
    for other in hidden | set(candidates):
        if other == key:
            continue
        cost = 0 if other in hidden else candidates[other] + 1
        for a, b, _ in _arcs(other, full[other]):
            adjacency[a].append((b, other, cost))
    best_path: set[Key] | None = None
    best_cost = -1
    for a, b, _ in _arcs(key, full[key]):
        found = _dijkstra(adjacency, start=b, goal=a, hidden=hidden)
        if found is not None and (best_path is None or found[0] < best_cost):
            best_cost, best_path = found
    return best_path


def _dijkstra(
    adjacency: Mapping[Node, list[tuple[Node, Key, int]]],
    *,
    start: Node,
    goal: Node,
    hidden: set[Key],
) -> tuple[int, set[Key]] | None:
    best: dict[Node, int] = {start: 0}
    previous: dict[Node, tuple[Node, Key]] = {}
    queue: list[tuple[int, Node]] = [(0, start)]
    while queue:
        cost, node = heapq.heappop(queue)
        if node == goal:
            break
        if cost > best.get(node, cost):
            continue
        for nxt, key, step in sorted(adjacency.get(node, ())):
            if cost + step < best.get(nxt, cost + step + 1):
                best[nxt] = cost + step
                previous[nxt] = (node, key)
                heapq.heappush(queue, (cost + step, nxt))
    if goal not in previous:
        return None
    added: set[Key] = set()
    node = goal
    while node != start:
        node, key = previous[node]
        if key not in hidden:
            added.add(key)
    return best[goal], added
