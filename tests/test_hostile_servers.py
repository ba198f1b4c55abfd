"""Servers that never stop sending, through the real CLI: a download body without end, one
that announces more than max_download_mb, one that trickles a byte just inside
request_timeout, one that comes fast and then trickles, an API answer larger than any
FullStory documents, and a pager that answers empty pages with fresh tokens for ever. Each
run ends with one CRITICAL line naming what it cut off, no traceback, and a last STATE that
claims nothing it did not emit."""

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import catalog_selecting, messages, records, run_tap, states
from tap_fullstory import transport
from tap_fullstory.account_api import MAX_EMPTY_PAGES

BUNDLE_ID, BUNDLE_START = 4242, 1767225600  # 2026-01-01 00:00 UTC
EVENT = (b'{"EventStart": "2026-01-01T00:00:01Z", "EventType": "click", "IndvId": 1, '
         b'"SessionId": 2, "PageId": 3, "UserId": 4, "EventTargetText": "' + b"x" * 200 +
         b'"}')


class HostileServer(ThreadingHTTPServer):
    """The Data Export LIST (one bundle) and segments on loopback; `mode` says how GET of
    the bundle and the segments pages misbehave."""

    daemon_threads = True

    def __init__(self, mode):
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.mode = mode
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.pages_served = 0
        self.closing = threading.Event()


class HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        try:
            self.answer()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tap cut the body off, as it should

    def answer(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/api/v1/export/list":
            listed = int(query.get("start", ["0"])[0]) < BUNDLE_START + 86400
            exports = [{"Id": BUNDLE_ID, "Start": BUNDLE_START, "Stop": BUNDLE_START + 86400}]
            self.send_whole(json.dumps({"exports": exports if listed else []}).encode())
        elif url.path == "/api/v1/export/get":
            getattr(self, f"bundle_{self.server.mode}")()
        elif url.path == "/segments/v1":
            getattr(self, f"segments_{self.server.mode}")(query)
        else:
            self.send_whole(b'{"code": "not_found", "message": "no such path"}', 404)

    def send_whole(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def bundle_endless(self):
        """A JSON array that never closes, as fast as the tap reads."""
        self.start_chunked()
        self.chunk(b"[" + EVENT)
        block = (b"," + EVENT) * 256
        while not self.server.closing.is_set():
            self.chunk(block)

    def bundle_announced(self):
        """A Content-Length of a terabyte, and nothing sent."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(10 ** 12))
        self.end_headers()
        self.server.closing.wait(30)

    def bundle_trickle(self):
        """A byte every 50 ms, far inside request_timeout, for ever."""
        self.start_chunked()
        self.trickle(b"[" + EVENT)

    def bundle_fast_then_trickle(self):
        """Half a megabyte at once, then a byte every 50 ms."""
        self.start_chunked()
        self.chunk(b"[" + EVENT + (b"," + EVENT) * 2000)
        self.trickle(b"," + EVENT)

    def trickle(self, data):
        for byte in itertools.cycle(data):
            if self.server.closing.wait(0.05):
                return
            self.chunk(bytes([byte]))

    def segments_huge(self, query):
        """An answer one byte past the cap: a valid JSON object, of one enormous name."""
        padding = transport.MAX_ANSWER_BYTES - len(b'{"segments": [], "x": ""}') + 1
        self.send_whole(b'{"segments": [], "x": "' + b"y" * padding + b'"}')

    def segments_empty_pages(self, query):
        """Empty pages, each with a token never seen before."""
        self.server.pages_served += 1
        self.send_whole(json.dumps({"segments": [], "nextPaginationToken":
                                    f"t{self.server.pages_served}"}).encode())

    def log_message(self, *_):
        pass


@pytest.fixture
def hostile():
    servers = []

    def start(mode):
        server = HostileServer(mode)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.closing.set()
        server.shutdown()
        server.server_close()


def one_critical_line(result):
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    critical = [line for line in stderr.splitlines() if line.startswith("CRITICAL")]
    assert len(critical) == 1, stderr[-2000:]
    return critical[0]


def claims_nothing(result):
    """No bundle row was emitted, and the last STATE says the bundle is still to come."""
    msgs = messages(result.stdout)
    assert not records(msgs)
    last = states(msgs)[-1]["bookmarks"].get("events", {})
    assert not last.get("skipped")
    assert "ExportBundleId" not in last and "Stop" not in last, last


@pytest.mark.parametrize("mode", ["endless", "announced"])
def test_a_body_past_max_download_mb_is_cut_off_in_one_line(hostile, write_config, mode):
    server = hostile(mode)
    config = write_config(server.url, max_download_mb=2, max_retries=0)
    started = time.monotonic()
    result = run_tap("--config", config, timeout=60)
    line = one_critical_line(result)
    assert f"bundle {BUNDLE_ID}" in line and "max_download_mb (2)" in line, line
    assert ("announces 1,000,000.0 MB" in line) == (mode == "announced"), line
    claims_nothing(result)
    print(f"{mode}: cut off after {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("mode", ["trickle", "fast_then_trickle"])
def test_a_body_that_trickles_inside_request_timeout_is_cut_off_in_one_line(hostile,
                                                                           write_config,
                                                                           mode):
    server = hostile(mode)
    config = write_config(server.url, request_timeout=0.5, max_retries=0)
    result = run_tap("--config", config, timeout=60)
    line = one_critical_line(result)
    assert f"bundle {BUNDLE_ID}" in line and "min_download_kb_per_second (10)" in line, line
    claims_nothing(result)


def test_an_api_answer_past_the_cap_is_one_line(hostile, write_config, tmp_path):
    server = hostile("huge")
    config = write_config(server.url, api_base_url=server.url)
    catalog = catalog_selecting(tmp_path, config, ["segments"])
    result = run_tap("--config", config, "--catalog", catalog, timeout=120)
    line = one_critical_line(result)
    assert "larger than 64 MiB" in line and "segments" in line, line


def test_a_pager_of_empty_pages_with_fresh_tokens_stops_in_one_line(hostile, write_config,
                                                                    tmp_path):
    server = hostile("empty_pages")
    config = write_config(server.url, api_base_url=server.url)
    catalog = catalog_selecting(tmp_path, config, ["segments"])
    result = run_tap("--config", config, "--catalog", catalog, timeout=60)
    line = one_critical_line(result)
    assert "empty pages in a row" in line, line
    assert server.pages_served == MAX_EMPTY_PAGES
