"""The sandbox HTTP server: one loopback host for every FullStory API it fakes.

Data Export (data_export.py), Segment Export (segment_export.py) and the account API
(account_api.py) share this server's plumbing: routing, auth (`Basic <key>` or
`Bearer <key>`), the injected faults and the answer helpers.
"""

import json
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tap_fullstory.sandbox import account_api, data_export, segment_export
from tap_fullstory.sandbox.account import SandboxAccount
from tap_fullstory.sandbox.account_api import KEY_OWNER, SPELLINGS, PageTokens
from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.data_export import DownloadLimiter
from tap_fullstory.sandbox.faults import PROXY_PAGE, Faults
from tap_fullstory.sandbox.segment_export import SegmentExports

__all__ = ["DEFAULT_API_KEY", "PROXY_PAGE", "DownloadLimiter", "SandboxServer", "parse_rate"]

STREAM_CHUNK = 1 << 16
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_PAGE_SIZE = 7  # small, so every paged listing has several pages
ROUTES = [(method, re.compile(pattern), handler, api)
          for method, pattern, handler, api in
          data_export.ROUTES + segment_export.ROUTES + account_api.ROUTES]


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
    """Serves one SandboxData and the account around it; `url` is its base_url for the tap.

    segment_seconds: a Segment export completes that long after it was created (instead
    of after segment_polls polls), on segment_clock. page_size caps every page of the
    account API; token_spelling "alternate" answers segments and history pages with
    `next_pagination_token`. clock is the sandbox's wall clock (unix seconds): a segment's own
    time range is the last 30 days before it. role and key_owner: what GET /me answers.
    user_order_seed, session_ids, mobile_apps and no_mobile_status: where FullStory's docs
    leave a choice open, which way the server answers (account_api.py says each).
    """

    daemon_threads = True

    def __init__(self, data=None, api_key=DEFAULT_API_KEY, rate=(2, 60.0), port=0,
                 faults=None, bytes_per_second=None, segment_polls=2, segment_seconds=None,
                 segment_clock=time.monotonic, page_size=DEFAULT_PAGE_SIZE,
                 token_spelling="documented", clock=time.time, role="ADMIN",
                 key_owner=KEY_OWNER):
        if token_spelling not in SPELLINGS:
            raise ValueError(f"token_spelling must be one of {', '.join(SPELLINGS)}")
        super().__init__(("127.0.0.1", port), SandboxHandler)
        self.data = data or SandboxData()
        self.api_key = api_key
        self.clock = clock  # the sandbox's "now" (unix seconds): segments' own time range
        self.role, self.key_owner = role, key_owner  # what GET /me answers
        self.faults = faults or Faults()
        self.bytes_per_second = bytes_per_second  # per download; None = as fast as it goes
        self.limiter = DownloadLimiter(*rate)
        self.exports = self.data.exports()
        self.segment = SegmentExports(polls=segment_polls, seconds=segment_seconds,
                                      clock=segment_clock)
        self.account = SandboxAccount(self.data)
        self.tokens = PageTokens()
        self.page_size = page_size
        self.token_spelling = token_spelling
        self.user_order_seed = None      # None: users in the account's order
        self.session_ids = "strings"     # or "numbers"
        self.mobile_apps = True
        self.no_mobile_status = 404
        self.requests = []  # (path, status) of every answered request, for tests
        self.request_arrived = threading.Event()  # set when the first request comes in
        self.stopping = threading.Event()  # ends stalled answers when the server stops
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

    def authorized(self, header):
        return header in (f"Basic {self.api_key}", f"Bearer {self.api_key}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self):
        """Serve in a background thread (tests); returns self."""
        # A short poll interval makes stop() quick; tests start and stop many servers.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join()


def route(method, path):
    """(handler, its path arguments, its API) for a request, or None."""
    for want, pattern, handler, api in ROUTES:
        match = pattern.fullmatch(path)
        if match and want == method:
            return handler, match.groups(), api
    return None


class SandboxHandler(BaseHTTPRequestHandler):
    """One request: `query` (last value of each parameter) and `payload` for handlers."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the tap's tests read stderr; keep it quiet
        pass

    def do_GET(self):
        self._handle("GET", b"")

    def do_POST(self):
        self._handle("POST", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _handle(self, method, payload):
        raw_path, _, query = self.path.partition("?")
        path = re.sub("/{2,}", "/", raw_path)  # the older public tap asks for //v2/users
        self.query = {k: v[-1] for k, v in parse_qs(query).items()}
        self.payload = payload
        server, faults = self.server, self.server.faults
        server.request_arrived.set()
        if faults.slow:
            time.sleep(faults.slow)
        found = route(method, path)
        if found and found[2] == "signed":  # the URL carries its own signature
            return found[0](self, *found[1])
        if not server.authorized(self.headers.get("Authorization")):
            code = "unauthorized" if path.startswith("/v2/") else "unauthenticated"
            return self.send_error_json(401, code, "bad API key")
        status = faults.status_now(faults.count("request"))
        if status:
            return self.send_error_json(status, "injected", f"injected {status}")
        if faults.forbids(path):
            return self.send_error_json(403, "permission_denied",
                                        f"the API key may not read {path}")
        if found is None:
            return self.send_error_json(404, "not_found", f"no route {path}")
        handler, args, api = found
        if api == "account" and faults.api_429_now(faults.count("api")):
            return self.send_error_json(429, "too_many_requests", "rate limited",
                                        {"Retry-After": "1"})
        return handler(self, *args)

    def send_stream(self, status, stream, size, headers, promised=None):
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

    def reset_connection(self):
        """Reset the connection (RST), as a broken network does mid-body."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def send_error_json(self, status, code, message, headers=None):
        self.send_json(status, {"code": code, "message": message}, headers)

    def send_json(self, status, payload, headers=None):
        headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_bytes(status, json.dumps(payload).encode(), headers)

    def send_bytes(self, status, body, headers):
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
