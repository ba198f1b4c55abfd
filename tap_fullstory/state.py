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
`skipped` lists the units `on_bad_bundle: skip` passed over, so none is lost silently; an
entry leaves the list once its unit is emitted in full again.

The bookmark `ExportBundleStop` is a moment: every event whose EventStart is before it is
out. It is the Stop of the last unit emitted in full, or end_date when a run's range ended
inside a unit; a run emits only events at or after it, whatever units it reads them from
(another window size, another source). A state from an earlier version with
`in_progress.events_before` is read as that moment. The earlier public tap's flat
`{"events": "<bundle Stop>"}` is read as a bookmark.
"""

import copy
from dataclasses import dataclass, field, replace

from tap_fullstory.config import parse_timestamp
from tap_fullstory.errors import ConfigError
from tap_fullstory.timestamps import format_time

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
    id_key: str = ID_KEY           # how the stream names a unit's id and Stop
    stop_key: str = STOP_KEY

    def moment(self):
        """The bookmark as an aware datetime (None before the first unit is out)."""
        return None if self.stop is None else parse_timestamp(
            self.stop, f"State bookmark {self.stop_key}")

    def since(self, start_date):
        """The earliest EventStart a run emits: start_date, or the bookmark if later."""
        moment = self.moment()
        return start_date if moment is None else max(moment, start_date)

    def list_from(self, start_date):
        """The unix second to plan units from: those whose Stop is after it."""
        return int(self.since(start_date).timestamp())

    def rows_to_skip(self, unit_id):
        """How many of `unit_id`'s rows are out: it is in progress, or a partly emitted unit
        listed under `skipped` that is offered again."""
        if unit_id == self.unit_id:
            return self.rows_done
        return max((entry.get("rows_done", 0) for entry in self.skipped
                    if entry.get(self.id_key) == unit_id), default=0)

    def origin_of(self, unit_id):
        """The export the state says `unit_id` is being read from ({} if none)."""
        return dict(self.origin) if unit_id == self.unit_id else {}

    def in_progress(self, unit, rows_done, origin=None):
        """Rows [0, rows_done) of `unit` are out."""
        return replace(self, unit_id=unit.id, unit_stop=unit.stop_text, rows_done=rows_done,
                       origin=dict(origin or {}))

    def reached(self, moment):
        """Every event earlier than `moment` (RFC 3339) is out: a run's range ended inside
        the unit it was reading, and a later run sends the unit's events from `moment`.
        The bookmark never moves back."""
        if self.stop is not None and parse_timestamp(moment) < self.moment():
            moment = self.stop
        return replace(self, stop=moment, unit_id=None, unit_stop=None, rows_done=0,
                       origin={})

    def done(self, unit):
        """Every row of `unit` is out (and it leaves `skipped`, if it was there)."""
        kept = tuple(entry for entry in self.skipped if entry.get(self.id_key) != unit.id)
        return replace(self.reached(unit.stop_text), skipped=kept)

    def skip(self, unit, reason, rows_done=0):
        """`unit` is passed over; its first `rows_done` rows are out, and so are its events
        before the bookmark (`events_from`, where a refetch would start)."""
        moment = self.moment()
        later = moment is not None and moment.timestamp() > unit.start
        return self._passed_over(unit.id, unit.stop_text, reason, rows_done,
                                 self.stop if later else format_time(unit.start))

    def vanished(self, reason):
        """The unit in progress is no longer offered: listed under `skipped` with the rows
        of it that are out, so that if it is offered again (end_date or settle_hours
        moved back) it goes on after them. The bookmark stays."""
        return self._passed_over(self.unit_id, self.unit_stop, reason, self.rows_done,
                                 self.stop, move=False)

    def _passed_over(self, unit_id, stop, reason, rows_done, events_from, move=True):
        entry = {self.id_key: unit_id, self.stop_key: stop, "reason": reason}
        if events_from is not None:
            entry["events_from"] = events_from
        if rows_done:
            entry["rows_done"] = rows_done
        kept = tuple(e for e in self.skipped if e.get(self.id_key) != unit_id)
        if move and stop is not None:
            return replace(self.reached(stop), skipped=kept + (entry,))
        return replace(self, unit_id=None, unit_stop=None, rows_done=0, origin={},
                       skipped=kept + (entry,))

    def to_dict(self):
        value = {} if self.stop is None else {self.stop_key: self.stop}
        if self.unit_id is not None:
            progress = {self.id_key: self.unit_id}
            if self.unit_stop is not None:
                progress[self.stop_key] = self.unit_stop
            progress["rows_done"] = self.rows_done
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
    before = progress.get("events_before")  # written by versions before the moment bookmark
    if before is not None:
        moment = parse_timestamp(before, "State in_progress events_before")
        if stop is None or moment > parse_timestamp(stop):
            stop = before
        if not rows_done:  # only the unit's events before `before` were out
            return UnitBookmark(stop=stop, **keys)
    origin = {k: v for k, v in progress.items()
              if k not in (id_key, stop_key, "rows_done", "events_before")}
    if not all(isinstance(v, str) and v for v in origin.values()):
        raise bad_state(f"'in_progress' of '{stream}' names an export that is not a pair of "
                        "ids (operationId, searchExportId, and its expires)")
    return UnitBookmark(stop=stop, unit_id=unit_id, unit_stop=unit_stop, rows_done=rows_done,
                        origin=origin, **keys)


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

