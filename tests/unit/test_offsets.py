"""hookstream.delivery.offsets: commits never pass an offset whose outcome is not durable."""

import random

import pytest

from hookstream.delivery.offsets import PartitionOffsets


def test_nothing_taken_nothing_to_commit():
    p = PartitionOffsets()
    assert p.position() is None and p.to_commit() is None


def test_the_position_waits_for_the_lowest_open_offset():
    p = PartitionOffsets()
    for o in (10, 11, 12):
        p.take(o)
    p.finish(12)
    p.finish(11)
    assert p.position() == 10 and p.in_flight == 1
    p.finish(10)
    assert p.position() == 13 and p.in_flight == 0


def test_to_commit_reports_only_changes():
    p = PartitionOffsets()
    p.take(0)
    assert p.to_commit() == 0
    assert p.to_commit() is None
    p.finish(0)
    assert p.to_commit() == 1


def test_gaps_in_offsets_are_fine():
    p = PartitionOffsets()
    p.take(5)
    p.take(9)
    p.finish(5)
    assert p.position() == 9
    p.finish(9)
    assert p.position() == 10


def test_an_offset_cannot_be_taken_twice():
    p = PartitionOffsets()
    p.take(3)
    with pytest.raises(ValueError):
        p.take(3)


def test_seek_back_to_a_paused_head_commits_up_to_it():
    p = PartitionOffsets()
    p.take(0)
    p.finish(0)
    p.seek_back(1)  # offset 1 is not due: not taken, read again later
    assert p.position() == 1 and p.next_offset == 1
    p.take(1)
    assert p.position() == 1


def test_seek_back_into_open_offsets_is_refused():
    p = PartitionOffsets()
    p.take(0)
    p.take(1)
    with pytest.raises(ValueError):
        p.seek_back(1)


def test_position_is_the_lowest_unfinished_in_any_finishing_order():
    rng = random.Random(3)
    for _ in range(50):
        p = PartitionOffsets()
        offsets = list(range(100))
        for o in offsets:
            p.take(o)
        order = offsets[:]
        rng.shuffle(order)
        done: set[int] = set()
        for o in order:
            p.finish(o)
            done.add(o)
            expected = min((x for x in offsets if x not in done), default=100)
            assert p.position() == expected


def test_a_failed_commit_is_offered_again():
    p = PartitionOffsets()
    p.take(0)
    p.finish(0)
    assert p.to_commit() == 1
    p.commit_failed()
    assert p.to_commit() == 1
