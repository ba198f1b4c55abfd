"""The STATE format: where a sync resumes, and how each checkpoint is written.

    {"bookmarks": {"events": {
         "ExportBundleStop": "<Stop of the last unit emitted in full>",
         "in_progress": {"ExportBundleId": 42, "ExportBundleStop": "...", "rows_done": 5000},
         "skipped": [{"ExportBundleId": 41, "ExportBundleStop": "...", "reason": "..."}]}},
     "currently_syncing": "events"}

`in_progress` is present only while a unit (a bundle or an export window) is partly
emitted: `rows_done` of its rows (counted from row 0, including rows dropped by start_date)
are out and must not be sent again. For the Segment Export source it also names the export
being read (`operationId`, `searchExportId`), so a resume downloads the same result again.
`skipped` lists the units `on_bad_bundle: skip` passed over, so none is lost silently.
The earlier public tap's flat `{"events": "<bundle Stop>"}` is read as a bookmark.
"""

import copy
from dataclasses import dataclass, field, replace

from tap_fullstory.config import parse_timestamp
from tap_fullstory.errors import ConfigError

STREAM = "events"
STOP_KEY = "ExportBundleStop"
ID_KEY = "ExportBundleId"


@dataclass(frozen=True)
class UnitBookmark:
    """How far a file-based stream has been emitted."""

    stop: str = None               # Stop of the last unit emitted in full, as written
    unit_id: int = None            # the unit emitted in part, if any
    unit_stop: str = None
    rows_done: int = 0
    origin: dict = field(default_factory=dict)  # where the unit's body came from (an export)
    skipped: tuple = ()            # units passed over by on_bad_bundle: skip
    before: str = None             # the unit's events earlier than this are out
    id_key: str = ID_KEY           # how the stream names a unit's id and Stop
    stop_key: str = STOP_KEY

    def list_from(self, start_date):
        """The unix second to plan units from: those whose Stop is after it."""
        moment = start_date if self.stop is None else max(
            parse_timestamp(self.stop, f"State bookmark {self.stop_key}"), start_date)
        return int(moment.timestamp())

    def rows_to_skip(self, unit_id):
        return self.rows_done if unit_id == self.unit_id else 0

    def in_progress(self, unit, rows_done, origin=None):
        """Rows [0, rows_done) of `unit` are out."""
        before = self.before if unit.id == self.unit_id else None
        return replace(self, unit_id=unit.id, unit_stop=unit.stop_text, rows_done=rows_done,
                       origin=dict(origin or {}), before=before)

    def events_before(self, unit, moment, origin=None):
        """`unit` straddles a run's end_date: its events earlier than `moment` are out, and a
        later run without that end_date sends the rest."""
        return replace(self.in_progress(unit, 0, origin), before=moment)

    def done(self, unit):
        """Every row of `unit` is out."""
        return replace(self, stop=unit.stop_text, unit_id=None, unit_stop=None, rows_done=0,
                       origin={}, before=None)

    def skip(self, unit, reason, rows_done=0):
        """`unit` is passed over; its first `rows_done` rows are out."""
        entry = {self.id_key: unit.id, self.stop_key: unit.stop_text, "reason": reason}
        if rows_done:
            entry["rows_done"] = rows_done
        return replace(self.done(unit), skipped=self.skipped + (entry,))

    def to_dict(self):
        value = {} if self.stop is None else {self.stop_key: self.stop}
        if self.unit_id is not None:
            progress = {self.id_key: self.unit_id}
            if self.unit_stop is not None:
                progress[self.stop_key] = self.unit_stop
            progress["rows_done"] = self.rows_done
            if self.before is not None:
                progress["events_before"] = self.before
            value["in_progress"] = {**progress, **self.origin}
        if self.skipped:
            value["skipped"] = [dict(entry) for entry in self.skipped]
        return value


def bad_state(detail):
    return ConfigError(f"State {detail}; pass the last STATE line the tap printed, or no "
                       "--state to start from start_date.")


def validate_state(state):
    """The state as a dict with `bookmarks`, the legacy flat format converted; or a
    ConfigError that says what is wrong."""
    if state in (None, {}):
        return {"bookmarks": {}, "currently_syncing": None}
    if not isinstance(state, dict):
        raise bad_state(f"must be a JSON object, not a {type(state).__name__}")
    if isinstance(state.get(STREAM), str) and "bookmarks" not in state:
        parse_timestamp(state[STREAM], "Legacy state value 'events'")
        return {"bookmarks": {STREAM: {STOP_KEY: state[STREAM]}}, "currently_syncing": None}
    unknown = set(state) - {"bookmarks", "currently_syncing"}
    if unknown:
        raise bad_state(f"has keys this tap never writes ({', '.join(sorted(unknown))})")
    bookmarks = state.get("bookmarks")
    bookmarks = {} if bookmarks is None else bookmarks
    if not isinstance(bookmarks, dict):
        raise bad_state("'bookmarks' must be an object")
    syncing = state.get("currently_syncing")
    if syncing is not None and not isinstance(syncing, str):
        raise bad_state("'currently_syncing' must be a stream name or null")
    return {"bookmarks": copy.deepcopy(bookmarks), "currently_syncing": syncing}


def stream_bookmark(state, stream):
    """The bookmark object a (validated) state holds for `stream` ({} if none)."""
    entry = state["bookmarks"].get(stream)
    entry = {} if entry is None else entry
    if not isinstance(entry, dict):
        raise bad_state(f"'bookmarks.{stream}' must be an object")
    return entry


def read_unit_bookmark(state, stream=STREAM, id_key=ID_KEY, stop_key=STOP_KEY):
    """The UnitBookmark a (validated) state holds for a file-based stream."""
    entry = stream_bookmark(state, stream)
    stop = entry.get(stop_key)
    if stop is not None:
        parse_timestamp(stop, f"State bookmark {stop_key}")
    skipped = entry.get("skipped") or []
    if not isinstance(skipped, list) or not all(isinstance(s, dict) for s in skipped):
        raise bad_state(f"'skipped' of '{stream}' must be a list of objects")
    keys = {"id_key": id_key, "stop_key": stop_key, "skipped": tuple(skipped)}
    progress = entry.get("in_progress")
    if progress is None:
        return UnitBookmark(stop=stop, **keys)
    try:
        unit_id, rows_done = progress[id_key], progress["rows_done"]
        unit_stop = progress.get(stop_key)
    except (KeyError, TypeError):
        raise bad_state(f"'in_progress' must hold {id_key} and rows_done") from None
    if not all(type(v) is int and v >= 0 for v in (unit_id, rows_done)):
        raise bad_state(f"'in_progress' {id_key} and rows_done must be whole numbers")
    before = progress.get("events_before")
    if before is not None:
        parse_timestamp(before, "State in_progress events_before")
    origin = {k: v for k, v in progress.items()
              if k not in (id_key, stop_key, "rows_done", "events_before")}
    if not all(isinstance(v, str) and v for v in origin.values()):
        raise bad_state(f"'in_progress' of '{stream}' names an export that is not a pair of "
                        "ids (operationId, searchExportId, and its expires)")
    return UnitBookmark(stop=stop, unit_id=unit_id, unit_stop=unit_stop, rows_done=rows_done,
                        origin=origin, before=before, **keys)


class StateKeeper:
    """The run's state: one bookmark per stream and the stream being synced."""

    def __init__(self, state):
        state = validate_state(state)
        self.bookmarks = state["bookmarks"]
        self.currently_syncing = state["currently_syncing"]

    def value(self):
        """The STATE value as it stands."""
        return {"bookmarks": copy.deepcopy(self.bookmarks),
                "currently_syncing": self.currently_syncing}

    def update(self, stream, bookmark):
        """Record `stream`'s bookmark (a dict) while it syncs; the new STATE value."""
        self.bookmarks[stream] = bookmark
        self.currently_syncing = stream
        return self.value()

    def finish(self):
        """The last STATE value of a run: `currently_syncing` cleared."""
        self.currently_syncing = None
        return self.value()

