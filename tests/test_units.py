from datetime import datetime, timezone

import pytest

from tap_fullstory.timestamps import format_time
from tap_fullstory.units import Unit, end_second, plan_bundles, plan_windows

DAY = 86400


class FakeLister:
    """Answers LIST like FullStory: the first 20 bundles whose Stop is after `start`."""

    page_size = 20

    def __init__(self, count):
        self.bundles = [Unit(id=1000 + i, start=i * DAY, stop=(i + 1) * DAY)
                        for i in range(count)]
        self.starts = []

    def __call__(self, start):
        self.starts.append(start)
        return [b for b in self.bundles if b.stop > start][:20]


@pytest.mark.parametrize("count, calls", [(0, 1), (5, 1), (20, 2), (41, 3), (60, 4)])
def test_pages_until_a_short_page(count, calls):
    lister = FakeLister(count)
    bundles = list(plan_bundles(lister, 0))
    assert [b.id for b in bundles] == [1000 + i for i in range(count)]
    assert len(lister.starts) == calls
    assert lister.starts[1:] == [20 * DAY * k for k in range(1, calls)]


def test_starts_after_the_given_stop():
    bundles = list(plan_bundles(FakeLister(10), 3 * DAY))
    assert bundles[0] == Unit(id=1003, start=3 * DAY, stop=4 * DAY)


def test_unordered_pages_are_planned_oldest_first():
    lister = FakeLister(5)
    lister.bundles.reverse()
    assert [b.stop for b in plan_bundles(lister, 0)] == [DAY * i for i in range(1, 6)]


@pytest.mark.parametrize("start, end, stops", [
    (0, 3 * DAY, [1, 2, 3]),           # a bundle whose Stop equals end belongs to the run
    (3 * DAY, 5 * DAY, [4, 5]),        # the next range starts after it: no overlap, no gap
    (DAY // 2, 2 * DAY - 1, [1, 2]),   # Stop > start and Start < end: both straddlers
])
def test_end_bounds_the_plan(start, end, stops):
    assert [b.stop // DAY for b in plan_bundles(FakeLister(10), start, end)] == stops


def test_listing_stops_at_the_page_that_reaches_the_end():
    lister = FakeLister(60)
    assert len(list(plan_bundles(lister, 0, 25 * DAY))) == 25
    assert len(lister.starts) == 2  # not the third page, which would be past end


def test_adjacent_ranges_cover_every_bundle_once():
    lister = FakeLister(45)
    cut = 17 * DAY
    first, second = list(plan_bundles(lister, 0, cut)), list(plan_bundles(lister, cut))
    assert [b.id for b in first + second] == [b.id for b in lister.bundles]


def test_windows_are_aligned_begin_before_the_end_and_have_settled():
    windows = plan_windows(start=5 * 3600 + 7, end=DAY + 3600, settled=10 * DAY, hours=6,
                           window_id=lambda begin: begin * 100 + 6)
    assert [(w.start // 3600, w.stop // 3600) for w in windows] == [
        (0, 6), (6, 12), (12, 18), (18, 24), (24, 30)]  # the last begins before end
    assert next(iter(windows)).id == 6 and windows.survey().last == list(windows)[-1]
    settled = plan_windows(start=0, end=None, settled=DAY + 3600, hours=6,
                           window_id=lambda begin: begin)
    assert [w.stop // 3600 for w in settled] == [6, 12, 18, 24]  # ended by `settled`


def test_format_time():
    assert format_time(1767312000) == "2026-01-02T00:00:00.000000Z"


def test_an_end_date_inside_a_second_keeps_the_unit_that_starts_in_that_second():
    # events at 06:00:00.000-.499 belong to a run that ends at 06:00:00.500
    end = end_second(datetime(1970, 1, 1, 6, 0, 0, 500_000, tzinfo=timezone.utc))
    assert end == 6 * 3600 + 1
    windows = plan_windows(start=0, end=end, settled=10 * DAY, hours=6,
                           window_id=lambda begin: begin)
    assert [w.start for w in windows] == [0, 6 * 3600]
    assert end_second(datetime(1970, 1, 1, 6, tzinfo=timezone.utc)) == 6 * 3600
    assert end_second(None) is None
