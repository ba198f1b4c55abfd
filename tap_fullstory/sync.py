"""Sync: list bundles from the bookmark, then spool, decode, shape and emit each one."""

import itertools

import singer
from singer import metrics

from tap_fullstory import catalog as catalogs
from tap_fullstory.bundles import list_bundles
from tap_fullstory.decode import iter_events
from tap_fullstory.discover import IDENTITY_FIELDS, REPLICATION_KEY, STREAM
from tap_fullstory.shape import RecordShaper
from tap_fullstory.spool import BundleSpool
from tap_fullstory.state import StateKeeper, read_bookmark

LOGGER = singer.get_logger()


def sync(client, config, catalog, state, writer):
    """Emit every event of every bundle after the bookmark; return the final state."""
    bookmark = read_bookmark(state)
    keeper = StateKeeper(state)
    entry = catalogs.selected_entry(catalog)
    if entry is None:
        LOGGER.warning("The catalog does not select the '%s' stream: nothing to sync. "
                       "Set \"selected\": true in its metadata.", STREAM)
        writer.write_state(keeper.final())
        return keeper.final()

    schema = entry.schema.to_dict()
    keys = catalogs.key_properties(entry)
    writer.write_schema(STREAM, schema, keys, [REPLICATION_KEY])
    shaper = RecordShaper(schema, catalogs.emitted_fields(entry), config.start_date,
                          IDENTITY_FIELDS)

    with metrics.record_counter(STREAM) as counter:
        for bundle in list_bundles(client, bookmark.list_from(config.start_date)):
            skip = bookmark.rows_to_skip(bundle.id)
            with BundleSpool(client, bundle, config.spool_dir) as spool:
                emitted = _emit_bundle(spool, shaper, writer, keeper, skip,
                                       config.checkpoint_every)
            writer.write_state(keeper.bundle_done(bundle))
            counter.increment(emitted)
            LOGGER.info("Bundle %s: %d event(s) emitted%s.", bundle.id, emitted,
                        f" (resumed after row {skip})" if skip else "")

    if shaper.before_start_date:
        LOGGER.info("%d event(s) earlier than start_date were not emitted.",
                    shaper.before_start_date)
    for field, count in sorted(shaper.misfits.items()):
        LOGGER.warning("%d value(s) of %s did not fit its type and went to CustomVars.",
                       count, field)
    final = keeper.final()
    writer.write_state(final)
    return final


def _emit_bundle(spool, shaper, writer, keeper, skip, checkpoint_every):
    """Emit one spooled bundle's records from row `skip`, with STATE checkpoints."""
    bundle = spool.bundle
    writer.set_time_extracted(spool.time_extracted)
    identity = shaper.identity_values(bundle)
    events = itertools.islice(iter_events(spool.path, bundle.id), skip, None)
    emitted = since_state = 0
    done = skip  # rows [0, done) of the bundle are written or deliberately not emitted
    try:
        for row, event in enumerate(events, start=skip):
            record = shaper.shape(event, identity, row)
            if record is not None:
                writer.write_record(record)
                emitted += 1
                since_state += 1
            done = row + 1
            if since_state >= checkpoint_every:
                writer.write_state(keeper.in_progress(bundle, done))
                since_state = 0
    except BaseException:
        # Whatever stops the bundle, the rows already written get a true STATE.
        if since_state:
            try:
                writer.write_state(keeper.in_progress(bundle, done))
            except OSError:
                pass  # stdout itself is gone; there is nobody left to tell
        raise
    return emitted
