"""A paged stream (users, segments, recording settings and their history): one request
per page, each record shaped and emitted.

FULL_TABLE streams carry a table version on every record and end with ACTIVATE_VERSION, so
a target that supports it keeps exactly the rows of the last complete run. Each run,
resumed or not, reads them from the first page under a new version: what an interrupted
run sent may be stale by then, and the activation drops it. History streams
are INCREMENTAL on `lastUpdated`: FullStory documents no order for versions and no date
filter, so every page is read, and the versions newer than the bookmark are emitted oldest
first — then each STATE, even one written by a stop between records, is true.
"""

import functools
import json
import logging
import time

import ciso8601

from tap_fullstory import account_api
from tap_fullstory import catalog as catalogs
from tap_fullstory.feed import Prefetcher, in_background
from tap_fullstory.progress import target_share
from tap_fullstory.shape import RecordShaper
from tap_fullstory.state import bad_state, stream_bookmark
from tap_fullstory.stopping import STOP

LOGGER = logging.getLogger(__name__)
LIFTED = ("lastUpdated", "created", "lastUpdatedBy", "createdBy")  # from `metadata`
TIES_OUT = "versions_out_at_last_updated"


def lift_metadata(record):
    """Settings objects keep their version marker in `metadata`: copy its four fields to
    the top level (metadata itself stays whole)."""
    metadata = record.get("metadata")
    if isinstance(metadata, dict):
        for name in LIFTED:
            if name in metadata and name not in record:
                record[name] = metadata[name]
    return record


def version_moment(record):
    """The parsed lastUpdated of a settings version, or None if it has none."""
    value = record.get("lastUpdated")
    try:
        return ciso8601.parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        return None


def plan_line(first, endpoint, config):
    """What a listing that announces its total will take, from its first page."""
    per_page = len(first.records) or account_api.USERS_PER_PAGE
    calls = max(1, -(-first.total // per_page))
    filtered = [f"{parameter}=true" for setting, parameter in endpoint.flags
                if getattr(config, setting)]
    return (f"total_records announces {first.total:,} record(s){' with ' if filtered else ''}"
            f"{', '.join(filtered)}: {calls:,} request(s) at {per_page} a page.")


class PagedStreamSync:
    """One stream read from api.fullstory.com's paged endpoints."""

    def __init__(self, stream, entry, transport, config, writer, keeper):
        self.stream, self.name = stream, stream.name
        self.transport, self.config = transport, config
        self.writer, self.keeper = writer, keeper
        bookmark = stream_bookmark(keeper.value(), self.name)
        catalogs.require_fields(entry, stream)
        fields = catalogs.emitted_fields(entry)
        schema = entry.schema.to_dict()
        self.key_properties = catalogs.key_properties(entry)
        self.shaper = RecordShaper(schema, fields, stream.catch_all,
                                   keys=self.key_properties)
        self.schema = catalogs.emitted_schema(schema, fields)
        self.emitted = 0
        if stream.history:
            self.since = bookmark.get("lastUpdated")
            if self.since is not None and version_moment(bookmark) is None:
                raise bad_state(f"bookmark lastUpdated of '{self.name}' must be an RFC 3339 "
                                "timestamp")
            # How many versions at exactly `since` are out (absent: all of them): two
            # versions can share a lastUpdated, and a stop may fall between them.
            self.at_since = bookmark.get(TIES_OUT)
            if self.at_since is not None and not (type(self.at_since) is int
                                                  and self.at_since >= 0):
                raise bad_state(f"bookmark {TIES_OUT} of '{self.name}' must be a whole number")
            self.version = None
        else:
            self.since, self.at_since = None, None
            self.version = int(time.time() * 1000)

    def state(self):
        """The STATE value for exactly what has been handed to the writer."""
        bookmark = {} if self.since is None else {"lastUpdated": self.since}
        if self.since is not None and self.stream.history and self.at_since is not None:
            bookmark[TIES_OUT] = self.at_since
        return self.keeper.update(self.name, bookmark)

    def run(self):
        started, waited = time.monotonic(), self.writer.waited
        key = [self.stream.replication_key] if self.stream.replication_key else None
        self.writer.write_schema(self.name, self.schema, self.key_properties, key)
        self.writer.start_records(self.name, version=self.version)
        if self.stream.history:
            self._emit_versions(in_background(lambda: [r for page in self._pages()
                                                       for r in page.records], "pages"))
        else:
            def jobs():  # each page is fetched as the job list is walked, one page ahead
                for page in self._pages():
                    yield functools.partial(lambda records: records, page.records)

            with Prefetcher(jobs, ahead=1, name="pages") as feed:
                for page in feed:
                    for record in page:
                        self._emit(record)
            self.writer.write_activate_version(self.name, self.version)
        self.writer.write_state(self.state())
        self.shaper.report(LOGGER)
        seconds = time.monotonic() - started
        LOGGER.info("%s: %s record(s) in %.1f s%s.", self.name, f"{self.emitted:,}", seconds,
                    target_share(self.writer.waited - waited, seconds))

    def _pages(self):
        """The endpoint's pages; the first, if it announces a total, logs the plan."""
        for number, page in enumerate(account_api.pages(
                self.transport, self.config.api_base_url, self.stream.endpoint, self.name,
                config=self.config)):
            if number == 0 and page.total is not None:
                LOGGER.info("%s: %s", self.name, plan_line(page, self.stream.endpoint,
                                                            self.config))
            yield page

    def _emit(self, record):
        if STOP.signum is not None:
            STOP.check()
        self.writer.write_record(self.shaper.shape(lift_metadata(record)))
        self.emitted += 1

    def _emit_versions(self, versions):
        since = None if self.since is None else ciso8601.parse_rfc3339(self.since)
        dated, undated = [], 0
        for record in map(lift_metadata, versions):
            moment = version_moment(record)
            if moment is None:
                undated += 1
            elif since is None or moment >= since:
                dated.append((moment, record))
        if undated:
            LOGGER.warning("%s: %d version(s) without a readable metadata.lastUpdated were not "
                           "emitted: without it a version cannot be synced exactly once.",
                           self.name, undated)
        # Ties in a fixed order, the same in every run, so a count of them is a position.
        dated.sort(key=lambda pair: (pair[0], json.dumps(pair[1], sort_keys=True,
                                                         default=str)))
        ties_to_pass = len(dated) if self.at_since is None else self.at_since
        for moment, record in dated:
            if since is not None and moment == since and ties_to_pass:
                ties_to_pass -= 1
                continue
            self._emit(record)
            if since is not None and moment == since:
                self.at_since = (self.at_since or 0) + 1
            else:
                since, self.since, self.at_since = moment, record["lastUpdated"], 1
            if self.emitted % self.config.checkpoint_every == 0:
                self.writer.write_state(self.state())
        self.at_since = None  # every version at `since` is out
