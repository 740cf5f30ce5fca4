"""Per-partition offset tracking: commit only up to the lowest offset whose outcome is not yet durable.

Records of one partition are handed out in offset order but finish in any order (a slow endpoint
holds its record while the others complete). Kafka keeps a single committed position per
partition, so the position may only move past a record once *its* outcome is durable (success
recorded, or the retry / dead-letter record acknowledged by the broker), and past every record
before it. ``PartitionOffsets`` keeps the offsets still open in the order they were taken and
answers the position to commit: the lowest open offset, or one past the last taken when none is
open. A crash then re-delivers at most the records after that position; none is ever skipped.

Pure and single-threaded: the worker's event loop owns every instance.
"""

from __future__ import annotations

import collections

__all__ = ["PartitionOffsets"]


class PartitionOffsets:
    """Open offsets of one assigned partition. A new instance per assignment (identity = generation)."""

    __slots__ = ("_open", "_done", "_next", "_committed")

    def __init__(self) -> None:
        self._open: collections.deque[int] = collections.deque()  # taken, in order
        self._done: set[int] = set()  # finished out of order, still behind an open one
        self._next: int | None = None  # one past the last offset taken
        self._committed: int | None = None  # the last position handed to commit

    @property
    def in_flight(self) -> int:
        return len(self._open) - len(self._done)

    @property
    def next_offset(self) -> int | None:
        """Where consumption continues: one past the last offset taken (None before the first)."""
        return self._next

    def take(self, offset: int) -> None:
        """A record at ``offset`` was handed out. Offsets must grow (a re-read after a seek back
        starts after the last one taken, never inside the open range)."""
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} taken again (next is {self._next})")
        self._open.append(offset)
        self._next = offset + 1

    def finish(self, offset: int) -> None:
        """The outcome of the record at ``offset`` is durable."""
        if self._open and self._open[0] == offset:
            self._open.popleft()
            while self._open and self._open[0] in self._done:
                self._done.discard(self._open.popleft())
        else:
            self._done.add(offset)

    def position(self) -> int | None:
        """The offset to commit (Kafka's "next record to read"), or None before anything was taken."""
        if self._open:
            return self._open[0]
        return self._next

    def to_commit(self) -> int | None:
        """``position()`` if it moved since the last call, else None (nothing new to commit)."""
        pos = self.position()
        if pos is None or pos == self._committed:
            return None
        self._committed = pos
        return pos

    def commit_failed(self) -> None:
        """The last commit did not succeed: offer the position again next time."""
        self._committed = None

    def seek_back(self, offset: int) -> None:
        """Consumption will restart at ``offset`` (a paused tier partition's head, not taken)."""
        if self._open and offset <= self._open[-1]:
            raise ValueError(f"cannot seek back to {offset}: offsets up to {self._open[-1]} are in flight")
        self._next = offset
