"""The sessions stream (fanout_stream.py): one /sessions/v2 request per identified user,
through the real CLI against the sandbox, whose sessions are those of its events."""

import json
import signal
import subprocess
import threading
from datetime import datetime, timezone

import pytest

from conftest import API_KEY, TAP, catalog_selecting, messages, run_and_kill, run_tap, states
from tap_fullstory.fanout_stream import (
    MAX_GONE_IN_A_ROW,
    created_moment,
    exact_integer,
    session_row,
    user_order,
)
from tap_fullstory.sandbox import server as sandbox_server
from tap_fullstory.timestamps import format_time

START, END = "2026-01-01T00:00:00Z", "2026-01-06T00:00:00Z"


def event_sessions(data, since=START, until=END):
    """{(UserId, SessionId): the row the tap must emit} for the identified people's
    sessions that began in [since, until), from the events themselves."""
    low, high = (datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
                 for t in (since, until))
    sessions = {}
    for event in data.all_events():
        if not event["UserAppKey"]:
            continue
        start = datetime.fromisoformat(event["SessionStart"].replace("Z", "+00:00"))
        seconds = int(start.timestamp())
        if low <= seconds < high:
            sessions[event["UserId"], event["SessionId"]] = {
                "userId": event["UserId"], "sessionId": event["SessionId"],
                "createdTime": format_time(seconds)}
    return sessions


def session_rows(msgs):
    return [m["record"] for m in msgs if m["type"] == "RECORD" and m["stream"] == "sessions"]


def by_key(rows):
    keyed = {}
    for row in rows:
        assert (row["userId"], row["sessionId"]) not in keyed, f"{row} came twice"
        keyed[row["userId"], row["sessionId"]] = row
    return keyed


def without_url(row):
    return {k: v for k, v in row.items() if k != "fsUrl"}


@pytest.fixture
def fanout(sandbox, write_config, tmp_path):
    """A sandbox with several sessions per person, and `sync(state=None, **settings)`
    running the tap with only the sessions stream selected."""
    server = sandbox(bundles=5, events_per_bundle=300)
    catalog = catalog_selecting(tmp_path, write_config(server.url), ["sessions"])

    def config(**settings):
        return write_config(server.url, **{"api_base_url": server.url, "end_date": END,
                                           **settings})

    def sync(state=None, **settings):
        args = ["--config", config(**settings), "--catalog", catalog]
        if state is not None:
            path = tmp_path / "state.json"
            path.write_text(json.dumps(state))
            args += ["--state", str(path)]
        result = run_tap(*args)
        assert result.returncode == 0, result.stderr.decode()
        return result

    return server, sync, config, catalog


def session_calls(server):
    return [path for path, _ in server.requests if path.startswith("/sessions/v2")]


@pytest.mark.parametrize("ids", ["strings", "numbers"])
def test_every_session_of_every_identified_user_by_key(fanout, ids):
    server, sync, _, _ = fanout
    server.session_ids = ids  # FullStory's example sends strings; its schema says int64
    result = sync(sessions_per_user=1000)
    rows = by_key(session_rows(messages(result.stdout)))
    expected = event_sessions(server.data)
    assert {key: without_url(row) for key, row in rows.items()} == expected
    assert all(type(row["userId"]) is int and row["userId"] > 2**53 for row in rows.values())
    assert all(row["fsUrl"].endswith(f"/session/{row['userId']}:{row['sessionId']}")
               for row in rows.values())
    identified = server.account.users(identified=True)
    assert len(session_calls(server)) == len(identified)  # one request per user, no more
    assert all("limit=1000" in path for path in session_calls(server))
    listing = [p for p, _ in server.requests if p.startswith("/v2/users")]
    assert all("is_identified=true" in p for p in listing)
    stderr = result.stderr.decode()
    assert (f"sessions: {len(identified)} identified user(s) in {len(listing)} listing "
            f"request(s): {len(identified)} request(s) to /sessions/v2 follow, one per user"
            ) in stderr
    assert "WARNING" not in stderr
    schema = next(m for m in messages(result.stdout) if m["type"] == "SCHEMA")
    assert schema["key_properties"] == ["userId", "sessionId"]
    assert schema["bookmark_properties"] == ["createdTime"]


def test_a_user_with_more_sessions_than_the_limit_gives_the_newest(fanout):
    server, sync, _, _ = fanout
    result = sync(sessions_per_user=3)
    rows = by_key(session_rows(messages(result.stdout)))
    expected = event_sessions(server.data)
    per_user = {}
    for (user, session), row in expected.items():
        per_user.setdefault(user, []).append((row["createdTime"], session, row))
    newest = {}
    over = 0
    for user, sessions in per_user.items():
        sessions.sort(reverse=True)
        over += len(sessions) > 3
        newest.update({(user, s): row for _, s, row in sessions[:3]})
    assert over > 5, "the sandbox should have users with more sessions than the limit"
    assert {key: without_url(row) for key, row in rows.items()} == newest
    assert (f"WARNING sessions: {sum(len(s) >= 3 for s in per_user.values())} user(s) "
            "answered all 3 sessions asked for") in result.stderr.decode()


def test_each_run_emits_the_sessions_created_since_the_last_one_began(fanout):
    server, sync, _, _ = fanout
    middle = "2026-01-03T07:00:00Z"
    first = messages(sync(sessions_per_user=1000, end_date=middle).stdout)
    assert states(first)[-1]["bookmarks"]["sessions"] == {
        "createdTime": "2026-01-03T07:00:00.000000Z"}
    second = messages(sync(states(first)[-1], sessions_per_user=1000).stdout)
    one, two = by_key(session_rows(first)), by_key(session_rows(second))
    assert {k: without_url(r) for k, r in one.items()} == event_sessions(server.data, START,
                                                                        middle)
    assert {k: without_url(r) for k, r in two.items()} == event_sessions(server.data, middle,
                                                                        END)
    third = messages(sync(states(second)[-1], sessions_per_user=1000).stdout)
    assert session_rows(third) == []


def run_and_stop(args, signum, should_stop, tmp_path):
    """Run the tap with `args`, send `signum` once `should_stop(message)`, read to the end."""
    with open(tmp_path / "stopped-stderr.txt", "wb") as stderr:
        proc = subprocess.Popen([TAP, *args], stdout=subprocess.PIPE, stderr=stderr,
                                pipesize=4096)
        output = b""
        for line in proc.stdout:
            output += line
            if should_stop(json.loads(line)):
                proc.send_signal(signum)
                break
        output += proc.stdout.read()
        code = proc.wait(timeout=60)
    assert API_KEY.encode() not in output + (tmp_path / "stopped-stderr.txt").read_bytes()
    return messages(output), code


def after_users(n):
    """True at the STATE written after the n-th user whose sessions are out."""
    def should(message):
        sweep = message.get("value", {}).get("bookmarks", {}).get("sessions", {}).get("sweep")
        return message["type"] == "STATE" and bool(sweep) and "after_user" in sweep and (
            should.seen.add(sweep["after_user"]) or len(should.seen) >= n)
    should.seen = set()
    return should


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stop_mid_fan_out_resumes_after_the_last_user_out_whatever_the_order(
        fanout, tmp_path, how):
    server, _, config, catalog = fanout
    args = ["--config", config(sessions_per_user=1000), "--catalog", catalog]
    server.user_order_seed = 1
    if how == "SIGKILL":
        stopped, code = run_and_kill(args[1], after_users(7), tmp_path, more=args[2:])
        assert code == -signal.SIGKILL
    else:
        stopped, code = run_and_stop(args, signal.SIGTERM, after_users(7), tmp_path)
        assert code == 143
    last = states(stopped)[-1]
    assert last["currently_syncing"] == "sessions"
    assert last["bookmarks"]["sessions"]["sweep"]["until"] == "2026-01-06T00:00:00.000000Z"
    asked_before = len(session_calls(server))
    server.user_order_seed = 2  # FullStory documents no order: it may list them otherwise
    path = tmp_path / "resume-state.json"
    path.write_text(json.dumps(last))
    resumed = run_tap(*args, "--state", str(path))
    assert resumed.returncode == 0, resumed.stderr.decode()
    cut = max(i for i, m in enumerate(stopped) if m["type"] == "STATE")
    before = by_key(session_rows(stopped[:cut + 1]))
    after = by_key(session_rows(messages(resumed.stdout)))
    assert not set(before) & set(after), "a session a STATE covered came again"
    if how == "SIGTERM":  # a clean stop's last STATE covers every row it wrote
        assert len(session_rows(stopped)) == len(before)
    expected = event_sessions(server.data)
    assert {k: without_url(r) for k, r in {**before, **after}.items()} == expected
    identified = len(server.account.users(identified=True))
    mark = user_order(last["bookmarks"]["sessions"]["sweep"]["after_user"])
    out = sum(user_order(u["id"]) <= mark for u in server.account.users(identified=True))
    assert out >= 7  # the tap may have gone on a little before the signal came
    assert len(session_calls(server)) - asked_before <= identified - out
    assert f"; {out} were asked before the stop: {identified - out} request(s)" in \
        resumed.stderr.decode()
    assert states(messages(resumed.stdout))[-1]["bookmarks"]["sessions"] == {
        "createdTime": "2026-01-06T00:00:00.000000Z"}


def routed(monkeypatch, path, wrap):
    """Serve the sandbox route of `path` through `wrap(handler)` for this test."""
    monkeypatch.setattr(sandbox_server, "ROUTES", [
        (method, pattern, wrap(handler) if pattern.pattern == path else handler, api)
        for method, pattern, handler, api in sandbox_server.ROUTES])


@pytest.mark.parametrize("where", ["listing", "sessions"])
def test_a_stop_while_fullstory_holds_a_request_is_prompt_and_exact(fanout, tmp_path,
                                                                    monkeypatch, where):
    # The server holds one request (the second page of identified users, or the fourth
    # user's sessions) until the test lets it go: the tap must stop without waiting for it.
    server, _, config, catalog = fanout
    held, release, calls = threading.Event(), threading.Event(), []
    path = "/v2/users" if where == "listing" else "/sessions/v2"

    def wrap(handler):
        def answer(request, *args):
            calls.append(request.path)
            if len(calls) == (2 if where == "listing" else 4):
                held.set()
                release.wait(120)
            return handler(request, *args)
        return answer

    routed(monkeypatch, path, wrap)
    args = ["--config", config(sessions_per_user=1000), "--catalog", catalog]
    proc = subprocess.Popen([TAP, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert held.wait(60), "the tap never reached the held request"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # the held request is still held
    finally:
        release.set()
        proc.kill()
    assert proc.returncode == 143, err.decode()
    assert "Traceback" not in err.decode()
    stopped = messages(out)
    rows = by_key(session_rows(stopped))
    last = states(stopped)[-1]
    sweep = last["bookmarks"].get("sessions", {}).get("sweep", {})
    if where == "listing":
        assert rows == {} and "after_user" not in sweep
    else:
        assert len({user for user, _ in rows}) <= 3 and sweep["after_user"]
    state_file = tmp_path / "resume.json"
    state_file.write_text(json.dumps(last))
    resumed = run_tap(*args, "--state", str(state_file))
    assert resumed.returncode == 0, resumed.stderr.decode()
    again = by_key(session_rows(messages(resumed.stdout)))
    assert not set(rows) & set(again)
    assert {k: without_url(r) for k, r in {**rows, **again}.items()} == event_sessions(
        server.data)


def test_a_user_gone_since_the_listing_is_counted_and_the_rest_come(fanout, monkeypatch):
    # FullStory documents no answer for a uid it no longer knows: the sandbox answers an
    # empty list (every other test); a 404 here for two users, as for deleted ones.
    server, sync, _, _ = fanout
    identified = server.account.users(identified=True)
    gone = {identified[3]["uid"], identified[9]["uid"]}

    def wrap(handler):
        def answer(request, *args):
            if request.query.get("uid") in gone:
                return request.send_error_json(404, "not_found", "no such user")
            return handler(request, *args)
        return answer

    routed(monkeypatch, "/sessions/v2", wrap)
    result = sync(sessions_per_user=1000)
    rows = by_key(session_rows(messages(result.stdout)))
    gone_ids = {int(u["id"]) for u in identified if u["uid"] in gone}
    expected = {k: r for k, r in event_sessions(server.data).items() if k[0] not in gone_ids}
    assert {k: without_url(r) for k, r in rows.items()} == expected
    assert "WARNING sessions: 2 user(s) answered 404 (deleted since the listing" in \
        result.stderr.decode()


def test_many_users_answering_404_in_a_row_is_a_wrong_address(fanout, monkeypatch):
    server, _, config, catalog = fanout

    def wrap(handler):
        def answer(request, *args):
            return request.send_error_json(404, "not_found", "no such path")
        return answer

    routed(monkeypatch, "/sessions/v2", wrap)
    result = run_tap("--config", config(), "--catalog", catalog)
    assert result.returncode == 1
    critical = [line for line in result.stderr.decode().splitlines()
                if line.startswith("CRITICAL")]
    assert len(critical) == 1, critical
    assert f"404 for the sessions of {MAX_GONE_IN_A_ROW + 1} users in a row" in critical[0]
    assert len(session_calls(server)) <= MAX_GONE_IN_A_ROW + 2  # one asked ahead at most


def test_users_are_asked_by_uid_and_one_without_is_counted(fanout, monkeypatch):
    # An email can belong to several users: asking by it would bring another user's
    # sessions too (the sandbox, like FullStory's help page, answers every match).
    server, sync, _, _ = fanout
    first = server.account.users(identified=True)[0]

    def wrap(handler):
        def answer(request, *args):
            send = request.send_json

            def without_first_uid(status, body, *rest):
                for user in body.get("results", []):
                    if user["id"] == first["id"]:
                        user.pop("uid")
                return send(status, body, *rest)
            request.send_json = without_first_uid
            return handler(request, *args)
        return answer

    routed(monkeypatch, "/v2/users", wrap)
    result = sync(sessions_per_user=1000)
    calls = session_calls(server)
    assert calls and all("uid=" in c and "email=" not in c for c in calls)
    rows = by_key(session_rows(messages(result.stdout)))
    expected = {k: r for k, r in event_sessions(server.data).items()
                if k[0] != int(first["id"])}
    assert {k: without_url(r) for k, r in rows.items()} == expected
    assert "WARNING sessions: 1 identified user(s) have no uid" in result.stderr.decode()


def test_an_answer_is_deduplicated_by_the_whole_key(fanout, monkeypatch):
    server, sync, _, _ = fanout
    first = server.account.users(identified=True)[0]["uid"]
    odd = [{"userId": 5, "sessionId": 7, "createdTime": "1767312000"},
           {"userId": 6, "sessionId": 7, "createdTime": "1767312000"},
           {"userId": 5, "sessionId": 7, "createdTime": "1767312000"}]

    def wrap(handler):
        def answer(request, *args):
            if request.query.get("uid") == first:
                return request.send_json(200, {"sessions": odd})
            return handler(request, *args)
        return answer

    routed(monkeypatch, "/sessions/v2", wrap)
    rows = by_key(session_rows(messages(sync(sessions_per_user=1000).stdout)))
    assert {(5, 7), (6, 7)} <= set(rows)  # the same sessionId of two users: both, once


def test_a_403_on_sessions_names_the_stream_and_its_permission(fanout):
    server, _, config, catalog = fanout
    server.faults.forbidden_path = ("/sessions/v2",)
    result = run_tap("--config", config(), "--catalog", catalog)
    assert result.returncode == 1
    critical = [line for line in result.stderr.decode().splitlines()
                if line.startswith("CRITICAL")]
    assert len(critical) == 1
    assert critical[0].startswith(
        "CRITICAL FullStory refused access (403) to the sessions stream (GET /sessions/v2 per "
        "user of GET /v2/users?is_identified=true): the key needs Architect or Admin")


@pytest.mark.parametrize("session, problem", [
    ({"userId": "12", "sessionId": "x", "createdTime": "1"}, "sessionId 'x' is not an int64"),
    ({"userId": "1" * 30, "sessionId": "3", "createdTime": "1"}, "userId"),
    ({"userId": 12, "sessionId": 3, "createdTime": "soon"}, "createdTime 'soon'"),
    ({"userId": 12, "sessionId": 3}, "createdTime None"),
])
def test_a_session_that_cannot_be_keyed_or_placed_is_one_line(fanout, session, problem,
                                                             monkeypatch):
    server, _, config, catalog = fanout

    def answer(request):
        return request.send_json(200, {"sessions": [session]})

    monkeypatch.setattr(sandbox_server, "ROUTES", [
        (method, pattern, answer if pattern.pattern == "/sessions/v2" else handler, api)
        for method, pattern, handler, api in sandbox_server.ROUTES])
    result = run_tap("--config", config(), "--catalog", catalog)
    assert result.returncode == 1
    critical = [line for line in result.stderr.decode().splitlines()
                if line.startswith("CRITICAL")]
    assert len(critical) == 1 and problem in critical[0], critical
    assert "Traceback" not in result.stderr.decode()


def test_session_rows_keep_int64_ids_exact_and_write_created_time_as_a_timestamp():
    moment, row = session_row({"userId": "9223372036854775807", "sessionId": 6541880918402351317,
                               "createdTime": "1411492739", "fsUrl": "u", "new": 1})
    assert row == {"userId": 2**63 - 1, "sessionId": 6541880918402351317,
                   "createdTime": "2014-09-23T17:18:59.000000Z", "fsUrl": "u", "new": 1}
    assert moment == datetime(2014, 9, 23, 17, 18, 59, tzinfo=timezone.utc)
    assert exact_integer("007") is None and exact_integer(True) is None
    assert exact_integer(str(2**63)) is None and exact_integer(-5) == -5
    assert created_moment(1411492739.5).microsecond == 500000
    assert created_moment("nan") is None and created_moment("1e30") is None
    assert created_moment(None) is None and created_moment("") is None
    for odd in ("1_767_312_000", " 1767312000", "\u0661\u0662", "+5", "1e9"):
        assert created_moment(odd) is None, odd
