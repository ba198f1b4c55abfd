"""Planning units: what a file-based stream downloads, oldest first, from its bookmark.

A unit is a Data Export bundle or a Segment Export window: an id, and the period it covers
(unix seconds). Its Stop is the stream's replication key, so a unit belongs to a run when
start < Stop <= end: adjacent ranges neither overlap nor leave a gap.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

from singer.utils import strftime


def format_stop(unix_seconds):
    """A unit's Stop (unix seconds) as the RFC 3339 string used in records and STATE."""
    return strftime(datetime.fromtimestamp(unix_seconds, tz=timezone.utc))


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
    """Every bundle with start < Stop <= end, oldest first, from `pages(start)`: a LIST
    call answering at most `page_size` bundles whose Stop is after `start`.

    The next page starts at the last bundle's Stop; a short page is the last one."""
    while True:
        page = sorted(pages(start), key=lambda unit: unit.stop)
        for unit in page:
            if unit.stop > start and (end is None or unit.stop <= end):
                yield unit
        if (len(page) < pages.page_size or page[-1].stop <= start
                or (end is not None and page[-1].stop >= end)):
            return
        start = page[-1].stop


def plan_windows(start, end, hours, window_id):
    """Windows of `hours` aligned to multiples of their size, from the one holding `start`
    to the last that ends by `end` (unix seconds); `window_id(begin)` names each."""
    size = hours * 3600
    first = start // size * size
    return [Unit(id=window_id(begin), start=begin, stop=begin + size)
            for begin in range(first, end - size + 1, size)]
