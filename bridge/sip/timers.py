"""The endpoint's deadlines in one heap, behind the single timer its adapter keeps (timers as data,
docs/architecture.md).

Owners (transactions, glare waits) move their deadlines without telling the heap, since taking an
entry out of a heap costs a search: an entry stays until it reaches the top, and is dropped there if
its deadline is no longer its owner's.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Generic, TypeVar

Owner = TypeVar("Owner")


class TimerHeap(Generic[Owner]):
    """Deadlines by owner; ``deadline_of`` tells an owner's current deadline (None: none)."""

    __slots__ = ("_deadline_of", "_heap", "_seq")

    def __init__(self, deadline_of: Callable[[Owner], float | None]) -> None:
        self._deadline_of = deadline_of
        # The sequence number orders equal deadlines, so that owners are never compared.
        self._heap: list[tuple[float, int, Owner]] = []
        self._seq = 0

    def push(self, deadline: float, owner: Owner) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, owner))

    def next_deadline(self) -> float | None:
        """The earliest deadline still held by its owner."""
        heap = self._heap
        while heap:
            deadline, _, owner = heap[0]
            if self._deadline_of(owner) == deadline:
                return deadline
            heapq.heappop(heap)  # stale: its owner moved on
        return None

    def pop_due(self, now: float) -> Owner | None:
        """The next owner whose deadline has come (None when none has): call until None, since
        handling one may set another deadline that is already due."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, owner = heapq.heappop(heap)
            if self._deadline_of(owner) == deadline:
                return owner
        return None
