"""Planning units: what a file-based stream downloads, oldest first, from its bookmark.

A unit is a Data Export bundle or a Segment Export window: an id, and the period it covers
(unix seconds). A run with the range [start, end) reads the units that overlap it — Stop
after start, Start before end — and emits their events with start <= EventStart < end
(shape.py), so adjacent ranges neither overlap nor leave a gap even when a unit straddles
their boundary: both runs read it and each emits its own events.

Plans are lazy: a year of hourly windows or bundles is never a list in memory. Windows
are counted without being made; bundles are listed a LIST page at a time as the sync
reaches them.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

from tap_fullstory.errors import UnexpectedAnswer
from tap_fullstory.timestamps import format_time

FUTURE_SLACK_SECONDS = 86400  # a listed bundle ending later than this after now is not real


def end_second(end_date):
    """end_date (an aware datetime, or None) as the first whole unix second not before it:
    a unit that starts in the fraction of a second before end_date still belongs to the
    run."""
    return None if end_date is None else math.ceil(end_date.timestamp())


@dataclass(frozen=True)
class Unit:
    """A bundle or an export window."""

    id: int
    start: int  # unix seconds
    stop: int   # unix seconds

    @property
    def stop_text(self):
        return format_time(self.stop)


class Survey(NamedTuple):
    """What a plan holds: how many units, the first and the last (None when empty)."""

    count: int
    first: Unit = None
    last: Unit = None


def plan_bundles(pages, start, end=None, now=None):
    """Every bundle with Stop > start and Start < end, oldest first, from `pages(start)`: a
    LIST call answering at most `pages.page_size` bundles whose Stop is after `start`.

    The next page starts at the last bundle's Stop; a short page is the last one, and so is
    a page whose last bundle starts at or after `end`. LIST names only completed bundles,
    so one ending a day after `now` (unix seconds) means the pages would never end."""
    while True:
        page = sorted(pages(start), key=lambda unit: unit.stop)
        for unit in page:
            if now is not None and unit.stop > now + FUTURE_SLACK_SECONDS:
                raise UnexpectedAnswer(
                    f"FullStory listed bundle {unit.id} ending {format_time(unit.stop)}, "
                    "more than a day from now; LIST names only completed bundles, so its "
                    "pages would never end. Check that base_url points at FullStory's Data "
                    "Export API and the clock of this machine.")
            if unit.stop > start and (end is None or unit.start < end):
                yield unit
        if (len(page) < pages.page_size or page[-1].stop <= start
                or (end is not None and page[-1].start >= end)):
            return
        start = page[-1].stop


class BundlePlan:
    """The bundles of a plan, listed a LIST page at a time as they are iterated."""

    def __init__(self, pages, start, end=None, now=None):
        self._list = lambda: plan_bundles(pages, start, end, now)

    def __iter__(self):
        return self._list()

    def survey(self):
        """Count the bundles by listing them once, keeping none (a year of hourly bundles
        is a few hundred LIST requests; their downloads are paced to 2 a minute)."""
        count, first, last = 0, None, None
        for last in self._list():
            count += 1
            first = first or last
        return Survey(count, first, last)


class WindowPlan:
    """The windows of a plan, made as they are iterated and counted without being made."""

    def __init__(self, begins, size, window_id):
        self._begins, self._size, self._window_id = begins, size, window_id

    def __iter__(self):
        return map(self._window, self._begins)

    def survey(self):
        begins = self._begins
        if not begins:
            return Survey(0)
        return Survey(len(begins), self._window(begins[0]), self._window(begins[-1]))

    def _window(self, begin):
        return Unit(id=self._window_id(begin), start=begin, stop=begin + self._size)


def plan_windows(start, end, settled, hours, window_id, whole=False):
    """Windows of `hours`, aligned to multiples of their size, from the one holding `start`
    while they begin before `end` (None: no end; `whole`: while they end by it) and end by
    `settled` (unix seconds); `window_id(begin)` names each. The grid stays the same
    whatever `start` is (a bookmark from another window size or source): the bookmark
    bounds the events, not the grid, so a window's id and row numbers never depend on
    where a run began."""
    size = hours * 3600
    last = settled - size if end is None else min(settled - size,
                                                   end - size if whole else end - 1)
    return WindowPlan(range(start // size * size, last + 1, size), size, window_id)
