"""Planning units: what a file-based stream downloads, oldest first, from its bookmark.

A unit is a Data Export bundle or a Segment Export window: an id, and the period it covers
(unix seconds). A run with the range [start, end) reads the units that overlap it — Stop
after start, Start before end — and emits their events with start <= EventStart < end
(shape.py), so adjacent ranges neither overlap nor leave a gap even when a unit straddles
their boundary: both runs read it and each emits its own events.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from singer.utils import strftime


def format_stop(unix_seconds):
    """A unit's Stop (unix seconds) as the RFC 3339 string used in records and STATE."""
    return strftime(datetime.fromtimestamp(unix_seconds, tz=timezone.utc))


def end_second(end_date):
    """end_date (an aware datetime, or None) as the first whole unix second not before it:
    a unit that starts in the fraction of a second before end_date still belongs to the
    run."""
    return None if end_date is None else math.ceil(end_date.timestamp())


def format_moment(moment):
    """An aware datetime as the same RFC 3339 string, to the microsecond."""
    return strftime(moment.astimezone(timezone.utc))


@dataclass(frozen=True)
class Unit:
    """A bundle or an export window."""

    id: int
    start: int  # unix seconds
    stop: int   # unix seconds

    @property
    def stop_text(self):
        return format_stop(self.stop)


def plan_bundles(pages, start, end=None):
    """Every bundle with Stop > start and Start < end, oldest first, from `pages(start)`: a
    LIST call answering at most `pages.page_size` bundles whose Stop is after `start`.

    The next page starts at the last bundle's Stop; a short page is the last one, and so is
    a page whose last bundle starts at or after `end`."""
    while True:
        page = sorted(pages(start), key=lambda unit: unit.stop)
        for unit in page:
            if unit.stop > start and (end is None or unit.start < end):
                yield unit
        if (len(page) < pages.page_size or page[-1].stop <= start
                or (end is not None and page[-1].start >= end)):
            return
        start = page[-1].stop


def plan_windows(start, end, settled, hours, window_id):
    """Windows of `hours`, aligned to multiples of their size, from the one holding `start`
    while they begin before `end` (None: no end) and end by `settled` (unix seconds);
    `window_id(begin)` names each."""
    size = hours * 3600
    last = settled - size if end is None else min(settled - size, end - 1)
    return [Unit(id=window_id(begin), start=begin, stop=begin + size)
            for begin in range(start // size * size, last + 1, size)]
