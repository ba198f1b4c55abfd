"""The sandbox's Segment Export API: operations that complete after some polls or some
seconds, the results they make (expired as FullStory expires them after some days), and
the files behind them.

Who is in an export is the segment's business, which data of them the export's: a segment
has its own time range deciding its members, and `timeRange` only picks which of their
data is exported, "without any effect on the underlying segment's time range"
(developer.fullstory.com create-segment-export). `segmentTimeRange` overrides the
segment's range ({"start": "", "end": ""}: all time, as hauser sends it). Without it a
segment keeps its own range: for the built-in `everyone` the last 30 days of the
sandbox's clock (PostHog's FullStory source: "The everyone segment defaults to the last 30
days"); the sandbox gives every segment that range, as FullStory documents no other.

    POST /segments/v1/exports             {segmentId, type, format, timeRange,
                                           segmentTimeRange} -> operationId
    GET  /operations/v1/{id}              state, estimatePctComplete, results
    GET  /search/v1/exports/{id}/results  {location, expires}
    GET  /download/{id}?signature=…       the gzip file; refused with an Authorization header
"""

import csv
import gzip
import io
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import ciso8601
import orjson

from tap_fullstory.sandbox.faults import PROXY_PAGE

DOWNLOAD_PREFIX = "/download/"
EXPORT_TYPES = ("TYPE_EVENT", "TYPE_INDIVIDUAL")
FORMATS = {"FORMAT_NDJSON": "ndjson", "FORMAT_JSON": "json", "FORMAT_CSV": "csv"}


SEGMENT_DAYS = 30  # a segment's own time range: the last 30 days (see above)
ANONYMOUS_SEGMENTS = {"anonymous": False, "identified": True}  # built-ins that filter people


@dataclass(frozen=True)
class Export:
    """What one export holds: rows of `type` whose time falls in [start, stop) (unix s),
    of the segment's members: the people active in [members_start, members_stop)."""

    start: int
    stop: int
    type: str = "TYPE_EVENT"
    format: str = "FORMAT_NDJSON"
    segment: str = "everyone"
    members_start: int = None  # None: the same range as the export's
    members_stop: int = None


class SegmentExports:
    """The Segment Export operations and results a sandbox has made.

    An operation completes after `polls` PENDING answers or, when `seconds` is set (it
    then wins), once `seconds` have passed on `clock` since it was created, each operation
    on its own timer however often it is polled.
    """

    def __init__(self, polls=2, seconds=None, clock=time.monotonic):
        self.polls = polls
        self.seconds = seconds
        self.clock = clock
        self.operations = {}  # id -> {"export", "polls_left", "started", "fail", "search", …}
        self.results = {}  # searchExportId -> Export, while not expired
        self.authorized_downloads = 0  # downloads that wrongly carried the API key
        self._lock = threading.Lock()

    def create(self, start, stop, fail_number=0, export=None):
        """A new operation exporting `export` (default: events of [start, stop)); the
        `fail_number`-th one will fail."""
        with self._lock:
            number = len(self.operations) + 1
            operation = f"op-{number}"
            self.operations[operation] = {
                "export": export or Export(start, stop), "polls_left": self.polls,
                "started": self.clock(), "created_at": _now(), "fail": number == fail_number,
                "search": f"se-{number}"}
            return operation

    def poll(self, operation):
        with self._lock:
            op = self.operations.get(operation)
            if op is None:
                return None
            answer = {"id": operation, "type": "SEARCH_EXPORT", "createdAt": op["created_at"]}
            done = self._pending(op)
            if done is not None:
                return {**answer, "state": "PENDING", "estimatePctComplete": done}
            answer["finishedAt"] = op.setdefault("finished_at", _now())
            if op["fail"]:
                return {**answer, "state": "FAILED", "estimatePctComplete": 100,
                        "errorDetails": "sandbox: the export job ran out of memory"}
            self.results.setdefault(op["search"], op["export"])
            return {**answer, "state": "COMPLETED", "estimatePctComplete": 100,
                    "results": {"searchExportId": op["search"],
                                "expires": _now(timedelta(days=7))}}

    def _pending(self, op):
        """None once `op` is done, else its estimatePctComplete."""
        if self.seconds is not None:
            elapsed = self.clock() - op["started"]
            if elapsed >= self.seconds:
                return None
            return max(0, min(99, int(100 * elapsed / self.seconds)))
        if op["polls_left"] > 0:
            op["polls_left"] -= 1
            return 100 * (self.polls - op["polls_left"]) // (self.polls + 1)
        return None

    def expire_all(self):
        """Forget every finished export, as FullStory does after some days."""
        with self._lock:
            self.results.clear()


def parse_export(payload, now):
    """The Export a create request asks for. Keys in camelCase or the 2020 beta's
    snake_case; timeRange and segmentTimeRange start/end RFC 3339 or "" (empty start:
    unbounded, empty end: `now`); without segmentTimeRange, the segment's own last 30 days
    before `now`. timezone, fields and eventDetails are accepted and ignored."""
    try:
        body = json.loads(payload)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")
    segment = body.get("segmentId", body.get("segment_id"))
    if not isinstance(segment, str) or not segment:
        raise ValueError("segmentId is required")
    if body.get("type") not in EXPORT_TYPES:
        raise ValueError(f"type must be one of {', '.join(EXPORT_TYPES)}")
    if body.get("format") not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    start, stop = _time_range(body, "timeRange", "time_range", now)
    if "segmentTimeRange" in body or "segment_time_range" in body:
        members = _time_range(body, "segmentTimeRange", "segment_time_range", now)
    else:
        members = (int(now) - SEGMENT_DAYS * 86400, int(now))
    return Export(start, stop, body["type"], body["format"], segment, *members)


def _time_range(body, name, beta_name, now):
    time_range = body.get(name, body.get(beta_name)) or {}
    if not isinstance(time_range, dict):
        raise ValueError(f"{name} must be an object")
    start = _unix(time_range.get("start"), 0)
    stop = _unix(time_range.get("end"), int(now))
    if stop < start:
        raise ValueError(f"{name} ends before it starts")
    return start, stop


def _unix(text, empty):
    if text in (None, ""):
        return empty
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp")
    try:
        return int(ciso8601.parse_rfc3339(text).timestamp())
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None


def _now(later=timedelta(0)):
    return (datetime.now(timezone.utc) + later).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rows(data, export):
    """The export's rows: of the window, of the segment's members only."""
    if export.type == "TYPE_INDIVIDUAL":
        found = data.window_individuals(export.start, export.stop)
    else:
        found = data.window_events(export.start, export.stop)
    members = segment_members(data, export)
    return found if members is None else [row for row in found if row["IndvId"] in members]


def segment_members(data, export):
    """The IndvIds in the export's segment, or None when every person of the window is."""
    identified = ANONYMOUS_SEGMENTS.get(export.segment)
    same_range = (export.members_start, export.members_stop) in (
        (None, None), (export.start, export.stop))
    if same_range and identified is None:
        return None
    events = data.window_events(*((export.start, export.stop) if same_range else
                                  (export.members_start, export.members_stop)))
    return {event["IndvId"] for event in events
            if identified is None or bool(event.get("UserAppKey")) == identified}


def render(rows, export_format):
    """The uncompressed file: one object per line, one JSON array, or CSV with a header."""
    if export_format == "FORMAT_JSON":
        return orjson.dumps(rows)
    if export_format == "FORMAT_NDJSON":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow("" if key not in row else row[key] if isinstance(row[key], str)
                        else orjson.dumps(row[key]).decode() for key in columns)
    return out.getvalue().encode()


def create_export(request):
    faults = request.server.faults
    if faults.create_429_now(faults.count("create")):
        return request.send_error_json(429, "too_many_requests", "slow down",
                                       {"Retry-After": "1"})
    try:
        export = parse_export(request.payload, request.server.clock())
    except ValueError as exc:
        return request.send_error_json(400, "invalid_argument", f"bad export: {exc}")
    if request.server.account.segment(export.segment) is None:
        # FullStory documents no answer for an unknown segment: 404 here, or 400 with the
        # unknown-segment fault, so the tap is tried against both.
        status, code = (400, "invalid_argument") if faults.unknown_segment == 400 else \
            (404, "not_found")
        return request.send_error_json(status, code, f"segment {export.segment!r} not found")
    segment = request.server.segment
    operation = segment.create(export.start, export.stop, request.server.faults.fail_operation,
                               export)
    return request.send_json(200, {"operationId": operation})


def poll_operation(request, operation):
    answer = request.server.segment.poll(operation)
    if answer is None:
        return request.send_error_json(404, "not_found", "no such operation")
    return request.send_json(200, answer)


def export_results(request, search_id):
    if search_id not in request.server.segment.results:
        return request.send_error_json(404, "not_found", "export expired")
    location = f"{request.server.url}{DOWNLOAD_PREFIX}{search_id}?signature=sandbox"
    return request.send_json(200, {"location": location,
                                   "expires": _now(timedelta(minutes=5))})


def download(request, search_id):
    """The temporary location: signed by its URL, so no Authorization header."""
    segment, faults = request.server.segment, request.server.faults
    if request.headers.get("Authorization") is not None:
        segment.authorized_downloads += 1
        return request.send_json(400, {"code": "InvalidArgument",
                                       "message": "Only one auth mechanism allowed"})
    export = segment.results.get(search_id)
    if export is None:
        return request.send_json(404, {"code": "NoSuchKey"})
    if faults.count("signed") <= faults.refuse_download:
        # what a storage host answers a lapsed signature (the location lives ~5 minutes,
        # developer.fullstory.com get-export-results) or a proxy that blocks it
        return request.send_bytes(403, b"<Error><Code>AccessDenied</Code><Message>Request "
                                  b"has expired</Message></Error>",
                                  {"Content-Type": "application/xml"})
    if search_id == f"se-{faults.bad_window}":
        return request.send_bytes(200, PROXY_PAGE, {"Content-Type": "text/html"})
    body = gzip.compress(render(rows(request.server.data, export), export.format), mtime=0)
    day = datetime.fromtimestamp(export.start, timezone.utc).strftime("%Y-%m-%d")
    name = f"{export.segment}-{day}.{FORMATS[export.format]}.gz"
    headers = {"Content-Type": "application/gzip",
               "Content-Disposition": f'attachment; filename="{name}"'}
    number = faults.count("download")
    stream = io.BytesIO(body)
    if number == faults.truncate_download:
        return request.send_stream(200, stream, len(body) // 2, headers)
    if number == faults.reset_download:
        request.send_stream(200, stream, len(body) // 2, headers, promised=len(body))
        return request.reset_connection()
    return request.send_stream(200, stream, len(body), headers)


ROUTES = [("POST", "/segments/v1/exports", create_export, "segment"),
          ("GET", "/operations/v1/([^/]+)", poll_operation, "segment"),
          ("GET", "/search/v1/exports/([^/]+)/results", export_results, "segment"),
          ("GET", DOWNLOAD_PREFIX + "([^/]+)", download, "signed")]
