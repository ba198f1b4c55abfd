"""What a person follows on stderr: the plan, one line per bundle, a summary.

One line per bundle keeps a year of daily bundles readable; request-level detail is at
DEBUG (TAP_FULLSTORY_LOG_LEVEL=DEBUG) and in singer-python's METRIC lines.
"""

import json
import logging
import time
from datetime import datetime, timezone

LOGGER = logging.getLogger(__name__)


def _moment(unix_seconds):
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


class SyncProgress:
    """Logs a sync's progress; `clock` is injectable for tests."""

    def __init__(self, bundles, unit="bundle", clock=time.monotonic):
        self.total = len(bundles)
        self.unit = unit
        self.clock = clock
        self.started = clock()
        self.events = 0
        self.done = 0
        if bundles:
            LOGGER.info("%d %s(s) to sync, ending %s … %s UTC.", self.total, unit,
                        _moment(bundles[0].stop), _moment(bundles[-1].stop))
        else:
            LOGGER.info("No new %ss: nothing to sync.", unit)

    def bundle_done(self, spool, emitted, seconds, skipped=0):
        """One line for a bundle just emitted in full."""
        self.done += 1
        self.events += emitted
        bundle = spool.bundle
        rate = f", {emitted / seconds:,.0f} events/s" if seconds > 0 and emitted else ""
        resumed = f", resumed after row {skipped}" if skipped else ""
        LOGGER.info("%s %d/%d %s (%s → %s): %s event(s), %.1f MB%s%s.",
                    self.unit.capitalize(), self.done, self.total, bundle.id,
                    _moment(bundle.start), _moment(bundle.stop),
                    f"{emitted:,}", spool.size / 1e6, rate, resumed)

    def finished(self, state):
        seconds = self.clock() - self.started
        LOGGER.info("Done: %d %s(s), %s event(s) in %.1f s. Final state: %s", self.done,
                    self.unit, f"{self.events:,}", seconds, json.dumps(state))
