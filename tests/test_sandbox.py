"""The `tap-fullstory-sandbox` command, as a user would start and query it."""

import gzip
import json
import signal
import subprocess

import pytest
import requests

from conftest import SANDBOX
from tap_fullstory.sandbox.account import SandboxAccount
from tap_fullstory.sandbox.data import DOC_USER_ID, SandboxData
from tap_fullstory.sandbox.files import BundleDirectory, write_bundles
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


def test_sessions_are_drawn_from_a_pool_of_people_who_recur_across_bundles():
    data = SandboxData(bundles=6, events_per_bundle=200)
    people = {p["IndvId"]: p for p in data.people()}
    assert data.people() == SandboxData(bundles=6, events_per_bundle=200).people()
    assert data.people() != SandboxData(seed=2).people()
    bundles_of, identity_of = {}, {}
    identity = ("IndvId", "UserId", "UserCreated", "UserAppKey", "UserDisplayName",
                "UserEmail")
    for index in range(6):
        for event in data.events(index):
            person = people[event["IndvId"]]  # every event belongs to a person of the pool
            assert {k: event[k] for k in identity} == {k: person[k] for k in identity}
            identity_of.setdefault(event["IndvId"], set()).add(event["SessionId"])
            bundles_of.setdefault(event["IndvId"], set()).add(index)
            if event["EventType"] == "uservar":
                assert {k: v for k, v in event.items() if k.startswith("user_")} == {
                    k: v for k, v in person.items() if k.startswith("user_")}
    assert sum(len(b) >= 3 for b in bundles_of.values()) >= 10
    assert max(len(sessions) for sessions in identity_of.values()) >= 5
    assert any(not people[i]["UserAppKey"] for i in bundles_of)  # anonymous ones too
    assert all(p["UserId"] > 2**53 and p["IndvId"] > 2**53 for p in people.values())
    assert len({p["UserAppKey"] for p in people.values() if p["UserAppKey"]}) == \
        sum(1 for p in people.values() if p["UserAppKey"])


def test_the_documented_person_is_first_and_only_in_his_documented_session():
    data = SandboxData(bundles=5, events_per_bundle=200)
    daniel = data.people()[0]
    assert (daniel["UserId"], daniel["UserDisplayName"], daniel["user_plan_str"]) == (
        DOC_USER_ID, "Daniel Falko", "pro")
    his = [e for i in range(5) for e in data.events(i) if e["UserId"] == DOC_USER_ID]
    assert len(his) == 6 and all(e["user_plan_str"] == "pro" for e in his)


def test_window_individuals_are_the_windows_people_with_lifetime_aggregates():
    data = SandboxData(bundles=3, events_per_bundle=120)
    first = int(data.start.timestamp())
    every = data.all_events()
    for day in range(3):
        begin, end = first + day * 86400, first + (day + 1) * 86400
        rows = data.window_individuals(begin, end)
        active = list(dict.fromkeys(e["IndvId"] for e in data.window_events(begin, end)))
        assert [r["IndvId"] for r in rows] == active and rows
        for row in rows:
            theirs = [e for e in every if e["IndvId"] == row["IndvId"]]
            assert row["NumEvents"] == len(theirs)  # all time, not the window's
            assert row["NumSessions"] == len({e["SessionId"] for e in theirs})
            assert row["LastEventStart"] == max(e["EventStart"] for e in theirs)
    busy = [r for r in data.window_individuals(first, first + 86400) if any(
        e["IndvId"] == r["IndvId"] for e in data.window_events(first + 86400, first + 3 * 86400))]
    assert busy  # someone active on several days: their day-1 row counts the later days too


def test_new_flags_reach_the_server_and_the_help_describes_them():
    help_text = subprocess.run([SANDBOX, "--help"], capture_output=True, text=True,
                               check=True).stdout
    for flag in ("--page-size", "--token-spelling", "--segment-seconds", "forbidden-path",
                 "api-429-every"):
        assert flag in help_text, flag
    proc = subprocess.Popen([SANDBOX, "--page-size", "3", "--token-spelling", "alternate",
                             "--segment-seconds", "0", "--faults", "forbidden-path=/v2/users"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        headers = {"Authorization": "Bearer sandbox-key"}
        page = requests.get(url + "/segments/v1", headers=headers).json()
        assert len(page["segments"]) == 3 and page["next_pagination_token"]
        assert requests.get(url + "/v2/users", headers=headers).status_code == 403
        operation = requests.post(url + "/segments/v1/exports", headers=headers, json={
            "segmentId": "everyone", "type": "TYPE_INDIVIDUAL", "format": "FORMAT_NDJSON",
            "timeRange": {"start": "", "end": ""}}).json()["operationId"]
        state = requests.get(f"{url}/operations/v1/{operation}", headers=headers).json()
        assert state["state"] == "COMPLETED"  # 0 seconds: done at the first poll
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_bundles_written_to_a_directory_serve_the_same_account(tmp_path):
    data = SandboxData(bundles=3, events_per_bundle=80, seed=5)
    served = BundleDirectory(write_bundles(data, tmp_path / "bundles"))
    assert served.people() == data.people()
    first = int(data.start.timestamp())
    window = (first + 3600, first + 2 * 86400)

    def key(event):
        return json.dumps(event, sort_keys=True)
    assert sorted(map(key, served.window_events(*window))) == \
        sorted(map(key, data.window_events(*window)))
    assert {r["IndvId"]: r for r in served.window_individuals(*window)} == \
        {r["IndvId"]: r for r in data.window_individuals(*window)}
    assert SandboxAccount(served).users() == SandboxAccount(data).users()
