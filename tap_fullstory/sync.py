"""Sync: every selected stream in the declared order, each from its bookmark.

`currently_syncing` names the stream being synced; a run resumed from a stopped or killed
one's STATE starts with that stream and goes on from there, so the streams before it,
finished in the interrupted run, are not synced again until the next run. A run that ends
on an error clears it: the next run syncs every stream again (each from its bookmark), so a
stream that keeps failing never starves the ones before it. Every way a run ends — done,
an error, a stop request — writes a STATE that covers exactly what is out.
"""

import json
import logging
import time

from tap_fullstory.catalog import selected_streams
from tap_fullstory.errors import Forbidden, TapError
from tap_fullstory.fanout_stream import FanOutStreamSync
from tap_fullstory.file_stream import FileStreamSync
from tap_fullstory.paged_stream import PagedStreamSync
from tap_fullstory.state import StateKeeper

LOGGER = logging.getLogger(__name__)
KINDS = {"file": FileStreamSync, "paged": PagedStreamSync, "fanout": FanOutStreamSync}


def sync(transport, config, catalog, state, writer):
    """Sync every selected stream; return the final state."""
    started = time.monotonic()
    keeper = StateKeeper(state)
    chosen, unknown = selected_streams(catalog)
    if unknown:
        LOGGER.warning("The catalog selects stream(s) this tap does not have: %s (run "
                       "--discover for the ones it has).", ", ".join(unknown))
    names = [stream.name for stream, _ in chosen]
    if keeper.currently_syncing in names:
        LOGGER.info("Resuming the interrupted run at %s.", keeper.currently_syncing)
        chosen = chosen[names.index(keeper.currently_syncing):]
    # Built before anything is written: a bad bookmark is one line and no output.
    runs = [KINDS[stream.kind](stream, entry, transport, config, writer, keeper)
            for stream, entry in chosen]
    if not runs:
        LOGGER.warning("The catalog selects no stream (set \"selected\": true on a stream's "
                       "[] breadcrumb): nothing to sync.")
    else:
        LOGGER.info("Syncing %s.", ", ".join(run.name for run in runs))
    for run in runs:
        try:
            writer.write_state(run.state())  # the stream starts: currently_syncing names it
            run.run()
        except Forbidden as exc:
            if config.on_forbidden != "skip":
                _write_last_state(writer, run, keeper, failed=True)
                raise TapError(f"{forbidden(run.stream, config.source, exc.said)} Use a key "
                               "with it, deselect the stream, or set on_forbidden to skip."
                               ) from exc
            _write_last_state(writer, run, keeper)
            LOGGER.warning("Skipped the %s stream: %s", run.name,
                           forbidden(run.stream, config.source, exc.said))
        except Exception:  # a TapError, or a fault no rule foresaw: the next run syncs all
            _write_last_state(writer, run, keeper, failed=True)
            raise
        except BaseException:  # a stop: the next run resumes this stream
            _write_last_state(writer, run, keeper)
            raise
    final = keeper.finish()
    writer.write_state(final)
    LOGGER.info("Done: %d stream(s) in %.1f s. Final state: %s", len(runs),
                time.monotonic() - started, json.dumps(final))
    return final


def forbidden(stream, source, said=""):
    """What a 403 on `stream` means, in one sentence, with FullStory's own words."""
    api, permission = stream.access(source)
    quoted = f" FullStory said {said}." if said else ""
    return (f"FullStory refused access (403) to the {stream.name} stream ({api}): the key "
            f"needs {permission} permission.{quoted}")


def _write_last_state(writer, run, keeper, failed=False):
    """Whatever ended the run, the last line out is a STATE covering exactly what is out;
    after a failure with `currently_syncing` cleared."""
    try:
        value = run.state()
        if failed:
            value = keeper.finish()
        writer.write_state(value)
    except OSError:
        pass  # stdout itself is gone
