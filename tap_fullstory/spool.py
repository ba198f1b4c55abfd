"""Spooling: a bundle's body is saved to a temporary file before it is parsed.

Downloading at network speed and parsing from disk means a slow target never holds an
HTTP connection open for the length of a multi-GB bundle. Each file is locked (flock) for
as long as its run uses it; a run killed with SIGKILL cannot remove its files, so the next
run removes spool files that no live process holds.
"""

import fcntl
import glob
import logging
import os
import tempfile
import time
from datetime import datetime, timezone

from singer.utils import strftime

LOGGER = logging.getLogger(__name__)
PATTERN = "tap-fullstory-*.body"
ABANDONED_AFTER = 60  # seconds without a write before an unlocked file counts as abandoned


def sweep_abandoned(spool_dir=None, now=time.time):
    """Remove spool files left by killed runs: unlocked and untouched for a minute."""
    removed = 0
    for path in glob.glob(os.path.join(spool_dir or tempfile.gettempdir(), PATTERN)):
        try:
            if now() - os.stat(path).st_mtime < ABANDONED_AFTER:
                continue
            handle = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another run is using it
        else:
            os.unlink(path)
            removed += 1
        finally:
            os.close(handle)
    if removed:
        LOGGER.info("Removed %d spool file(s) left by an earlier run that was killed.", removed)
    return removed


class BundleSpool:
    """A bundle's body on disk; removed when the `with` block ends, however it ends."""

    def __init__(self, bundle, spool_dir=None):
        self.bundle = bundle
        self._lock, self.path = tempfile.mkstemp(prefix=f"tap-fullstory-{bundle.id}-",
                                                 suffix=".body", dir=spool_dir)
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # released by remove(), or by our death
        self.size = 0
        self.time_extracted = None
        self.export_ref = None  # the Segment export the body came from, for STATE
        self.restarted = False  # True when a saved export expired and was made anew

    @classmethod
    def fetch(cls, source, bundle, spool_dir=None):
        """Create a spool file for `bundle` and download its body into it."""
        spool = cls(bundle, spool_dir)
        spool.download(source)
        return spool

    def download(self, source):
        try:
            with open(self.path, "r+b") as handle:
                self.size = source.fetch(self, handle)
        except BaseException:
            self.remove()
            raise
        self.time_extracted = strftime(datetime.now(timezone.utc))
        LOGGER.debug("Downloaded bundle %s (%.1f MB).", self.bundle.id, self.size / 1e6)

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
