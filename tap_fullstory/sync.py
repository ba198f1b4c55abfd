"""Sync: list bundles from the bookmark, then spool, decode, shape and emit each one."""

import itertools
import logging
import time

import backoff
from singer import metrics

from tap_fullstory import catalog as catalogs
from tap_fullstory.decode import iter_events
from tap_fullstory.discover import IDENTITY_FIELDS, REPLICATION_KEY, STREAM
from tap_fullstory.errors import BundleFormatError, TapError
from tap_fullstory.feed import BundleFeed
from tap_fullstory.interrupt import STOP
from tap_fullstory.progress import SyncProgress
from tap_fullstory.shape import RecordShaper
from tap_fullstory.sources import make_source
from tap_fullstory.spool import BundleSpool, sweep_abandoned
from tap_fullstory.state import StateKeeper, format_stop, read_bookmark

LOGGER = logging.getLogger(__name__)


def sync(client, config, catalog, state, writer):
    """Emit every event of every bundle after the bookmark; return the final state."""
    bookmark = read_bookmark(state)
    keeper = StateKeeper(state)
    entry = catalog.get_stream(STREAM)
    if entry is None or not entry.is_selected():
        LOGGER.warning("%s: nothing to sync.", "The catalog has no 'events' stream (run "
                       "--discover for one that has)" if entry is None else "The catalog "
                       "does not select the 'events' stream (set \"selected\": true on its "
                       "[] breadcrumb)")
        final = keeper.final()
        writer.write_state(final)
        return final

    fields = catalogs.emitted_fields(entry)
    schema = entry.schema.to_dict()
    # Targets make columns from the SCHEMA message: it lists the emitted fields only.
    emitted_schema = dict(schema, properties={name: prop for name, prop in
                                              schema["properties"].items() if name in fields})
    writer.write_schema(STREAM, emitted_schema, catalogs.key_properties(entry),
                        [REPLICATION_KEY])
    shaper = RecordShaper(schema, fields, config.start_date, IDENTITY_FIELDS)
    sweep_abandoned(config.spool_dir)
    source = make_source(client, config, bookmark)
    emitter = BundleEmitter(source, config, shaper, writer, keeper)
    list_from = bookmark.list_from(config.start_date)
    LOGGER.info("Planning %s from %s: everything that ends after %s%s.", config.source,
                config.base_url, format_stop(list_from), f" (resuming {bookmark.bundle_id} "
                f"after row {bookmark.rows_done})" if bookmark.bundle_id else "")
    try:
        bundles = source.plan(list_from)
        if bookmark.bundle_id is not None and bookmark.bundle_id not in {b.id for b in bundles}:
            LOGGER.warning("%s %s, which the state says is partly emitted, is no longer "
                           "offered; its remaining rows cannot be read.",
                           source.unit.capitalize(), bookmark.bundle_id)
        progress = SyncProgress(bundles, source.unit)
        with metrics.record_counter(STREAM) as counter, \
                BundleFeed(source, bundles, config.spool_dir) as feed:
            for spool in feed:
                started = time.monotonic()
                skip = bookmark.rows_to_skip(spool.bundle.id)
                emitted = emitter.emit(spool, skip)
                writer.write_state(keeper.bundle_done(spool.bundle))
                counter.increment(emitted)
                progress.bundle_done(spool, emitted, time.monotonic() - started, skip)
    except BaseException:
        # End on the last STATE written, which covers exactly what is out; records still in
        # the buffer were never sent, and the resume sends them.
        writer.discard_pending()
        try:
            writer.write_state(writer.last_state or keeper.initial)
        except OSError:
            pass  # stdout itself is gone
        raise

    if shaper.before_start_date:
        LOGGER.info("%d event(s) earlier than start_date were not emitted.",
                    shaper.before_start_date)
    for field, count in sorted(shaper.misfits.items()):
        LOGGER.warning("%d value(s) of %s did not fit its type and went to CustomVars.",
                       count, field)
    final = keeper.final()
    writer.write_state(final)
    progress.finished(final)
    return final


class BundleEmitter:
    """Decodes, shapes and emits one downloaded bundle at a time, with checkpoints.

    A body that turns out broken while it is parsed is downloaded again (up to
    max_retries times) and the rows already emitted are skipped.
    """

    def __init__(self, source, config, shaper, writer, keeper):
        self.source, self.config = source, config
        self.shaper, self.writer, self.keeper = shaper, writer, keeper
        self._attempt = backoff.on_exception(
            backoff.expo, BundleFormatError, max_tries=config.max_retries + 1,
            factor=config.retry_backoff_seconds, jitter=backoff.full_jitter,
            on_backoff=self._log_retry, logger=None)(self._download_and_emit)

    def emit(self, spool, skip):
        """Emit a downloaded bundle from row `skip`; returns how many records went out."""
        bundle = spool.bundle
        position = {"done": skip, "emitted": 0}
        try:
            self._attempt(bundle, position, iter([spool]))
        except BundleFormatError as exc:
            raise TapError(f"{exc} Gave up after {self.config.max_retries + 1} downloads; "
                           f"rows before {position['done']} are out and the last STATE "
                           "resumes after them.") from None
        return position["emitted"]

    def _log_retry(self, details):
        LOGGER.warning("%s Downloading it again in %.1f s (try %d of %d).",
                       details["exception"], details["wait"], details["tries"] + 1,
                       self.config.max_retries + 1)

    def _download_and_emit(self, bundle, position, prefetched):
        """Emit from the prefetched body; a retry downloads the bundle afresh."""
        spool = next(prefetched, None) or BundleSpool.fetch(self.source, bundle,
                                                            self.config.spool_dir)
        if spool.restarted:  # a new export of the window: its rows may come in a new order
            position["done"] = 0
        with spool:
            self._emit_rows(spool, position)

    def _emit_rows(self, spool, position):
        bundle, shaper, writer = spool.bundle, self.shaper, self.writer
        writer.set_time_extracted(spool.time_extracted)
        identity = shaper.identity_values(bundle)
        checkpoint_every = self.config.checkpoint_every
        done = position["done"]  # rows [0, done) are out or deliberately not emitted
        since_state = 0
        events = itertools.islice(iter_events(spool.path, bundle.id, self.source.layout,
                                              self.source.describe(bundle)), done, None)
        try:
            with STOP.deferred():
                for row, event in enumerate(events, start=done):
                    record = shaper.shape(event, identity, row)
                    if record is not None:
                        writer.write_record(record)
                        position["emitted"] += 1
                        since_state += 1
                    done = row + 1
                    if since_state >= checkpoint_every:
                        writer.write_state(self.keeper.in_progress(bundle, done,
                                                                   spool.export_ref))
                        since_state = 0
                    STOP.check()
        except BaseException:
            # Whatever stops the bundle, the rows already written get a true STATE.
            if since_state:
                try:
                    writer.write_state(self.keeper.in_progress(bundle, done, spool.export_ref))
                except OSError:
                    pass  # stdout itself is gone; there is nobody left to tell
            raise
        finally:
            position["done"] = done
