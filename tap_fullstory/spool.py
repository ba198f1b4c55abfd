"""Spooling: a bundle's body is saved to a temporary file before it is parsed.

Downloading at network speed and parsing from disk means a slow target never holds an
HTTP connection open for the length of a multi-GB bundle.
"""

import logging
import os
import tempfile
from datetime import datetime, timezone

from singer.utils import strftime

LOGGER = logging.getLogger(__name__)


class BundleSpool:
    """A bundle's body on disk; removed when the `with` block ends, however it ends."""

    def __init__(self, bundle, spool_dir=None):
        self.bundle = bundle
        handle, self.path = tempfile.mkstemp(prefix=f"tap-fullstory-{bundle.id}-",
                                             suffix=".body", dir=spool_dir)
        os.close(handle)
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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
