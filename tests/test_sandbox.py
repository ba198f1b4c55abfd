"""The `tap-fullstory-sandbox` command, as a user would start and query it."""

import gzip
import json
import signal
import subprocess

import pytest
import requests

from conftest import SANDBOX
from tap_fullstory.sandbox.data import DOC_USER_ID, SandboxData
from tap_fullstory.sandbox.server import DownloadLimiter


@pytest.fixture
def running():
    proc = subprocess.Popen([SANDBOX, "--bundles", "25", "--events-per-bundle", "300",
                             "--rate", "2/30", "--api-key", "k1"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("tap-fullstory-sandbox listening on http://127.0.0.1:")
    url = line.split()[-1]
    session = requests.Session()
    session.headers["Authorization"] = "Basic k1"
    yield url, session, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_lists_20_per_call_oldest_first_and_pages_from_the_last_stop(running):
    url, session, _ = running
    first = session.get(url + "/api/v1/export/list", params={"start": 0}).json()["exports"]
    assert len(first) == 20
    assert [e["Stop"] for e in first] == sorted(e["Stop"] for e in first)
    rest = session.get(url + "/api/v1/export/list",
                       params={"start": first[-1]["Stop"]}).json()["exports"]
    assert len(rest) == 5 and rest[0]["Start"] == first[-1]["Stop"]


def test_checks_the_key_and_limits_downloads_with_retry_after(running):
    url, session, _ = running
    assert requests.get(url + "/api/v1/export/list").status_code == 401
    assert requests.get(url + "/api/v1/export/list",
                        headers={"Authorization": "Basic wrong"}).status_code == 401
    exports = session.get(url + "/api/v1/export/list").json()["exports"]
    get = url + "/api/v1/export/get"
    assert session.get(get, params={"id": 12345}).status_code == 404
    raw = session.get(get, params={"id": exports[0]["Id"]}, stream=True).raw.read()
    assert raw[:2] == b"\x1f\x8b"  # a gzip payload
    plain = session.get(get, params={"id": exports[1]["Id"]})
    assert plain.content.lstrip()[:1] == b"["
    limited = session.get(get, params={"id": exports[2]["Id"]})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 30


def test_stops_on_sigterm(running):
    _, _, proc = running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_bodies_decode_to_the_generated_events():
    data = SandboxData(bundles=4, events_per_bundle=30)
    for index in range(4):
        body, headers = data.body(index)
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        assert json.loads(body) == data.events(index)
    kinds = {data.body(i)[1].get("Content-Encoding", data.body(i)[1]["Content-Type"])
             for i in range(4)}
    assert kinds == {"application/gzip", "gzip", "application/json"}


def test_limiter_counts_a_sliding_window():
    now = [0.0]
    limiter = DownloadLimiter(2, 60, clock=lambda: now[0])
    assert limiter.acquire() == 0 and limiter.acquire() == 0
    now[0] = 20
    assert limiter.acquire() == 40
    now[0] = 60
    assert limiter.acquire() == 0


def test_data_covers_every_field_family_and_the_awkward_values():
    data = SandboxData(bundles=3, events_per_bundle=400)
    events = [e for i in range(3) for e in data.events(i)]
    keys = set().union(*events)
    for family in ("Load", "Req", "App", "Page", "User", "Session", "Event"):
        assert any(k.startswith(family) for k in keys), family
    for field in ("EventCustomName", "EventVarErrorKind", "EventMobileSourceFile",
                  "EventCumulativeLayoutShift", "PageAgent", "PageUserAgent",
                  "EventTargetSelectorTok", "EventTargetSelector"):
        assert field in keys, field
    assert {"evt_order.total_real", "user_tags_strs", "page_scores_reals",
            "page_experiment.arm_str", "evt_coupon_bool", "user_trial_end_date"} <= keys
    texts = [e.get("EventTargetText", "") for e in events]
    assert any("\n" in t and '"' in t for t in texts)
    assert any(ord(c) > 0xFFFF for t in texts for c in t)  # emoji outside the BMP
    assert any(e["UserId"] > 2**53 for e in events)
    assert any(e.get("UserEmail") == "" for e in events)
    assert any("PageRefererUrl" not in e for e in events)


def test_documented_address_change_session_is_in_the_first_bundle():
    session = [e for e in SandboxData().events(0) if e["UserId"] == DOC_USER_ID]
    steps = [(e["EventType"], e.get("EventTargetText"), e["PageUrl"]) for e in session
             if e["EventType"] in ("click", "change")]
    assert steps == [
        ("click", "Update Address", "https://example.com/my-account"),
        ("click", "Street address", "https://example.com/update-address"),
        ("change", "1339 Chestnut Street", "https://example.com/update-address"),
        ("click", "Save Changes", "https://example.com/update-address"),
    ]
