"""Client-side pacing of bundle downloads, so a normal run never provokes a 429."""

import logging
import threading
import time

LOGGER = logging.getLogger(__name__)


class DownloadPacer:
    """Spaces download requests at least 60/per_minute seconds apart, across threads.

    Each gap is measured from when the previous download's answer arrived, which is never
    earlier than when FullStory counted it, so FullStory's window sees the same spacing.
    """

    def __init__(self, per_minute, clock=time.monotonic, sleep=time.sleep):
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self.clock, self.sleep = clock, sleep
        self._next = None  # when the next download may start
        self._lock = threading.Lock()

    def wait(self, what):
        """Sleep until the next download may start; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            start = now if self._next is None else max(now, self._next)
            self._next = start + self.interval  # reserved, so two threads never share it
        delay = start - now
        if delay <= 0:
            return 0.0
        log = LOGGER.info if delay >= 0.1 else LOGGER.debug  # tiny waits are noise
        log("Pacing downloads to %g a minute: waiting %.1f s before %s.", self.per_minute,
            delay, what)
        self.sleep(delay)
        return delay

    def mark(self):
        """Note that a download request was just answered."""
        with self._lock:
            self._next = max(self._next or 0.0, self.clock() + self.interval)
