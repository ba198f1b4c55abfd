"""What a person follows on stderr: the plan, one line per unit, a line per stream.

One line per bundle keeps a year of daily bundles readable; request-level detail is at
DEBUG (TAP_FULLSTORY_LOG_LEVEL=DEBUG) and in singer-python's METRIC lines. The lines are
there to plan by: the plan says how long FullStory's download limit alone will take,
each bundle's line says how far the run is and when it should end, and each stream's last
line says how much of its time went to waiting for the target to read stdout.
"""

import logging
import time

from tap_fullstory.timestamps import HUMAN, format_time

LOGGER = logging.getLogger(__name__)


def duration(seconds):
    """A span as a person says it: 45 s, 12 min, 3.5 h, 2.1 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class SyncProgress:
    """Logs one file-based stream's progress; `clock` is injectable for tests.

    `survey` is what the plan holds (units.Survey); `per_minute` is the download limit the
    units are paced to (None: not paced)."""

    def __init__(self, stream, survey, unit="bundle", per_minute=None, clock=time.monotonic):
        self.stream, self.unit, self.clock = stream, unit, clock
        self.total = survey.count
        self.per_minute = per_minute
        self.started = clock()
        self.events = 0
        self.done = 0
        if not self.total:
            LOGGER.info("%s: no new %ss, nothing to sync.", stream, unit)
            return
        limit = ""
        if per_minute:
            floor = (self.total - 1) * 60 / per_minute
            limit = (f"; FullStory's download limit alone takes at least {duration(floor)} "
                     f"({self.total} downloads at {per_minute:,.10g} a minute)")
        LOGGER.info("%s: %d %s(s) to sync, ending %s … %s UTC%s.", stream, self.total, unit,
                    format_time(survey.first.stop, HUMAN), format_time(survey.last.stop, HUMAN),
                    limit)

    def eta(self):
        """Seconds until the last unit is out: the pace so far, or the download limit if
        that is slower."""
        left = max(0, self.total - self.done)
        if not left:
            return 0.0
        pace = (self.clock() - self.started) / self.done * left
        if self.per_minute:
            pace = max(pace, left * 60 / self.per_minute)
        return pace

    def unit_skipped(self, unit, emitted=0):
        """A unit passed over by on_bad_bundle: skip (its ERROR line says why), after
        `emitted` records it gave before it broke."""
        self.done += 1
        self.events += emitted

    def unit_done(self, unit, size, emitted, seconds, resumed_at=0):
        """One line for a unit just emitted in full (`size`: its bytes on the wire)."""
        self.done += 1
        self.events += emitted
        self.total = max(self.total, self.done)  # bundles completed since the plan's count
        rate = f", {emitted / seconds:,.0f} events/s" if seconds > 0 and emitted else ""
        resumed = f", resumed after row {resumed_at}" if resumed_at else ""
        left = f"; ETA {duration(self.eta())}" if self.done < self.total else ""
        LOGGER.info("%s %d/%d %s (%s → %s): %s record(s), %.1f MB%s%s%s.",
                    self.unit.capitalize(), self.done, self.total, unit.id,
                    format_time(unit.start, HUMAN), format_time(unit.stop, HUMAN),
                    f"{emitted:,}", size / 1e6, rate, resumed, left)

    def finished(self, waited=0.0):
        """The stream's last line; `waited` is the seconds spent blocked writing stdout."""
        seconds = self.clock() - self.started
        LOGGER.info("%s: %d %s(s), %s record(s) in %.1f s%s.", self.stream, self.done,
                    self.unit, f"{self.events:,}", seconds, target_share(waited, seconds))


def target_share(waited, seconds):
    """', 80% of it waiting for the target …' when the target set the pace, else ''."""
    if seconds <= 0 or waited < 0.1 * seconds:
        return ""
    share = min(100, round(100 * waited / seconds))
    return (f", {share}% of it waiting for the target to read stdout (the target sets the "
            "pace: see the README's \"Loading fast\")")
