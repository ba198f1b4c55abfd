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
from tap_fullstory.units import format_stop

LOGGER = logging.getLogger(__name__)
POISON = (BundleFormatError, NotFound, ExportFailed)  # what on_bad_bundle: skip passes over


def make_source(stream, transport, config, bookmark):
    """Where a file-based stream's units come from."""
    if stream.export_type == "TYPE_EVENT" and config.source != "segment_export":
        return BundleSource(transport, config)
    return WindowSource(transport, config, stream.export_type, bookmark)


class Position:
    """The unit being emitted and how many of its rows are out: what a STATE records."""

    __slots__ = ("unit", "done", "export_ref")

    def __init__(self, unit, done, export_ref):
        self.unit, self.done, self.export_ref = unit, done, export_ref


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
        fields = catalogs.emitted_fields(entry)
        schema = entry.schema.to_dict()
        self.shaper = RecordShaper(schema, fields, stream.catch_all, config.start_date,
                                   stream.start_field, stream.unit_fields)
        # Targets make columns from the SCHEMA message: it lists the emitted fields only.
        self.schema = dict(schema, properties={k: v for k, v in schema["properties"].items()
                                               if k in fields})
        self.key_properties = catalogs.key_properties(entry)
        self.position = None
        self.progress = None

    def state(self):
        """The STATE value for exactly what has been handed to the writer."""
        bookmark = self.bookmark
        if self.position is not None and self.position.done:
            bookmark = bookmark.in_progress(self.position.unit, self.position.done,
                                            self.position.export_ref)
        return self.keeper.update(self.name, bookmark.to_dict())

    def run(self):
        config = self.config
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
                skip = self.bookmark.rows_to_skip(unit.id)
                emitted = self._emit_unit(spool, skip)
                self.position = None
                if emitted is not None:
                    self.bookmark = self.bookmark.done(unit)
                    self.writer.write_state(self.state())
                    counter.increment(emitted)
                    self.progress.unit_done(spool, emitted, time.monotonic() - started, skip)
                STOP.check()
        self.shaper.report(LOGGER)
        self.progress.finished(self.writer.waited)

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

    def _emit_unit(self, spool, skip):
        """Emit one unit from row `skip`; how many records went out, or None if skipped."""
        unit = spool.unit
        self.position = Position(unit, skip, None)
        emitted = 0
        delays = backoff.expo(factor=self.config.retry_backoff_seconds)
        next(delays)  # backoff's generators start with a priming value
        for attempt in itertools.count(1):
            try:
                if isinstance(spool, Unfetchable):
                    raise spool.error
                with spool:
                    if spool.restarted:  # a new export: its rows may come in a new order
                        self.position.done = 0
                    self.position.export_ref = spool.export_ref
                    emitted += self._emit_rows(spool)
                return emitted
            except POISON as exc:
                if isinstance(spool, Unfetchable) or attempt > self.config.max_retries:
                    return self._give_up(unit, exc)
                wait = backoff.full_jitter(next(delays))
                LOGGER.warning("%s Downloading it again in %.1f s (try %d of %d).", exc,
                               wait, attempt + 1, self.config.max_retries + 1)
                STOP.wait(wait)
                spool = in_background(lambda: self._download(unit), "retry")

    def _give_up(self, unit, exc):
        done = self.position.done
        if self.config.on_bad_bundle != "skip":
            if isinstance(exc, BundleFormatError):
                raise TapError(f"{exc} Gave up after {self.config.max_retries + 1} downloads; "
                               f"rows before {done} are out and the last STATE resumes after "
                               "them (on_bad_bundle: skip would pass over it).") from None
            raise TapError(f"{exc} (on_bad_bundle: skip would pass over it.)") from None
        reason = str(exc)
        LOGGER.error("Skipped %s: %s%s It is listed under 'skipped' in the state; see the "
                     "README to fetch it again.", self.source.describe_period(unit), reason,
                     f" Its first {done} row(s) are out." if done else "")
        self.bookmark = self.bookmark.skip(unit, reason, done)
        self.position = None
        self.writer.write_state(self.state())
        self.progress.unit_skipped(unit)
        return None

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
