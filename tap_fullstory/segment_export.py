"""FullStory's Segment Export API, on the host in `api_base_url`.

    POST /segments/v1/exports {segmentId, type, format, timeRange, segmentTimeRange}
                                             -> {"operationId"}
    GET  /operations/v1/{operationId}        -> {state, estimatePctComplete, results, …}
    GET  /search/v1/exports/{id}/results     -> {"location": <signed URL>, "expires"}
    GET  <location>, without the key         -> gzip NDJSON, one row per line

An export is made per window (TYPE_EVENT rows for events, TYPE_INDIVIDUAL for individuals).
Its segmentTimeRange is the window too: a segment's own range decides who is in it
(`everyone`'s is the last 30 days), so without it a window older than that would hold only
the people also active lately. With it, membership is decided inside the window, and the
same window exported again has the same rows, which the in-window checkpoints rely on.
"""

import logging
import time
from urllib.parse import urlsplit

import backoff
import ciso8601

from tap_fullstory.errors import (
    DownloadRefused,
    FatalAPIError,
    NotFound,
    SettingRefused,
    UnexpectedAnswer,
)
from tap_fullstory.spool import Provenance
from tap_fullstory.timestamps import API, format_time
from tap_fullstory.units import end_second, plan_windows

LOGGER = logging.getLogger(__name__)

EXPORTS_PATH = "/segments/v1/exports"
OPERATIONS_PATH = "/operations/v1/"
RESULTS_PATH = "/search/v1/exports/{}/results"
POLL_MAX_SECONDS = 60     # the longest wait between two polls of an export operation
POLL_MIN_SECONDS = 0.05   # the shortest, whatever retry_backoff_seconds says: no busy loop
POLL_GIVE_UP_SECONDS = 6 * 3600
EXPIRY_MARGIN_SECONDS = 600  # an export this close to results.expires is made again
SETTING = "api_base_url"


class ExportFailed(FatalAPIError):
    """FullStory ended an export operation FAILED."""


class ExportExpired(NotFound):
    """A Segment export's results are gone; the window must be exported again."""


def is_expired(expires, now):
    """True when an export whose results.expires is `expires` (RFC 3339, or None: unknown)
    cannot be counted on any more at `now` (unix seconds)."""
    moment = expiry(expires)
    return moment is not None and moment - EXPIRY_MARGIN_SECONDS <= now


def expires_at(answer):
    """An operation's `results.expires` (until when its export can be fetched, 7 days after
    createdAt in FullStory's example), if it is an RFC 3339 timestamp, else None."""
    results = answer.get("results") if isinstance(answer, dict) else None
    text = results.get("expires") if isinstance(results, dict) else None
    return text if expiry(text) is not None else None


def expiry(text):
    """An RFC 3339 `expires` as unix seconds, or None."""
    try:
        return ciso8601.parse_rfc3339(text).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


def poll_waits(first, longest, started=None, clock=time.monotonic):
    """Seconds before each next poll of an export operation (a backoff wait generator: it
    is sent each answer). The wait doubles from `first` up to `longest`, as backoff.expo
    would; but when an answer's estimatePctComplete, over the time since the export was
    created (`started`, on `clock`), says it will be done sooner, the next poll goes then,
    so a finished export is seen at once rather than at the next doubling."""
    doubling = first
    answer = yield  # backoff primes the generator with None
    while True:
        wait, doubling = doubling, min(doubling * 2, longest)
        percent = answer.get("estimatePctComplete") if isinstance(answer, dict) else None
        elapsed = None if started is None else clock() - started
        if type(percent) in (int, float) and 0 < percent < 100 and elapsed:
            wait = max(first, min(wait, elapsed * (100 - percent) / percent))
        answer = yield wait


def _status(exc):
    """'403 code: "message"' for a refusal, as FullStory gave it."""
    status = exc.response.status_code if exc.response is not None else "an error"
    return f"{status} {exc.said}".strip() if exc.said else str(status)


def mid_sentence(what):
    """'Window …' as it reads inside a sentence: 'window …'."""
    return what[:1].lower() + what[1:]


class SegmentExportAPI:
    """The four calls of one export, on the host in `api_base_url`."""

    def __init__(self, transport, base_url, segment_id):
        self.transport = transport
        self.base_url = base_url
        self.segment_id = segment_id

    def create(self, export_type, start, stop, what, tries=None):
        """Start an export of [start, stop) (unix seconds); its operationId. `tries` gets
        one entry per POST that failed (a timeout, a 5xx) and was sent again: FullStory
        may have made an export for each."""
        window = {"start": format_time(start, API), "end": format_time(stop, API)}
        body = {"segmentId": self.segment_id, "type": export_type, "format": "FORMAT_NDJSON",
                "timeRange": window, "segmentTimeRange": window}
        check = (f"check segment_id ({self.segment_id!r}: an id the segments stream lists, "
                 f"such as everyone) and api_base_url ({self.base_url}; FullStory's is "
                 "https://api.fullstory.com). The bookmark has not moved; run again once "
                 "fixed")
        try:
            answer = self.transport.json(f"create export ({mid_sentence(what)})",
                                         self.base_url + EXPORTS_PATH, SETTING,
                                         method="POST", body=body, expect="operationId",
                                         hints={400: check[0].upper() + check[1:]},
                                         call="export_create", tries=tries)
        except NotFound as exc:
            said = f" ({exc.said})" if exc.said else ""
            raise SettingRefused(f"FullStory answered 404 Not Found{said} to creating an "
                                 f"export of segment {self.segment_id!r}: {check}.",
                                 exc.response, exc.said) from None
        operation = answer["operationId"]
        if not isinstance(operation, str) or not operation:
            raise UnexpectedAnswer(f"FullStory's answer to creating an export of {what} has "
                                   f"an operationId that is not a string ({operation!r}).")
        return operation

    def operation(self, operation):
        """One poll of an export operation: its answer (a JSON object)."""
        try:
            return self.transport.json("export operation", self.base_url + OPERATIONS_PATH +
                                       operation, SETTING, expect="state",
                                       call="export_operation")
        except NotFound as exc:
            said = f" ({exc.said})" if exc.said else ""
            raise SettingRefused(f"FullStory answered 404 Not Found{said} to polling export "
                                 f"operation {operation}, which it had just created: check "
                                 f"api_base_url ({self.base_url}) and any proxy in between. "
                                 "The bookmark has not moved.", exc.response,
                                 exc.said) from None

    def location(self, search_id):
        """The signed URL of an export's file; ExportExpired once FullStory dropped it."""
        try:
            answer = self.transport.json("export results", self.base_url +
                                         RESULTS_PATH.format(search_id), SETTING,
                                         expect="location", call="export_results")
        except FatalAPIError as exc:
            if exc.response is not None and exc.response.status_code in (404, 410):
                raise ExportExpired(f"export {search_id} has expired", exc.response) from None
            raise
        location = answer["location"]
        if not isinstance(location, str) or not location:
            raise UnexpectedAnswer(f"FullStory's results for export {search_id} have no "
                                   "location.")
        parts = urlsplit(location)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            # the window's export is unusable, like a FAILED one (never quote the signature)
            raise ExportFailed(f"FullStory's results for export {search_id} name a download "
                               f"location that is not an http(s) URL (it starts "
                               f"{location[:8]!r}).")
        return location

    def download(self, location, sink, what):
        """GET the export's file into `sink`, without the key: the URL carries its own
        signature. A lapsed URL answers 404 (NotFound) or 401/403 (DownloadRefused)."""
        return self.transport.download(f"export download ({mid_sentence(what)})", location,
                                       SETTING, sink, auth=False, call="export_download")


class WindowSource:
    """A file-based stream's units from Segment Export: aligned windows, one export each."""

    layout = "ndjson"
    unit_name = "window"

    def __init__(self, transport, config, export_type, now=time.time):
        self.api = SegmentExportAPI(transport, config.api_base_url, config.segment_id)
        self.config, self.export_type = config, export_type
        self.now = now
        self.host = config.api_base_url
        self.in_flight = config.max_exports_in_flight
        self._ahead = {}    # window id -> the operation created ahead for it, until fetched
        self._created = {}  # operationId -> when this run created it (time.monotonic)
        # operationId -> exports that failed tries to create it may have left at FullStory:
        # they count against max_exports_in_flight until this one completes
        self._orphans = {}

    def window_id(self, begin):
        return begin * 100 + self.config.export_window_hours

    def plan(self, start, whole=False):
        """Aligned windows from `start` that begin before end_date (`whole`: that end by
        it) and have settled."""
        settled = int(self.now()) - self.config.settle_hours * 3600
        end = self.config.end_date
        end = None if end is None else (int(end.timestamp()) if whole else end_second(end))
        return plan_windows(start, end, settled, self.config.export_window_hours,
                            self.window_id, whole)

    def check(self, start):
        """`--test`: one line on what there is to sync from `start` (unix seconds)."""
        count, _, newest = self.plan(start).survey()
        last = f"; the newest ends at {newest.stop_text}" if newest else ""
        end = self.config.end_date
        until = "" if end is None else f" to end_date {format_time(end)}"
        return (f"{count} settled {self.config.export_window_hours} h window(s) from "
                f"start_date {format_time(start)}{until}{last}")

    def describe(self, window):
        return f"Window {format_time(window.start)} to {format_time(window.stop)}"

    def describe_period(self, window):
        """The window, for lines about it as a whole (its name is its period)."""
        return mid_sentence(self.describe(window))

    def prepare(self, windows, standing=None):
        """Start the exports of the next `windows` (the first is fetched next; `standing` is
        where it stands), so that up to max_exports_in_flight run at FullStory at once. A
        429 on creating one lowers that number for the rest of the run."""
        for number, window in enumerate(windows):
            if number >= max(1, self.in_flight - sum(self._orphans.values())):
                break
            if window.id in self._ahead or (number == 0 and standing and standing.origin):
                continue
            limited = self.api.transport.rate_limits["export_create"]
            self._ahead[window.id] = self._create(window, self.describe(window))
            if self.api.transport.rate_limits["export_create"] > limited and self.in_flight > 1:
                self.in_flight -= 1
                LOGGER.info("FullStory rate-limited creating exports: at most %d in flight from "
                            "now on.", self.in_flight)

    def fetch(self, window, spool, standing):
        """Export `window` (or read the export made ahead, or the one `standing` names) and
        download its file into `spool`; what it came from. A signed location that lapses
        (404) or that storage refuses (401/403) is asked for afresh, once; an export
        FullStory no longer has, or whose location answers 404 again, is made again."""
        what = self.describe(window)
        saved, renumbered = dict(standing.origin), False
        if standing.rows_done and not saved:
            # a partly sent window whose export the state does not name (a hand-written
            # state): a new export promises no row order, so skipping by position could lose
            LOGGER.warning("%s: the state says %d row(s) of it are out but names no export; "
                           "a new export is read from its first row, so those rows may "
                           "repeat.", what, standing.rows_done)
            renumbered = True
        if not saved and window.id in self._ahead:
            saved = {"operationId": self._ahead.pop(window.id)}
        origin, location, anew = self._location(window, saved, what)
        renumbered = renumbered or anew
        try:
            self.api.download(location, spool, what)
            return Provenance(origin, renumbered)
        except (NotFound, DownloadRefused) as exc:
            LOGGER.warning("%s: the download location answered %s; asking FullStory for a "
                           "fresh one.", what, _status(exc))
            first = exc
        origin, location, anew = self._location(window, origin, what)
        renumbered = renumbered or anew
        try:
            self.api.download(location, spool, what)
            return Provenance(origin, renumbered)
        except DownloadRefused as exc:
            raise DownloadRefused(
                f"{exc} It did so again with a fresh location (first: {_status(first)}): "
                "the signature is refused, or a proxy or firewall between the tap and "
                "FullStory's storage blocks it (the download goes to the location's host, "
                "not api_base_url). This is not the API key's permission. Allow that host, "
                "then run again from the last STATE.", exc.response, exc.said) from None
        except NotFound as exc:
            LOGGER.warning("%s: the export's file answered %s again, with a fresh location; "
                           "exporting the window again. Its rows are sent again from the "
                           "first, so rows already sent from it may repeat.", what,
                           _status(exc))
            second = exc
        origin, location, _ = self._location(window, {}, what)
        try:
            self.api.download(location, spool, what)
            return Provenance(origin, True)
        except NotFound as exc:
            raise SettingRefused(
                f"{what}: FullStory's storage answered 404 for the export's download three "
                f"times, the last from a new export ({_status(second)}, then "
                f"{_status(exc)}); check the proxy between the tap and FullStory, then run "
                "again from the last STATE.", exc.response, exc.said) from None

    def _location(self, window, saved, what):
        """(the export `window` is read from, its download location, whether it is a new
        export): the saved one while FullStory still has it (until its results.expires),
        else a new one. An export made ahead that expired by its turn is made again."""
        search_id = saved.get("searchExportId")
        renumbered = False
        if search_id and is_expired(saved.get("expires"), self.now()):
            LOGGER.info("%s: export %s expired at %s (results.expires); exporting the window "
                        "again. Its rows are sent again from the first, so rows already "
                        "sent from it may repeat.", what, search_id, saved["expires"])
            saved, renumbered = {}, True
        elif search_id:
            try:
                return saved, self.api.location(search_id), False
            except ExportExpired:
                LOGGER.warning("%s: export %s has expired; exporting the window again. Its "
                               "rows are sent again from the first, so rows already sent "
                               "from it may repeat.", what, search_id)
                saved, renumbered = {}, True
        operation = saved.get("operationId")
        for attempt in (1, 2):
            if operation is None:
                operation = self._create(window, what)
            search_id, expires = self._wait_for(operation, what)
            if attempt == 2 or not is_expired(expires, self.now()):
                break
            LOGGER.info("%s: export %s, made ahead, expired at %s (results.expires) before "
                        "its turn; exporting the window again.", what, search_id, expires)
            operation = None
        origin = {"operationId": operation, "searchExportId": search_id}
        if expires is not None:
            origin["expires"] = expires  # a string, as FullStory wrote it
        return origin, self.api.location(search_id), renumbered

    def _create(self, window, what):
        tries = []
        operation = self.api.create(self.export_type, window.start, window.stop, what, tries)
        self._created[operation] = time.monotonic()
        if tries:
            self._orphans[operation] = len(tries)
            LOGGER.info("%s: creating its export took %d tries; FullStory may have made an "
                        "export for each failed one, so they count against "
                        "max_exports_in_flight until this one completes.", what,
                        len(tries) + 1)
        LOGGER.info("%s: export operation %s created.", what, operation)
        return operation

    def _wait_for(self, operation, what):
        """Poll the operation until it completes: its searchExportId and results.expires
        (RFC 3339, or None)."""
        reported = set()

        def pending(answer):
            if answer.get("state") in ("COMPLETED", "FAILED"):
                return False
            percent = answer.get("estimatePctComplete")
            if type(percent) in (int, float) and percent not in reported:
                reported.add(percent)
                LOGGER.info("%s: export %s%% complete.", what, percent)
            return True

        poll = backoff.on_predicate(
            poll_waits, pending, max_time=POLL_GIVE_UP_SECONDS, jitter=None, logger=None,
            first=max(self.config.retry_backoff_seconds, POLL_MIN_SECONDS),
            longest=POLL_MAX_SECONDS,
            started=self._created.pop(operation, None))(self.api.operation)
        answer = poll(operation)
        self._orphans.pop(operation, None)  # made at the same moment, done by now too
        state = answer.get("state")
        if state == "FAILED":
            details = answer.get("errorDetails") or "no details given"
            raise ExportFailed(f"FullStory could not export {mid_sentence(what)} (operation "
                               f"{operation}): {str(details)[:300]}.")
        if state != "COMPLETED":
            raise FatalAPIError(f"Export operation {operation} was still {str(state)[:40]} "
                                f"after {POLL_GIVE_UP_SECONDS // 3600} h; run again later.")
        results = answer.get("results")
        search_id = results.get("searchExportId") if isinstance(results, dict) else None
        if not isinstance(search_id, str) or not search_id:
            raise UnexpectedAnswer(f"Export operation {operation} completed without a "
                                   "searchExportId.")
        return search_id, expires_at(answer)
