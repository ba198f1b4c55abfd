"""The sandbox HTTP server: FullStory's legacy LIST and GET on 127.0.0.1."""

import gzip
import io
import json
import math
import socket
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import ciso8601
import orjson

from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.faults import Faults
from tap_fullstory.sandbox.segment import SegmentExports

LIST_PATH = "/api/v1/export/list"
GET_PATH = "/api/v1/export/get"
EXPORTS_PATH = "/segments/v1/exports"
OPERATIONS_PREFIX = "/operations/v1/"
SEARCH_PREFIX = "/search/v1/exports/"
DOWNLOAD_PREFIX = "/download/"
PAGE_SIZE = 20
STREAM_CHUNK = 1 << 16
DEFAULT_API_KEY = "sandbox-key"


class DownloadLimiter:
    """At most `limit` downloads in any `window` seconds, as FullStory's GET allows."""

    def __init__(self, limit=2, window=60.0, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._times = deque()
        self._lock = threading.Lock()

    def acquire(self):
        """0 if a download may start now, else the whole seconds until one may."""
        if not self.limit:
            return 0
        with self._lock:
            now = self.clock()
            while self._times and now - self._times[0] >= self.window:
                self._times.popleft()
            if len(self._times) < self.limit:
                self._times.append(now)
                return 0
            return max(1, math.ceil(self._times[0] + self.window - now))


def parse_rate(text):
    """'N/SECONDS' (or 'unlimited') into (limit, window)."""
    if text in ("unlimited", "0"):
        return 0, 1.0
    try:
        limit, window = text.split("/")
        limit, window = int(limit), float(window)
    except ValueError:
        raise ValueError(f"rate {text!r} must look like 2/60 (downloads/seconds)") from None
    if limit < 0 or window <= 0:
        raise ValueError(f"rate {text!r} needs a count >= 0 and a window > 0")
    return limit, window


class SandboxServer(ThreadingHTTPServer):
    """Serves one SandboxData; `url` is its base_url for the tap."""

    daemon_threads = True

    def __init__(self, data=None, api_key=DEFAULT_API_KEY, rate=(2, 60.0), port=0,
                 faults=None, bytes_per_second=None, segment_polls=2):
        super().__init__(("127.0.0.1", port), SandboxHandler)
        self.data = data or SandboxData()
        self.api_key = api_key
        self.faults = faults or Faults()
        self.bytes_per_second = bytes_per_second  # per download; None = as fast as it goes
        self.limiter = DownloadLimiter(*rate)
        self.exports = self.data.exports()
        self.segment = SegmentExports(polls=segment_polls)
        self.requests = []  # (path, status) of every answered request, for tests
        self.request_arrived = threading.Event()  # set when the first request comes in
        self._answered = threading.Condition()
        self._thread = None

    def handle_error(self, request, client_address):
        # A client that hangs up mid-body (a killed tap), or a reset we injected, is
        # normal here, not an error.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def record_answer(self, path, status):
        with self._answered:
            self.requests.append((path, status))
            self._answered.notify_all()

    def wait_for_request(self, fragment, timeout=30):
        """Block until a request whose path holds `fragment` is being answered."""
        with self._answered:
            return self._answered.wait_for(
                lambda: any(fragment in path for path, _ in self.requests), timeout)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self):
        """Serve in a background thread (tests); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join()


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the tap's tests read stderr; keep it quiet
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        faults = self.server.faults
        self.server.request_arrived.set()
        if faults.slow:
            time.sleep(faults.slow)
        if parts.path.startswith(DOWNLOAD_PREFIX):
            return self._download(parts.path[len(DOWNLOAD_PREFIX):])
        if self.headers.get("Authorization") != f"Basic {self.server.api_key}":
            return self._json(401, {"code": "unauthenticated", "message": "bad API key"})
        status = faults.status_now(faults.count("request"))
        if status:
            return self._json(status, {"code": "injected", "message": f"injected {status}"})
        if parts.path == LIST_PATH:
            if faults.list_429_now(faults.count("list")):
                return self._json(429, {"code": "rate_limited"}, {"Retry-After": "1"})
            return self._list(query)
        if parts.path == GET_PATH:
            return self._get(query)
        if parts.path.startswith(OPERATIONS_PREFIX):
            answer = self.server.segment.poll(parts.path[len(OPERATIONS_PREFIX):])
            if answer is None:
                return self._json(404, {"code": "not_found", "message": "no such operation"})
            return self._json(200, answer)
        if parts.path.startswith(SEARCH_PREFIX) and parts.path.endswith("/results"):
            return self._results(parts.path[len(SEARCH_PREFIX):-len("/results")])
        return self._json(404, {"code": "not_found", "message": f"no route {parts.path}"})

    def do_POST(self):
        parts = urlsplit(self.path)
        faults = self.server.faults
        self.server.request_arrived.set()
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length)
        if self.headers.get("Authorization") != f"Basic {self.server.api_key}":
            return self._json(401, {"code": "unauthenticated", "message": "bad API key"})
        status = faults.status_now(faults.count("request"))
        if status:
            return self._json(status, {"code": "injected", "message": f"injected {status}"})
        if parts.path != EXPORTS_PATH:
            return self._json(404, {"code": "not_found", "message": f"no route {parts.path}"})
        try:
            body = json.loads(payload)
            start = _unix(body["timeRange"]["start"])
            stop = _unix(body["timeRange"]["end"])
            assert body["type"] == "TYPE_EVENT" and body["format"] == "FORMAT_NDJSON"
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._json(400, {"code": "invalid_argument", "message": "bad export"})
        operation = self.server.segment.create(start, stop, faults.fail_operation)
        return self._json(200, {"operationId": operation})

    def _results(self, search_id):
        window = self.server.segment.results.get(search_id)
        if window is None:
            return self._json(404, {"code": "not_found", "message": "export expired"})
        location = f"{self.server.url}{DOWNLOAD_PREFIX}{search_id}?signature=sandbox"
        return self._json(200, {"location": location, "expires": "in 5 minutes"})

    def _download(self, search_id):
        """The temporary location: signed by its URL, so no Authorization header."""
        segment = self.server.segment
        if self.headers.get("Authorization") is not None:
            segment.authorized_downloads += 1
            return self._json(400, {"code": "InvalidArgument",
                                    "message": "Only one auth mechanism allowed"})
        window = segment.results.get(search_id)
        if window is None:
            return self._json(404, {"code": "NoSuchKey"})
        lines = b"".join(orjson.dumps(e) + b"\n" for e in self.server.data.window_events(*window))
        body = gzip.compress(lines, mtime=0)
        faults = self.server.faults
        number = faults.count("download")
        stream, headers = io.BytesIO(body), {"Content-Type": "application/gzip"}
        if number == faults.truncate_download:
            return self._stream(200, stream, len(body) // 2, headers)
        if number == faults.reset_download:
            self._stream(200, stream, len(body) // 2, headers, promised=len(body))
            return self._reset()
        return self._stream(200, stream, len(body), headers)

    def _list(self, query):
        try:
            start = int(query.get("start", "0"))
        except ValueError:
            return self._json(400, {"code": "invalid_argument", "message": "bad start"})
        page = [e for e in self.server.exports if e["Stop"] > start][:PAGE_SIZE]
        return self._json(200, {"exports": page})

    def _get(self, query):
        faults = self.server.faults
        try:
            index = self.server.data.index_of(int(query.get("id", "")))
        except ValueError:
            index = None
        if index is None or int(query["id"]) == faults.missing_bundle:
            return self._json(404, {"code": "not_found", "message": "no such bundle"})
        wait = self.server.limiter.acquire()
        if wait:
            return self._json(429, {"code": "rate_limited"}, {"Retry-After": str(wait)})
        bundle_id = int(query["id"])
        if bundle_id == faults.bad_json_bundle:
            html = b"<html>Internal proxy error</html>"
            return self._send(200, html, {"Content-Type": "text/html"})
        number = faults.count("download")
        stream, size, headers = self.server.data.open_body(index)
        with stream:
            if number == faults.truncate_download or bundle_id == faults.truncate_bundle:
                self._stream(200, stream, size // 2, headers)
            elif number == faults.reset_download:
                self._stream(200, stream, size // 2, headers, promised=size)
                self._reset()
            else:
                self._stream(200, stream, size, headers)

    def _stream(self, status, stream, size, headers, promised=None):
        """Send `size` bytes of `stream` (announcing `promised`), at --bandwidth if set."""
        self._begin(status, headers, promised or size, None if promised is None else "reset")
        rate = self.server.bytes_per_second
        started, sent = time.monotonic(), 0
        while sent < size:
            chunk = stream.read(min(STREAM_CHUNK, size - sent))
            if not chunk:
                break
            self.wfile.write(chunk)
            sent += len(chunk)
            if rate:
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def _reset(self):
        """Reset the connection (RST), as a broken network does mid-body."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _json(self, status, payload, headers=None):
        headers = {"Content-Type": "application/json", **(headers or {})}
        self._send(status, json.dumps(payload).encode(), headers)

    def _send(self, status, body, headers):
        self._begin(status, headers, len(body))
        self.wfile.write(body)

    def _begin(self, status, headers, length, logged=None):
        """Log the answer, then send its status line and headers."""
        self.server.record_answer(self.path, status if logged is None else logged)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()


def _unix(text):
    return int(ciso8601.parse_rfc3339(text).timestamp())
