"""The STATE format: where a sync resumes, and how each checkpoint is written.

    {"bookmarks": {"events": {
         "ExportBundleStop": "<Stop of the last bundle emitted in full>",
         "in_progress": {"ExportBundleId": 42, "ExportBundleStop": "...", "rows_done": 5000}}},
     "currently_syncing": "events"}

`in_progress` is present only while a bundle is partly emitted: `rows_done` of its rows
(counted from row 0, including rows dropped by start_date) are out and must not be sent
again. For the Segment Export source it also names the export being read
(`operationId`, `searchExportId`), so a resume downloads the same result again.
The earlier public tap's flat `{"events": "<bundle Stop>"}` is read as a bookmark.
"""

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone

from singer.utils import strftime

from tap_fullstory.config import parse_start_date
from tap_fullstory.errors import ConfigError

STREAM = "events"


def format_stop(unix_seconds):
    """A bundle's Stop (unix seconds) as the RFC 3339 string used in records and STATE."""
    return strftime(datetime.fromtimestamp(unix_seconds, tz=timezone.utc))


@dataclass(frozen=True)
class Bookmark:
    """How far the events stream has been emitted."""

    stop: datetime = None          # Stop of the last bundle emitted in full
    bundle_id: int = None          # the bundle emitted in part, if any
    bundle_stop: str = None
    rows_done: int = 0
    export_ref: dict = field(default_factory=dict)  # a Segment export to download again

    def list_from(self, start_date):
        """The `start` (unix seconds) to list bundles from."""
        moment = start_date if self.stop is None else max(self.stop, start_date)
        return int(moment.timestamp())

    def rows_to_skip(self, bundle_id):
        return self.rows_done if bundle_id == self.bundle_id else 0


def _bad_state(detail):
    return ConfigError(f"State {detail}; pass the last STATE line the tap printed, or no "
                       "--state to start from start_date.")


def read_bookmark(state):
    """The Bookmark held by a state dict (new format, legacy flat format, or empty)."""
    if state in (None, {}):
        return Bookmark()
    if not isinstance(state, dict):
        raise _bad_state(f"must be a JSON object, not a {type(state).__name__}")
    if isinstance(state.get(STREAM), str) and "bookmarks" not in state:
        return Bookmark(stop=parse_start_date(state[STREAM], "Legacy state value 'events'"))
    unknown = set(state) - {"bookmarks", "currently_syncing"}
    if unknown:
        raise _bad_state(f"has keys this tap never writes ({', '.join(sorted(unknown))})")
    bookmarks = state.get("bookmarks")
    bookmarks = {} if bookmarks is None else bookmarks
    if not isinstance(bookmarks, dict):
        raise _bad_state("'bookmarks' must be an object")
    entry = bookmarks.get(STREAM)
    entry = {} if entry is None else entry
    if not isinstance(entry, dict):
        raise _bad_state("'bookmarks.events' must be an object")
    stop = entry.get("ExportBundleStop")
    stop = None if stop is None else parse_start_date(stop, "State bookmark ExportBundleStop")
    progress = entry.get("in_progress")
    if progress is None:
        return Bookmark(stop=stop)
    try:
        bundle_id, rows_done = progress["ExportBundleId"], progress["rows_done"]
        bundle_stop = progress.get("ExportBundleStop")
    except (KeyError, TypeError):
        raise _bad_state("'in_progress' must hold ExportBundleId and rows_done") from None
    if not all(type(v) is int and v >= 0 for v in (bundle_id, rows_done)):
        raise _bad_state("'in_progress' ExportBundleId and rows_done must be whole numbers")
    export_ref = {k: v for k, v in progress.items()
                  if k not in ("ExportBundleId", "ExportBundleStop", "rows_done")}
    return Bookmark(stop=stop, bundle_id=bundle_id, bundle_stop=bundle_stop,
                    rows_done=rows_done, export_ref=export_ref)


class StateKeeper:
    """Builds each STATE value from the state the run started with (`initial`)."""

    def __init__(self, initial_state):
        initial = copy.deepcopy(initial_state) if isinstance(initial_state, dict) else {}
        if isinstance(initial.get(STREAM), str) and "bookmarks" not in initial:
            initial = {"bookmarks": {STREAM: {"ExportBundleStop": initial.pop(STREAM)}}}
        self._bookmarks = initial.get("bookmarks") or {}
        events = dict(self._bookmarks.get(STREAM) or {})
        self.initial = self._value(dict(events), initial.get("currently_syncing"))
        events.pop("in_progress", None)
        self._events = events

    def _value(self, events, syncing):
        bookmarks = dict(self._bookmarks)
        bookmarks[STREAM] = events
        return {"bookmarks": bookmarks, "currently_syncing": syncing}

    def in_progress(self, bundle, rows_done, export_ref=None):
        """STATE while `bundle` is partly emitted: rows [0, rows_done) are out.

        `export_ref` names the Segment export being read, so a resume reads it again."""
        events = dict(self._events)
        events["in_progress"] = {"ExportBundleId": bundle.id,
                                 "ExportBundleStop": bundle.stop_text,
                                 "rows_done": rows_done, **(export_ref or {})}
        return self._value(events, STREAM)

    def bundle_done(self, bundle):
        """STATE once every row of `bundle` is out."""
        self._events = dict(self._events, ExportBundleStop=bundle.stop_text)
        return self._value(dict(self._events), STREAM)

    def final(self):
        """The last STATE of a run: `currently_syncing` cleared."""
        return self._value(dict(self._events), None)
