"""Bundle planning: which bundles to download, oldest first, from a LIST `start`."""

import logging
from dataclasses import dataclass

from tap_fullstory.errors import FatalAPIError
from tap_fullstory.state import format_stop

LOGGER = logging.getLogger(__name__)
PAGE_SIZE = 20  # FullStory returns at most this many bundles per LIST call


@dataclass(frozen=True)
class Bundle:
    id: int
    start: int  # unix seconds
    stop: int   # unix seconds

    @property
    def stop_text(self):
        return format_stop(self.stop)


def _whole(value):
    """An integer from LIST, also when a server sends it as "123" or 123.0."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(value)


def _bundle(entry):
    try:
        return Bundle(id=_whole(entry["Id"]), start=_whole(entry["Start"]),
                      stop=_whole(entry["Stop"]))
    except (KeyError, TypeError, ValueError):
        raise FatalAPIError(f"FullStory listed a bundle without integer Id/Start/Stop: "
                            f"{str(entry)[:200]}") from None


def list_bundles(client, start):
    """Yield every completed bundle whose Stop is after `start` (unix seconds), oldest first.

    LIST answers 20 at a time; the next page starts at the last bundle's Stop, and a short
    page is the last one.
    """
    while True:
        page = sorted((_bundle(e) for e in client.list_exports(start)), key=lambda b: b.stop)
        LOGGER.debug("Listed %d bundle(s) ending after %s.", len(page), format_stop(start))
        for bundle in page:
            if bundle.stop > start:
                yield bundle
        if len(page) < PAGE_SIZE or page[-1].stop <= start:
            return
        start = page[-1].stop
