"""Seeded fuzzing: mutated bodies through decode and shape in this process, then through the
real CLI against a loopback server. A bad body must end in one BundleFormatError line that
names its unit, never a traceback. Replay a run with FUZZ_SEED=<the printed seed>.
"""

import gzip
import io
import json
import os
import random
import subprocess
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tap_fullstory import decode
from tap_fullstory.decode import iter_events
from tap_fullstory.errors import BundleFormatError
from tap_fullstory.shape import RecordShaper
from tap_fullstory.streams import BY_NAME, EVENT_FIELDS

SEED = int(os.environ.get("FUZZ_SEED") or 15)
CASES = 200  # mutated bodies decoded and shaped in this process
CLI_CASES = 20  # mutated bodies sent through the real CLI
CAP = 1 << 16  # MAX_EVENT_BYTES while fuzzing, so that an endless line is quick to reach
BUNDLE_ID, BUNDLE_START = 176722560048, 1767225600  # 2026-01-01T00:00:00Z, a day long
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
EVENTS = BY_NAME["events"]


def base_events(rng, count=30):
    """Events as a Data Export bundle holds them, with the awkward values real ones have."""
    texts = ['He said "hi"\n', "é 👋 \u2028", "a},{b", "back\\slash", "", "x" * 300]
    events = []
    for row in range(count):
        events.append({
            "EventStart": f"2026-01-01T{row % 24:02}:00:00.{rng.randrange(1000):03}Z",
            "UserId": rng.choice([rng.randrange(2**63), -rng.randrange(2**31), None]),
            "SessionId": rng.randrange(2**64), "EventType": rng.choice(["click", "load"]),
            "EventTargetText": rng.choice(texts), "EventDuration": rng.random() * 1e3,
            "PageUrl": f"https://example.com/{row}?q={rng.random()}",
            "evt_tags_strs": [rng.choice(texts) for _ in range(rng.randrange(3))],
            "evt_cart_obj": {"items": [{"sku": rng.randrange(100)}], "total_real": 4.5},
        })
    return events


def body_of(events, layout, rng):
    if layout == "ndjson":
        return b"".join(json.dumps(e).encode() + b"\n" for e in events)
    if rng.random() < 0.5:
        return json.dumps(events, separators=(",", ":")).encode()
    return ("[\n" + ",\n".join(json.dumps(e) for e in events) + "\n]\n").encode()


# Each mutation takes the random source and a body, and gives the body mutated.
def truncated(rng, body):
    return body[:rng.randrange(len(body) + 1)]


def flipped(rng, body):
    body = bytearray(body)
    for _ in range(rng.randrange(1, 6)):
        body[rng.randrange(len(body))] = rng.randrange(256)
    return bytes(body)


def inserted(rng, body, pieces=(b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":", b"\n")):
    for _ in range(rng.randrange(1, 6)):
        at = rng.randrange(len(body) + 1)
        body = body[:at] + rng.choice(pieces) + body[at:]
    return body


def at_a_value(rng, body, value):
    """`body` with a member holding `value` first in one of its objects (so that it stays
    JSON), or `value` anywhere if it has none."""
    opens = [i + 1 for i in range(len(body) - 1) if body[i:i + 2] == b'{"'] or [len(body) // 2]
    at = rng.choice(opens)
    return body[:at] + b'"fuzz": ' + value + b", " + body[at:]


def deepened(rng, body, depths=(300, 1024, 1025, 5000, 100_000)):
    depth = rng.choice(depths)
    closers = b"]" * depth if rng.random() < 0.7 else b""
    return at_a_value(rng, body, b"[" * depth + b"1" + closers)


def huge_number(rng, body):
    digits = b"9" * rng.choice([20, 400, 5000, 30_000])
    tail = rng.choice([b"", b".5", b"e400", b"e-999", b"E+99999"])
    return at_a_value(rng, body, rng.choice([b"", b"-"]) + digits + tail)


def lone_surrogate(rng, body):
    quotes = [i + 1 for i in range(len(body)) if body[i:i + 1] == b'"'] or [0]
    at = rng.choice(quotes)
    escape = rng.choice([b"\\ud83d", b"\\udc00", b"\\\\ud83d", b"\\ud83d\\ud83d", b"\\ud8"])
    return body[:at] + escape + body[at:]


def with_bom(rng, body):
    at = 0 if rng.random() < 0.6 else rng.randrange(len(body) + 1)
    return body[:at] + decode.UTF8_BOM * rng.randrange(1, 3) + body[at:]


def with_nul(rng, body):
    at = rng.randrange(len(body) + 1)
    return body[:at] + b"\0" * rng.randrange(1, 4) + body[at:]


def endless_line(rng, body):
    """A body that runs on past the cap without a newline (a gzip bomb, once inflated)."""
    head = body[:rng.randrange(len(body) + 1)]
    opening = rng.choice([b'{"a": "', b"", b"[", b'"\\'])
    return head + opening + rng.choice([b"x", b"1", b" ", b"\\"]) * 3 * CAP


def spliced(rng, body):
    start = rng.randrange(len(body) + 1)
    piece = body[start:start + rng.randrange(200)]
    at = rng.randrange(len(body) + 1)
    return body[:at] + piece + body[at:] if rng.random() < 0.5 else body[:start] + body[
        start + len(piece):]


def bom_first(rng, body):
    return decode.UTF8_BOM + body


def deepened_past_the_limit(rng, body):
    return deepened(rng, body, (1025, 5000, 100_000))


MUTATIONS = [truncated, flipped, inserted, deepened, huge_number, lone_surrogate, with_bom,
             with_nul, endless_line, spliced]
GENTLE = [huge_number, lone_surrogate, deepened, bom_first]  # the body may stay JSON
# Through the CLI: an event 255 to 1024 levels deep is read, but emit cannot write it (see
# test_an_event_as_deep_as_decode_reads_reaches_the_target).
CLI_MUTATIONS = [m if m is not deepened else deepened_past_the_limit for m in MUTATIONS]
CLI_GENTLE = [huge_number, lone_surrogate, bom_first]


def mutated_body(rng, layout, mutations=MUTATIONS, gentle=GENTLE):
    """A body of `layout` with one to three mutations (gentle ones, a third of the time),
    gzip or plain (a gzip file may be mutated after compressing too)."""
    body = body_of(base_events(rng, rng.randrange(1, 30)), layout, rng)
    names = []
    pool = gentle if rng.random() < 0.3 else mutations
    for mutation in rng.sample(pool, rng.randrange(1, 4)):
        body = mutation(rng, body)
        names.append(mutation.__name__)
    if rng.random() < 0.5:
        body = gzip.compress(body, compresslevel=1)
        names.append("gzip")
        if rng.random() < 0.2:
            body = rng.choice([truncated, flipped])(rng, body)
            names.append("then mutated")
    return body, "+".join(names)


def events_shaper():
    schema = EVENTS.schema()
    return RecordShaper(schema, set(schema["properties"]), EVENTS.catch_all, START,
                        EVENTS.start_field, EVENT_FIELDS, keys=EVENTS.key)


def decode_and_shape(body, layout, what):
    """How many records `body` gives, and the BundleFormatError that ended it (or None)."""
    shaper = events_shaper()
    source = lambda: io.BufferedReader(io.BytesIO(body))  # noqa: E731
    identity = shaper.identity_values(type("Unit", (), {"id": BUNDLE_ID, "stop_text": "x"}))
    records = 0
    try:
        for row, event in enumerate(iter_events(source, BUNDLE_ID, layout, what)):
            records += shaper.shape(event, identity, row) is not None
    except BundleFormatError as exc:
        return records, exc
    return records, None


def test_mutated_bodies_end_in_records_or_one_line_naming_their_unit(monkeypatch, capsys):
    monkeypatch.setattr(decode, "MAX_EVENT_BYTES", CAP)
    rng = random.Random(SEED)
    outcomes = {"read": 0, "refused": 0}
    for case in range(CASES):
        layout = rng.choice(["array", "ndjson"])
        what = f"Bundle {BUNDLE_ID}" if layout == "array" else "Window 7"
        body, how = mutated_body(rng, layout)
        replay = f"FUZZ_SEED={SEED}, case {case}: {layout} {how}"
        try:
            _, error = decode_and_shape(body, layout, what)
        except Exception as exc:  # the finding: anything but BundleFormatError escaped
            raise AssertionError(f"{replay}: {type(exc).__name__}: {exc}"[:500]) from exc
        if error is not None:
            message = str(error)
            assert message.startswith(f"{what} "), (replay, message)
            # one short line: no newline, nor a quoted body's escaped one
            assert "\n" not in message and "\\n" not in message and len(message) < 300, \
                (replay, message)
        outcomes["refused" if error else "read"] += 1
    with capsys.disabled():
        print(f"\nfuzz seed {SEED} (replay with FUZZ_SEED={SEED}): {outcomes}")
    assert outcomes["read"] and outcomes["refused"]  # both kinds of body were tried


class ExportServer(ThreadingHTTPServer):
    """The Data Export API on loopback: LIST answers one bundle, GET its body, whatever the
    test put in `body`."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ExportHandler)
        self.body = b"[]"
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class ExportHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/api/v1/export/list":
            listed = int(query.get("start", ["0"])[0]) < BUNDLE_START + 86400
            exports = [{"Id": BUNDLE_ID, "Start": BUNDLE_START, "Stop": BUNDLE_START + 86400}]
            self.send(200, json.dumps({"exports": exports if listed else []}).encode())
        elif url.path == "/api/v1/export/get" and query.get("id") == [str(BUNDLE_ID)]:
            self.send(200, self.server.body, "application/octet-stream")
        else:
            self.send(404, b'{"code": "not_found", "message": "no such path"}')

    def send(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


@pytest.fixture
def export_server():
    server = ExportServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_cli(tmp_path, server, **settings):
    config = {"api_key": "fuzz-key-0123456789", "start_date": "2026-01-01T00:00:00Z",
              "base_url": server.url, "api_base_url": server.url,
              "max_downloads_per_minute": 60000, "max_retries": 0,
              "retry_backoff_seconds": 0.01, "spool_dir": str(tmp_path), **settings}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run([sys.executable, "-m", "tap_fullstory", "--config", str(path)],
                          capture_output=True, timeout=60)


def last_state(stdout):
    message = json.loads(stdout.splitlines()[-1])
    assert message["type"] == "STATE"
    return message["value"]


def test_mutated_bundles_through_the_cli_end_in_one_line_and_a_true_state(tmp_path,
                                                                          export_server,
                                                                          capsys):
    rng = random.Random(SEED + 1)
    outcomes = {"read": 0, "failed": 0, "skipped": 0}
    for case in range(CLI_CASES):
        body, how = mutated_body(rng, "array", CLI_MUTATIONS, CLI_GENTLE)
        records, error = decode_and_shape(body, "array", f"Bundle {BUNDLE_ID}")
        bad = error is not None
        skip = case % 2 == 1
        export_server.body = body
        result = run_cli(tmp_path, export_server, **({"on_bad_bundle": "skip"} if skip else {}))
        stderr = result.stderr.decode(errors="replace")
        replay = f"FUZZ_SEED={SEED}, CLI case {case}: {how}; stderr: {stderr[-800:]}"
        assert "Traceback" not in stderr, replay
        assert result.returncode == (1 if bad and not skip else 0), replay
        state = last_state(result.stdout)
        critical = [line for line in stderr.splitlines() if line.startswith("CRITICAL")]
        skipped = state["bookmarks"].get("events", {}).get("skipped", [])
        if bad and not skip:
            assert len(critical) == 1 and f"Bundle {BUNDLE_ID}" in critical[0], replay
        else:
            assert not critical, replay
        assert [s["ExportBundleId"] for s in skipped] == ([BUNDLE_ID] if bad and skip else []), \
            replay
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert sum(line["type"] == "RECORD" for line in lines) == records, replay  # good rows
        outcomes["read" if not bad else "skipped" if skip else "failed"] += 1
    with capsys.disabled():
        print(f"\nCLI fuzz seed {SEED} (replay with FUZZ_SEED={SEED}): {outcomes}")


def test_an_event_deeper_than_a_record_can_be_written_is_one_line_naming_its_row(
        tmp_path, export_server):
    """orjson writes at most 254 levels and decode reads 1,024: the row between is a
    malformed row of its bundle (skippable), never a traceback."""
    deep = b"[" * 300 + b"1" + b"]" * 300
    export_server.body = b'[{"EventStart": "2026-01-01T00:00:00Z", "evt_x_obj": ' + deep + b"}]"
    result = run_cli(tmp_path, export_server)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and result.returncode in (0, 1), stderr[-800:]
    critical = [line for line in stderr.splitlines() if line.startswith("CRITICAL")]
    assert result.returncode == 1 and len(critical) == 1, stderr[-800:]
    assert f"Bundle {BUNDLE_ID} row 0 is malformed" in critical[0]
    last_state(result.stdout)
