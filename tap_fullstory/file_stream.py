"""A file-based stream (events, individuals): units planned from the bookmark, each
downloaded ahead into a spool file, decoded, shaped and emitted with in-unit checkpoints.

The main thread only reads spool files, writes stdout and waits through STOP; planning and
downloads run on background threads (feed.py). `state()` is at every moment the STATE
that covers exactly the records handed to the writer.
"""

import collections
import functools
import itertools
import logging
import time

import backoff
from singer import metrics

from tap_fullstory import catalog as catalogs
from tap_fullstory.data_export import BundleSource
from tap_fullstory.decode import iter_events
from tap_fullstory.errors import BundleFormatError, NotFound, TapError
from tap_fullstory.feed import Prefetcher, in_background
from tap_fullstory.progress import SyncProgress
from tap_fullstory.segment_export import ExportFailed, WindowSource
from tap_fullstory.shape import Bounds, RecordShaper
from tap_fullstory.spool import Standing, check_spool_dir, download
from tap_fullstory.state import read_unit_bookmark
from tap_fullstory.stopping import STOP
from tap_fullstory.timestamps import format_time

LOGGER = logging.getLogger(__name__)
POISON = (BundleFormatError, NotFound, ExportFailed)  # what on_bad_bundle: skip passes over
MAX_SKIPS_IN_A_ROW = 5  # more bad units than this in a row is a setting or an outage
SKIP_BATCH = 1 << 16    # rows passed over between two looks at the stop request
# What a row no decoder or shaper rule foresaw raises: a malformed row, never a traceback.
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError,
             OverflowError, UnicodeError)


def make_source(stream, transport, config):
    """Where a file-based stream's units come from."""
    if stream.export_type == "TYPE_EVENT" and config.source != "segment_export":
        return BundleSource(transport, config)
    return WindowSource(transport, config, stream.export_type)


def unexpected_type(content_type):
    """A Content-Type no export body comes as (a proxy's text/html), or None."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not kind or any(word in kind for word in ("json", "gzip", "octet-stream", "ndjson")):
        return None
    return kind


class Position:
    """The unit being emitted, how many of its rows are out, and the export they came from:
    what a STATE records."""

    __slots__ = ("unit", "done", "origin")

    def __init__(self, unit, done, origin):
        self.unit, self.done, self.origin = unit, done, origin

    def standing(self):
        """Where the unit stands now, for downloading it again."""
        return Standing(self.done, dict(self.origin))


class Unfetchable:
    """A poison unit found while downloading (a 404), handed over in the feed's order."""

    def __init__(self, unit, error, standing):
        self.unit, self.error = unit, error
        self.first_row, self.origin = standing.rows_done, dict(standing.origin)

    def close(self):
        pass


class FileStreamSync:
    """One file-based stream. A body that turns out broken while it is parsed is
    downloaded again (up to max_retries times) and the rows already emitted are skipped."""

    def __init__(self, stream, entry, transport, config, writer, keeper):
        self.stream, self.name = stream, stream.name
        self.config, self.writer, self.keeper = config, writer, keeper
        id_key, stop_key, _ = stream.unit_fields
        self.bookmark = read_unit_bookmark(keeper.value(), self.name, id_key, stop_key)
        self.source = make_source(stream, transport, config)
        catalogs.require_fields(entry, stream)
        fields = catalogs.emitted_fields(entry)
        schema = entry.schema.to_dict()
        # Only rows with a time to split on are bounded by end_date within a unit.
        self.end = config.end_date if stream.start_field else None
        self.key_properties = catalogs.key_properties(entry)
        self.shaper = RecordShaper(schema, fields, stream.catch_all, config.start_date,
                                   stream.start_field, stream.unit_fields, self.end,
                                   self.key_properties)
        self.schema = catalogs.emitted_schema(schema, fields)
        self.position = None
        self.progress = None
        self._resuming = self.bookmark.unit_id  # until the plan shows it is still offered
        self._skips_in_a_row = 0

    def state(self):
        """The STATE value for exactly what has been handed to the writer."""
        bookmark = self.bookmark
        if self.position is not None and self.position.done:
            bookmark = bookmark.in_progress(self.position.unit, self.position.done,
                                            self.position.origin)
        return self.keeper.update(self.name, bookmark.to_dict())

    def run(self):
        config, waited = self.config, self.writer.waited
        self.writer.write_schema(self.name, self.schema, self.key_properties,
                                 [self.stream.replication_key])
        check_spool_dir(config.spool_dir)
        start = self.bookmark.list_from(config.start_date)
        if self._resuming is not None:
            resuming = f" (resuming {self._resuming} after row {self.bookmark.rows_done})"
        else:
            resuming = ""
        LOGGER.info("%s: planning from %s: everything that ends after %s%s.", self.name,
                    self.source.host, format_time(start), resuming)
        # without a time to split rows on (individuals), a unit belongs to the range its
        # Stop falls in
        plan = self.source.plan(start, whole=not self.stream.start_field)
        survey = in_background(plan.survey, "plan")
        paced = config.max_downloads_per_minute if self.source.unit_name == "bundle" else None
        self.progress = SyncProgress(self.name, survey, self.source.unit_name, paced)
        with metrics.record_counter(self.name) as counter, \
                Prefetcher(functools.partial(self._jobs, plan), ahead=1, name="feed") as feed:
            for fetched in feed:
                started = time.monotonic()
                unit = fetched.unit
                self._still_offered(unit)
                emitted, passed_over = self._emit_unit(fetched)
                self.position = None
                counter.increment(emitted)
                if not passed_over:
                    if self.end is not None and unit.stop > self.end.timestamp():
                        # the next range has the rest of this unit's events
                        self.bookmark = self.bookmark.reached(format_time(self.end))
                    else:
                        self.bookmark = self.bookmark.done(unit)
                    self._skips_in_a_row = 0
                    self.writer.write_state(self.state())
                    self.progress.unit_done(unit, fetched.spool.size, emitted,
                                            time.monotonic() - started, fetched.first_row)
                STOP.check()
        self._still_offered(None)
        self.shaper.report(LOGGER)
        self.progress.finished(self.writer.waited - waited)

    def _jobs(self, plan):
        """The feed's jobs, made on its thread as the plan is walked (bundles are listed a
        page at a time): each downloads one unit, with the next ones in view so that a
        source can start their exports ahead."""
        ahead = self.config.max_exports_in_flight
        initial = self.bookmark  # only the first unit can be the one it has in progress
        units = iter(plan)
        coming = collections.deque(itertools.islice(units, ahead))
        while coming:
            unit = coming[0]
            standing = Standing(initial.rows_to_skip(unit.id), initial.origin_of(unit.id))
            yield functools.partial(self._download, unit, standing, list(coming))
            coming.popleft()
            coming.extend(itertools.islice(units, 1))

    def _still_offered(self, unit):
        """The first unit of the plan (None: the plan is empty) must be the one the state
        has in progress, if any; else that one is no longer offered, and what is out of it
        is recorded under `skipped` rather than lost silently."""
        resuming, self._resuming = self._resuming, None
        if resuming is None or (unit is not None and unit.id == resuming):
            return
        done = self.bookmark.rows_done
        reason = (f"{self.source.unit_name} {resuming} was partly emitted ({done} row(s)) and "
                  "is no longer offered: FullStory's retention passed it, or end_date, "
                  "settle_hours, export_window_hours or source changed since")
        LOGGER.error("Skipped %s. It is listed under 'skipped' in the state with the rows of "
                     "it that are out; see the README to fetch the rest again.", reason)
        self.bookmark = self.bookmark.vanished(reason + ".")
        self.writer.write_state(self.state())

    def _download(self, unit, standing, coming=()):
        """A feed job: `unit`'s body as a FetchedUnit, or an Unfetchable when the unit is
        poison (the emitting side fails or skips it, as on_bad_bundle says). `standing` is
        where the unit stands; `coming` are the units from this one on, whose exports the
        source may start ahead."""
        try:
            if coming:
                self.source.prepare(coming, standing)
            return download(self.source, unit, standing, self.config.spool_dir)
        except POISON as exc:
            return Unfetchable(unit, exc, standing)

    def _bounds(self, unit):
        """Which of `unit`'s rows this run emits: from start_date or the bookmark, whichever
        is later (a bookmark from another grid or source bounds them too), to end_date."""
        finishes = self.end is None or unit.stop <= self.end.timestamp()
        return Bounds(self.bookmark.since(self.config.start_date), self.end, finishes)

    def _emit_unit(self, fetched):
        """Emit one fetched unit from its first row not yet out: (how many records went
        out, whether it was passed over, as on_bad_bundle: skip says)."""
        unit = fetched.unit
        self.position = Position(unit, fetched.first_row, fetched.origin)
        bounds = self._bounds(unit)
        emitted = 0
        delays = backoff.expo(factor=self.config.retry_backoff_seconds)
        next(delays)  # backoff's generators start with a priming value
        for attempt in itertools.count(1):
            try:
                if isinstance(fetched, Unfetchable):
                    raise fetched.error
                with fetched:  # first_row is 0 for a new export: no row order is kept
                    self.position.done = fetched.first_row
                    self.position.origin = fetched.origin
                    emitted += self._emit_rows(fetched.spool, bounds)
                return emitted, False
            except POISON as exc:
                if isinstance(exc, BundleFormatError) and not isinstance(fetched, Unfetchable):
                    exc.served_as = unexpected_type(fetched.spool.content_type)
                if isinstance(fetched, Unfetchable) or attempt > self.config.max_retries:
                    return self._give_up(unit, exc, emitted)
                wait = backoff.full_jitter(next(delays))
                LOGGER.warning("%s Downloading it again in %.1f s (try %d of %d).", exc,
                               wait, attempt + 1, self.config.max_retries + 1)
                STOP.wait(wait)
                standing = self.position.standing()
                fetched = in_background(lambda s=standing: self._download(unit, s), "retry")

    def _give_up(self, unit, exc, emitted):
        """Fail on a poison unit, or skip it (on_bad_bundle); the records it gave."""
        done = self.position.done
        served = getattr(exc, "served_as", None)
        reason = f"{exc}{f' FullStory served it as {served}.' if served else ''}"
        if self.config.on_bad_bundle != "skip":
            raise TapError(f"{reason} {self._what_to_do(exc, done)} (on_bad_bundle: skip "
                           "would pass over it).") from None
        if self._skips_in_a_row >= MAX_SKIPS_IN_A_ROW:
            raise TapError(f"{reason} That is {self._skips_in_a_row + 1} bad "
                           f"{self.source.unit_name}s in a row: not bad data but a setting or "
                           "an outage, so this one is not skipped. Check the settings the "
                           "lines above name, then run again from the last STATE, which "
                           "resumes at it.") from None
        self._skips_in_a_row += 1
        LOGGER.error("Skipped %s: %s%s It is listed under 'skipped' in the state; see the "
                     "README to fetch it again.", self.source.describe_period(unit), reason,
                     f" Its first {done} row(s) are out." if done else "")
        self.bookmark = self.bookmark.skip(unit, reason, done)
        self.position = None
        self.writer.write_state(self.state())
        self.progress.unit_skipped(unit, emitted)
        return emitted, True

    def _what_to_do(self, exc, done):
        if isinstance(exc, BundleFormatError):
            tries = self.config.max_retries + 1
            out = (f"its first {done} row(s) are out and the last STATE resumes after them"
                   if done else "none of its rows is out and the last STATE resumes at it")
            return f"Gave up after {tries} download{'s' if tries > 1 else ''}; {out}"
        if isinstance(exc, ExportFailed) or self.source.unit_name != "bundle":
            return "Run again to export it afresh; the last STATE resumes at this window"
        return "Run again to list bundles afresh"

    def _emit_rows(self, spool, bounds):
        """Emit rows from position.done on, within `bounds`; how many records went out.
        Checks the stop request between rows (and while passing over rows already out);
        position.done is exact however this ends."""
        unit, shaper, writer, position = spool.unit, self.shaper, self.writer, self.position
        writer.start_records(self.name, time_extracted=spool.time_extracted)
        identity = shaper.identity_values(unit)
        checkpoint_every = self.config.checkpoint_every
        emitted = since_state = 0
        what = self.source.describe(unit)
        events = iter_events(spool.open_reader, unit.id, self.source.layout, what)
        try:
            for passed in range(0, position.done, SKIP_BATCH):
                collections.deque(itertools.islice(events, min(SKIP_BATCH,
                                                               position.done - passed)),
                                  maxlen=0)  # consumed in C
                STOP.check()
            for row, event in enumerate(events, start=position.done):
                if STOP.signum is not None:
                    STOP.check()
                record = shaper.shape(event, identity, row, bounds)
                if record is not None:
                    writer.write_record(record)
                    emitted += 1
                    since_state += 1
                position.done = row + 1
                if since_state >= checkpoint_every:
                    writer.write_state(self.state())
                    since_state = 0
        except MALFORMED as exc:
            raise BundleFormatError(f"{what} row {position.done} is malformed: it could not "
                                    f"be read ({type(exc).__name__}).") from None
        return emitted
