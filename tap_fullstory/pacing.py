"""Client-side pacing of bundle downloads, so a normal run never provokes a 429."""

import logging
import time

LOGGER = logging.getLogger(__name__)


class DownloadPacer:
    """Spaces download requests at least 60/per_minute seconds apart.

    Each gap is measured from when the previous download's answer arrived, which is never
    earlier than when FullStory counted it, so FullStory's window sees the same spacing.
    """

    def __init__(self, per_minute, clock=time.monotonic, sleep=time.sleep):
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self.clock, self.sleep = clock, sleep
        self._last = None

    def wait(self, what):
        """Sleep until the next download may start; returns the seconds waited."""
        if self._last is None:
            return 0.0
        delay = self._last + self.interval - self.clock()
        if delay <= 0:
            return 0.0
        LOGGER.info("Pacing downloads to %g a minute: waiting %.1f s before %s.",
                    self.per_minute, delay, what)
        self.sleep(delay)
        return delay

    def mark(self):
        """Note that a download request was just answered."""
        self._last = self.clock()
