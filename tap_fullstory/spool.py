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
    """A downloaded bundle on disk; removed when the `with` block ends, however it ends."""

    def __init__(self, client, bundle, spool_dir=None):
        self.bundle = bundle
        handle = tempfile.NamedTemporaryFile(prefix=f"tap-fullstory-{bundle.id}-",
                                             suffix=".body", dir=spool_dir, delete=False)
        self.path = handle.name
        try:
            with handle:
                self.size = client.download(bundle.id, handle)
        except BaseException:
            self.remove()
            raise
        self.time_extracted = strftime(datetime.now(timezone.utc))
        LOGGER.info("Downloaded bundle %s (%d bytes).", bundle.id, self.size)

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
