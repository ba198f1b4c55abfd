"""The sandbox's legacy Data Export API: LIST and GET of bundles, with FullStory's limit
of 2 downloads a minute.

    GET /api/v1/export/list?start=<unix s>  {"exports": [{Id, Start, Stop}, …]}, 20 at most
    GET /api/v1/export/get?id=<Id>          the bundle body
"""

import math
import threading
import time
from collections import deque

from tap_fullstory.sandbox.faults import PROXY_PAGE

LIST_PATH = "/api/v1/export/list"
GET_PATH = "/api/v1/export/get"
PAGE_SIZE = 20
STALL_SECONDS = 600


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


def list_bundles(request):
    faults = request.server.faults
    if faults.list_429_now(faults.count("list")):
        return request.send_json(429, {"code": "rate_limited"}, {"Retry-After": "1"})
    if faults.html_list:
        return request.send_bytes(200, PROXY_PAGE, {"Content-Type": "text/html"})
    try:
        start = int(request.query.get("start", "0"))
    except ValueError:
        return request.send_error_json(400, "invalid_argument", "bad start")
    page = [e for e in request.server.exports if e["Stop"] > start][:PAGE_SIZE]
    return request.send_json(200, {"exports": page})


def get_bundle(request):
    server, faults = request.server, request.server.faults
    try:
        bundle_id = int(request.query.get("id", ""))
        index = server.data.index_of(bundle_id)
    except ValueError:
        bundle_id = index = None
    if index is None or bundle_id == faults.missing_bundle:
        return request.send_error_json(404, "not_found", "no such bundle")
    if faults.always_429:
        return request.send_json(429, {"code": "rate_limited"}, {"Retry-After": "0"})
    if faults.get_429_now(faults.count("get")):
        return request.send_json(429, {"code": "rate_limited"}, {"Retry-After": "1"})
    wait = server.limiter.acquire()
    if wait:
        return request.send_json(429, {"code": "rate_limited"}, {"Retry-After": str(wait)})
    if bundle_id == faults.bad_json_bundle:
        return request.send_bytes(200, PROXY_PAGE, {"Content-Type": "text/html"})
    if bundle_id == faults.null_bundle:
        return request.send_bytes(200, b"null", {"Content-Type": "application/json"})
    number = faults.count("download")
    stream, size, headers = server.data.open_body(index)
    with stream:
        if number == faults.truncate_download or bundle_id == faults.truncate_bundle:
            request.send_stream(200, stream, size // 2, headers)
        elif number == faults.reset_download:
            request.send_stream(200, stream, size // 2, headers, promised=size)
            request.reset_connection()
        elif number == faults.stall_download:
            request.send_stream(200, stream, size // 2, headers, promised=size)
            request.wfile.flush()
            server.stopping.wait(STALL_SECONDS)  # then the client has given up
            request.reset_connection()
        else:
            request.send_stream(200, stream, size, headers)


ROUTES = [("GET", LIST_PATH, list_bundles, "export"),
          ("GET", GET_PATH, get_bundle, "export")]
