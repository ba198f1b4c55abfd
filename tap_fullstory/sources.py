"""Where bundles come from: the legacy Data Export API, or the Segment Export API.

A source plans the units to sync from the bookmark (bundles, or export windows that play
the role of bundles) and fetches one unit's body into a spool file. Decoding, shaping,
emitting and state are the same for both.
"""

import logging
import time
from datetime import datetime, timezone

import backoff

from tap_fullstory.bundles import Bundle, list_bundles
from tap_fullstory.errors import FatalAPIError
from tap_fullstory.state import format_stop

LOGGER = logging.getLogger(__name__)

EXPORTS_PATH = "/segments/v1/exports"
OPERATIONS_PATH = "/operations/v1/"
RESULTS_PATH = "/search/v1/exports/{}/results"
POLL_MAX_SECONDS = 60     # the longest wait between two polls of an export operation
POLL_GIVE_UP_SECONDS = 6 * 3600


class ExportExpired(Exception):
    """A Segment export's results are gone; the window must be exported again."""


class DataExportSource:
    """Legacy bundles: LIST pages, then GET each bundle (a JSON array)."""

    layout = "array"
    unit = "bundle"

    def __init__(self, client):
        self.client = client

    def check(self, start_date):
        """`--test`: list from start_date; one line on what there is to sync."""
        bundles = self.plan(int(start_date.timestamp()))
        newest = f"; the newest ends at {bundles[-1].stop_text}" if bundles else ""
        return (f"{len(bundles)} bundle(s) end after start_date "
                f"{format_stop(int(start_date.timestamp()))}{newest}")

    def plan(self, list_from):
        return list(list_bundles(self.client, list_from))

    def describe(self, bundle):
        return f"Bundle {bundle.id}"

    def fetch(self, spool, handle):
        return self.client.download(spool.bundle.id, handle)


class SegmentExportSource:
    """Segment Export windows: create an export, poll it, download its NDJSON result."""

    layout = "ndjson"
    unit = "window"

    def __init__(self, client, config, bookmark, now=time.time):
        self.client, self.config, self.bookmark = client, config, bookmark
        self.now = now
        self.size = config.export_window_hours * 3600
        self._exports = {}  # window id -> the export this run reads it from

    def check(self, start_date):
        """`--test`: one authenticated call (an unknown operation answers 404 once the key
        is accepted), then the windows there are to export."""
        try:
            self.client.request("key check", self._url(OPERATIONS_PATH + "tap-fullstory-test"))
        except FatalAPIError as exc:
            if exc.response is None or exc.response.status_code != 404:
                raise
        windows = self.plan(int(start_date.timestamp()))
        newest = f"; the newest ends at {windows[-1].stop_text}" if windows else ""
        return (f"{len(windows)} settled {self.config.export_window_hours} h window(s) from "
                f"start_date {format_stop(int(start_date.timestamp()))}{newest}")

    def plan(self, list_from):
        """Aligned windows from `list_from` whose end has settled (and is <= end_date)."""
        last_end = int(self.now()) - self.config.settle_hours * 3600
        if self.config.end_date is not None:
            last_end = min(last_end, int(self.config.end_date.timestamp()))
        start = list_from // self.size * self.size
        return [Bundle(id=begin * 100 + self.config.export_window_hours, start=begin,
                       stop=begin + self.size)
                for begin in range(start, last_end - self.size + 1, self.size)]

    def describe(self, window):
        return f"Window {format_stop(window.start)} to {format_stop(window.stop)}"

    def fetch(self, spool, handle):
        window = spool.bundle
        saved = self._exports.get(window.id)
        if saved is None and window.id == self.bookmark.bundle_id:
            saved = self.bookmark.export_ref
        search_id = (saved or {}).get("searchExportId")
        location = None
        if search_id:
            try:
                location = self._location(search_id)
                spool.export_ref = dict(saved)
            except ExportExpired:
                LOGGER.warning("%s: export %s has expired; exporting the window again. Its "
                               "rows are sent again from the first, so rows already sent "
                               "from it may repeat.", self.describe(window), search_id)
                spool.restarted = True
        if location is None:
            operation = self._create(window)
            search_id = self._wait_for(operation, window)
            spool.export_ref = {"operationId": operation, "searchExportId": search_id}
            location = self._location(search_id)
        # A retry of this window reads this same export, so its rows keep their numbers.
        self._exports[window.id] = spool.export_ref
        try:
            return self._download(location, window, handle)
        except FatalAPIError:  # the signed location lapsed: ask for a fresh one, once
            return self._download(self._location(search_id), window, handle)

    def _url(self, path):
        return self.config.base_url + path

    def _create(self, window):
        body = {"segmentId": self.config.segment_id, "type": "TYPE_EVENT",
                "format": "FORMAT_NDJSON",
                "timeRange": {"start": _rfc3339(window.start), "end": _rfc3339(window.stop)}}
        answer = self.client.request("create export", self._url(EXPORTS_PATH), method="POST",
                                     body=body)
        operation = answer.get("operationId") if isinstance(answer, dict) else None
        if not operation:
            raise FatalAPIError("FullStory's answer to creating a segment export has no "
                                "operationId; check base_url points at api.fullstory.com.")
        LOGGER.info("%s: export operation %s created.", self.describe(window), operation)
        return operation

    def _wait_for(self, operation, window):
        """Poll the operation until it completes; its searchExportId."""
        reported = []

        def pending(answer):
            state = answer.get("state")
            if state not in ("COMPLETED", "FAILED"):
                percent = answer.get("estimatePctComplete")
                if percent is not None and percent not in reported:
                    reported.append(percent)
                    LOGGER.info("%s: export %s%% complete.", self.describe(window), percent)
                return True
            return False

        poll = backoff.on_predicate(
            backoff.expo, pending, factor=self.config.retry_backoff_seconds,
            max_value=POLL_MAX_SECONDS, max_time=POLL_GIVE_UP_SECONDS, jitter=None,
            logger=None)(self.client.request)
        answer = poll("export operation", self._url(OPERATIONS_PATH + operation))
        if answer.get("state") == "FAILED":
            details = answer.get("errorDetails") or "no details given"
            raise FatalAPIError(f"FullStory could not export {self.describe(window).lower()} "
                                f"(operation {operation}): {details}. Run again to retry; "
                                "the last STATE resumes at this window.")
        if answer.get("state") != "COMPLETED":
            raise FatalAPIError(f"Export operation {operation} was still "
                                f"{answer.get('state')} after {POLL_GIVE_UP_SECONDS // 3600} h; "
                                "run again later.")
        search_id = (answer.get("results") or {}).get("searchExportId")
        if not search_id:
            raise FatalAPIError(f"Export operation {operation} completed without a "
                                "searchExportId.")
        return search_id

    def _location(self, search_id):
        try:
            answer = self.client.request("export results",
                                         self._url(RESULTS_PATH.format(search_id)))
        except FatalAPIError as exc:
            if exc.response is not None and exc.response.status_code in (404, 410):
                raise ExportExpired(search_id) from None
            raise
        location = answer.get("location") if isinstance(answer, dict) else None
        if not location:
            raise FatalAPIError(f"FullStory's results for export {search_id} have no location.")
        return location

    def _download(self, location, window, handle):
        # The location carries its own signature: the API key is not sent there.
        return self.client.request(f"export download ({self.describe(window).lower()})",
                                   location, handle=handle, auth=False)


def make_source(client, config, bookmark):
    if config.source == "segment_export":
        return SegmentExportSource(client, config, bookmark)
    return DataExportSource(client)


def _rfc3339(unix_seconds):
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
