"""A file-based stream (events, individuals): units planned from the bookmark, each
downloaded ahead into a spool file, decoded, shaped and emitted with in-unit checkpoints.

The main thread only reads spool files, writes stdout and waits through STOP; planning and
downloads run on background threads (feed.py). `state()` is at every moment the STATE
that covers exactly the records handed to the writer.
"""

import functools
import itertools
import logging
import time

import backoff
from singer import metrics

from tap_fullstory import catalog as catalogs
from tap_fullstory.config import parse_timestamp
from tap_fullstory.data_export import BundleSource
from tap_fullstory.decode import iter_events
from tap_fullstory.errors import BundleFormatError, NotFound, TapError
from tap_fullstory.feed import Prefetcher, in_background
from tap_fullstory.progress import SyncProgress
from tap_fullstory.segment_export import ExportFailed, WindowSource
from tap_fullstory.shape import RecordShaper
from tap_fullstory.spool import check_spool_dir, download
from tap_fullstory.state import read_unit_bookmark
from tap_fullstory.stopping import STOP
from tap_fullstory.units import format_moment, format_stop

LOGGER = logging.getLogger(__name__)
POISON = (BundleFormatError, NotFound, ExportFailed)  # what on_bad_bundle: skip passes over


def make_source(stream, transport, config, bookmark):
    """Where a file-based stream's units come from."""
    if stream.export_type == "TYPE_EVENT" and config.source != "segment_export":
        return BundleSource(transport, config)
    return WindowSource(transport, config, stream.export_type, bookmark)


def unexpected_type(content_type):
    """A Content-Type no export body comes as (a proxy's text/html), or None."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not kind or any(word in kind for word in ("json", "gzip", "octet-stream", "ndjson")):
        return None
    return kind


class Position:
    """The unit being emitted and how many of its rows are out: what a STATE records."""

    __slots__ = ("unit", "done", "origin")

    def __init__(self, unit, done, origin):
        self.unit, self.done, self.origin = unit, done, origin


class Unfetchable:
    """A poison unit found while downloading (a 404), handed over in the feed's order."""

    def __init__(self, unit, error):
        self.unit, self.error = unit, error

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
        self.source = make_source(stream, transport, config, self.bookmark)
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
        resuming = self.bookmark.unit_id
        LOGGER.info("%s: planning from %s: everything that ends after %s%s.", self.name,
                    self.source.host, format_stop(start),
                    f" (resuming {resuming} after row {self.bookmark.rows_done})"
                    if resuming else "")
        units = in_background(lambda: self.source.plan(start), "plan")
        if config.end_date is not None and not self.stream.start_field:
            # no time to split rows on: a unit belongs to the range its Stop falls in
            units = [unit for unit in units if unit.stop <= config.end_date.timestamp()]
        if resuming is not None and resuming not in {unit.id for unit in units}:
            LOGGER.warning("%s %s, which the state says is partly emitted, is no longer "
                           "offered; its remaining rows cannot be read.",
                           self.source.unit_name.capitalize(), resuming)
        paced = config.max_downloads_per_minute if self.source.unit_name == "bundle" else None
        self.progress = SyncProgress(self.name, units, self.source.unit_name, paced)
        ahead = config.max_exports_in_flight

        def jobs():
            for number, unit in enumerate(units):
                yield functools.partial(self._download, unit, units[number:number + ahead])

        with metrics.record_counter(self.name) as counter, \
                Prefetcher(jobs, ahead=1, name="feed") as feed:
            for spool in feed:
                started = time.monotonic()
                unit = spool.unit
                resume_at = self.bookmark.rows_to_skip(unit.id)
                emitted, passed_over = self._emit_unit(spool, resume_at)
                origin = self.position.origin if self.position else None
                self.position = None
                counter.increment(emitted)
                if not passed_over:
                    if self.end is not None and unit.stop > self.end.timestamp():
                        # the next range has the rest of this unit's events
                        self.bookmark = self.bookmark.events_before(
                            unit, format_moment(self.end), origin)
                    else:
                        self.bookmark = self.bookmark.done(unit)
                    self.writer.write_state(self.state())
                    self.progress.unit_done(spool, emitted, time.monotonic() - started, resume_at)
                STOP.check()
        self.shaper.report(LOGGER)
        self.progress.finished(self.writer.waited - waited)

    def _download(self, unit, coming=()):
        """A feed job: `unit`'s body in a Spool, or an Unfetchable when the unit is poison
        (the emitting side fails or skips it, as on_bad_bundle says). `coming` are the units
        from this one on, whose exports the source may start ahead."""
        try:
            if coming:
                self.source.prepare(coming)
            return download(self.source, unit, self.config.spool_dir)
        except POISON as exc:
            return Unfetchable(unit, exc)

    def _emit_unit(self, spool, resume_at):
        """Emit one unit from row `resume_at`: (how many records went out, whether it was
        passed over, as on_bad_bundle: skip says)."""
        unit = spool.unit
        self.position = Position(unit, resume_at, None)
        self.shaper.since = self.config.start_date
        self.shaper.finishes_unit = self.end is None or unit.stop <= self.end.timestamp()
        if unit.id == self.bookmark.unit_id and self.bookmark.before is not None:
            self.shaper.since = max(self.config.start_date,
                                    parse_timestamp(self.bookmark.before))
        emitted = 0
        delays = backoff.expo(factor=self.config.retry_backoff_seconds)
        next(delays)  # backoff's generators start with a priming value
        for attempt in itertools.count(1):
            try:
                if isinstance(spool, Unfetchable):
                    raise spool.error
                with spool:
                    if spool.renumbered:  # a new export: its rows may come in a new order
                        self.position.done = 0
                    self.position.origin = spool.origin
                    emitted += self._emit_rows(spool)
                return emitted, False
            except POISON as exc:
                if isinstance(exc, BundleFormatError) and not isinstance(spool, Unfetchable):
                    exc.served_as = unexpected_type(spool.content_type)
                if isinstance(spool, Unfetchable) or attempt > self.config.max_retries:
                    return self._give_up(unit, exc, emitted)
                wait = backoff.full_jitter(next(delays))
                LOGGER.warning("%s Downloading it again in %.1f s (try %d of %d).", exc,
                               wait, attempt + 1, self.config.max_retries + 1)
                STOP.wait(wait)
                spool = in_background(lambda: self._download(unit), "retry")

    def _give_up(self, unit, exc, emitted):
        """Fail on a poison unit, or skip it (on_bad_bundle); the records it gave."""
        done = self.position.done
        served = getattr(exc, "served_as", None)
        reason = f"{exc}{f' FullStory served it as {served}.' if served else ''}"
        if self.config.on_bad_bundle != "skip":
            raise TapError(f"{reason} {self._what_to_do(exc, done)} (on_bad_bundle: skip "
                           "would pass over it).") from None
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

    def _emit_rows(self, spool):
        """Emit rows from position.done on; how many records went out. Checks the stop
        request between rows; position.done is exact however this ends."""
        unit, shaper, writer, position = spool.unit, self.shaper, self.writer, self.position
        writer.start_records(self.name, time_extracted=spool.time_extracted)
        identity = shaper.identity_values(unit)
        checkpoint_every = self.config.checkpoint_every
        emitted = since_state = 0
        events = itertools.islice(iter_events(spool.open_reader, unit.id, self.source.layout,
                                              self.source.describe(unit)),
                                  position.done, None)
        for row, event in enumerate(events, start=position.done):
            if STOP.signum is not None:
                STOP.check()
            record = shaper.shape(event, identity, row)
            if record is not None:
                writer.write_record(record)
                emitted += 1
                since_state += 1
            position.done = row + 1
            if since_state >= checkpoint_every:
                writer.write_state(self.state())
                since_state = 0
        return emitted
