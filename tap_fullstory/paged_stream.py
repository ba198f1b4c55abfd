"""A paged stream (users, segments, recording settings and their history): one request
per page, each record shaped and emitted.

Domain settings and recording features exist per platform (web, mobile): each row names
its `platform`, the current streams hold one row per platform, and each platform's history
has its own bookmark. An account without mobile apps may refuse the mobile variant with a
4xx (FullStory documents none for it): that is one INFO line, not an error.

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
from tap_fullstory.errors import FatalAPIError
from tap_fullstory.feed import Prefetcher, in_background
from tap_fullstory.progress import target_share
from tap_fullstory.shape import RecordShaper
from tap_fullstory.state import bad_state, stream_bookmark
from tap_fullstory.stopping import STOP

LOGGER = logging.getLogger(__name__)
LIFTED = ("lastUpdated", "created", "lastUpdatedBy", "createdBy")  # from `metadata`
TIES_OUT = "versions_out_at_last_updated"
PLATFORMS_KEY = "platforms"     # a platform stream's bookmark: {"platforms": {"web": {…}}}
OPTIONAL_PLATFORMS = ("mobile",)  # an account may have none of these apps


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


class VersionCursor:
    """Where one history (one platform's, for a platform stream) stands: `since`, the
    lastUpdated of the newest version out, and `at_since`, how many versions at exactly
    that instant are out (None: all of them). Two versions can share a lastUpdated, and a
    stop may fall between them."""

    def __init__(self, bookmark, where):
        self.since = bookmark.get("lastUpdated")
        if self.since is not None and version_moment(bookmark) is None:
            raise bad_state(f"bookmark lastUpdated of '{where}' must be an RFC 3339 timestamp")
        self.at_since = bookmark.get(TIES_OUT)
        if self.at_since is not None and not (type(self.at_since) is int
                                              and self.at_since >= 0):
            raise bad_state(f"bookmark {TIES_OUT} of '{where}' must be a whole number")
        self.moment = None if self.since is None else ciso8601.parse_rfc3339(self.since)

    def bookmark(self):
        """This history's bookmark, as the state keeps it."""
        value = {} if self.since is None else {"lastUpdated": self.since}
        if self.since is not None and self.at_since is not None:
            value[TIES_OUT] = self.at_since
        return value

    def newer(self, versions):
        """The versions not yet out, oldest first, and how many had no readable
        lastUpdated (never emitted: without it a version cannot be synced exactly once)."""
        since = self.moment
        dated, undated = [], 0
        for record in versions:
            moment = version_moment(record)
            if moment is None:
                undated += 1
            elif since is None or moment >= since:
                dated.append((moment, record))
        # Ties in a fixed order, the same in every run, so a count of them is a position.
        dated.sort(key=lambda pair: (pair[0], json.dumps(pair[1], sort_keys=True,
                                                         default=str)))
        ties_to_pass = len(dated) if self.at_since is None else self.at_since
        newer = []
        for moment, record in dated:
            if since is not None and moment == since and ties_to_pass:
                ties_to_pass -= 1
                continue
            newer.append((moment, record))
        return newer, undated

    def passed(self, moment, record):
        """`record`, at `moment` (never before `since`), is out."""
        if self.moment is not None and moment == self.moment:
            self.at_since = (self.at_since or 0) + 1
        else:
            self.moment, self.since, self.at_since = moment, record["lastUpdated"], 1


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
        self.variants = stream.platforms or (None,)
        self.cursors = {}
        if stream.history:
            self.cursors = {platform: VersionCursor(mark, where) for platform, mark, where
                            in self._bookmarks(bookmark)}
            self.version = None
        else:
            self.version = int(time.time() * 1000)

    def _bookmarks(self, bookmark):
        """(platform, its bookmark, where it sits) for each variant. A platform stream's
        flat bookmark, written before mobile was read, is its web bookmark."""
        if not self.stream.platforms:
            return [(None, bookmark, self.name)]
        marks = bookmark.get(PLATFORMS_KEY)
        if marks is None:
            marks = {"web": bookmark} if "lastUpdated" in bookmark else {}
        if not isinstance(marks, dict) or not all(isinstance(m, dict) for m in marks.values()):
            raise bad_state(f"bookmark {PLATFORMS_KEY} of '{self.name}' must be an object of "
                            "one object per platform")
        return [(platform, marks.get(platform, {}), f"{self.name}.{PLATFORMS_KEY}.{platform}")
                for platform in self.variants]

    def state(self):
        """The STATE value for exactly what has been handed to the writer."""
        if not self.stream.history:
            return self.keeper.update(self.name, {})
        if not self.stream.platforms:
            return self.keeper.update(self.name, self.cursors[None].bookmark())
        marks = {platform: cursor.bookmark() for platform, cursor in self.cursors.items()
                 if cursor.bookmark()}
        return self.keeper.update(self.name, {PLATFORMS_KEY: marks} if marks else {})

    def run(self):
        started, waited = time.monotonic(), self.writer.waited
        key = [self.stream.replication_key] if self.stream.replication_key else None
        self.writer.write_schema(self.name, self.schema, self.key_properties, key)
        self.writer.start_records(self.name, version=self.version)
        if self.stream.history:
            for platform in self.variants:
                self._emit_versions(platform, in_background(
                    functools.partial(self._all_records, platform), "pages"))
        else:
            def jobs():  # each page is fetched as the job list is walked, one page ahead
                for platform in self.variants:
                    for page in self._pages(platform):
                        yield functools.partial(self._with_platform, page.records, platform)

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

    def _all_records(self, platform):
        return [record for page in self._pages(platform)
                for record in self._with_platform(page.records, platform)]

    @staticmethod
    def _with_platform(records, platform):
        """The records, each with its settings lifted and, for a platform stream, the
        platform it came from."""
        for record in map(lift_metadata, records):
            if platform is not None:
                record["platform"] = platform
        return records

    def _pages(self, platform=None):
        """The endpoint's pages for `platform`; the first, if it announces a total, logs
        the plan. A platform the account has no apps for (its first request refused with a
        4xx) yields nothing; a refusal after the first page is an error like any other."""
        read = 0
        try:
            for page in account_api.pages(
                    self.transport, self.config.api_base_url, self.stream.endpoint,
                    self.name if platform is None else f"{self.name} ({platform})",
                    config=self.config, platform=platform):
                if read == 0 and page.total is not None:
                    LOGGER.info("%s: %s", self.name, plan_line(page, self.stream.endpoint,
                                                                self.config))
                read += 1
                yield page
        except FatalAPIError as exc:
            status = getattr(exc.response, "status_code", None)
            if read or platform not in OPTIONAL_PLATFORMS or status is None or not (
                    400 <= status < 500) or status == 401:
                raise
            said = f" ({exc.said})" if exc.said else ""
            LOGGER.info("%s: FullStory answered %d for platform=%s%s: the account has no "
                        "%s apps, so there are no %s settings to sync.", self.name, status,
                        platform, said, platform, platform)

    def _emit(self, record):
        if STOP.signum is not None:
            STOP.check()
        self.writer.write_record(self.shaper.shape(record))
        self.emitted += 1

    def _emit_versions(self, platform, versions):
        cursor = self.cursors[platform]
        newer, undated = cursor.newer(versions)
        if undated:
            LOGGER.warning("%s: %d version(s)%s without a readable metadata.lastUpdated were "
                           "not emitted: without it a version cannot be synced exactly once.",
                           self.name, undated, f" of {platform}" if platform else "")
        for moment, record in newer:
            self._emit(record)
            cursor.passed(moment, record)
            if self.emitted % self.config.checkpoint_every == 0:
                self.writer.write_state(self.state())
        cursor.at_since = None  # every version at `since` is out
