"""Every fault FullStory or the network can produce, through the real CLI and sandbox:
survived with every event exactly once, or one CRITICAL line and a STATE that resumes."""


import pytest

from conftest import (
    expected_events,
    identity,
    messages,
    original_event,
    records,
    resume_is_exactly_once,
    run_tap,
    states,
)
from tap_fullstory.timestamps import format_time


def final_state(stop):
    return {"bookmarks": {"events": {"ExportBundleStop": stop}}, "currently_syncing": None}


def assert_exactly_once(result, server):
    assert result.returncode == 0, result.stderr.decode()
    got = records(messages(result.stdout))
    ids = [identity(r) for r in got]
    assert len(ids) == len(set(ids)), "an event was emitted twice"
    assert {identity(r): original_event(r) for r in got} == expected_events(server.data)
    last_stop = format_time(server.data.exports()[-1]["Stop"])
    assert states(messages(result.stdout))[-1] == final_state(last_stop)


def critical_lines(result):
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("CRITICAL")]


@pytest.mark.parametrize("faults, logged", [
    ("5xx-every=3", "FullStory answered 503 Service Unavailable. Retrying in"),
    ("reset-download=2", "the connection broke in the middle of the body. Retrying in"),
    ("truncate-download=1", "Bundle 176722560048 is a broken gzip file"),
    ("truncate-download=2", "Bundle 176731200048 ends before its JSON array does. "
                            "Downloading it again"),
    ("truncate-download=3", "Bundle 176739840048"),
    ("truncate-download=4,reset-download=6,5xx-every=4", "Retrying in"),
], ids=["5xx", "reset mid-body", "truncated gzip payload", "truncated JSON",
        "truncated gzip content-encoding", "several at once"])
def test_transient_faults_are_survived_exactly_once(sandbox, write_config, faults, logged):
    server = sandbox(bundles=6, events_per_bundle=60, faults=faults)
    result = run_tap("--config", write_config(server.url, checkpoint_every=7))
    assert_exactly_once(result, server)
    assert logged in result.stderr.decode()


def test_truncated_bundle_is_downloaded_again_and_emitted_rows_skipped(sandbox, write_config):
    server = sandbox(bundles=2, events_per_bundle=200, faults="truncate-download=1")
    result = run_tap("--config", write_config(server.url, checkpoint_every=10))
    msgs = messages(result.stdout)
    checkpoints = [s["bookmarks"]["events"]["in_progress"]["rows_done"]
                   for s in states(msgs) if "in_progress" in s["bookmarks"].get("events", {})]
    # rows went out from the broken copy before it failed; the retry went on after them
    assert checkpoints[0] == 10 and len(checkpoints) >= 19
    assert "(resumed after row" not in result.stderr.decode()
    assert_exactly_once(result, server)
    assert [s for p, s in server.requests if "/get" in p] == [200, 200, 200]


def test_429_on_list_waits_and_pages_on(sandbox, write_config):
    server = sandbox(bundles=25, events_per_bundle=5, faults="list-429-every=2")
    result = run_tap("--config", write_config(server.url))
    assert_exactly_once(result, server)
    assert "FullStory rate limit (429) on list: waiting 1.0 s as Retry-After asks." in \
        result.stderr.decode()


@pytest.mark.parametrize("settings, faults, message", [
    ({"max_retries": 2}, "5xx-every=1",
     "CRITICAL Gave up on list after 3 tries: FullStory answered 503 Service Unavailable. "
     "127.0.0.1:{port} answered but kept failing; run again later from the last STATE."),
    ({"max_retries": 1, "request_timeout": 0.3}, "slow=1",
     "CRITICAL Gave up on list after 2 tries: no answer within 0.3 s (request_timeout). "
     "Check that 127.0.0.1:{port} is reachable, then run again from the last STATE."),
    ({}, "403-every=1",
     "CRITICAL FullStory refused access (403) to the events stream (Data Export bundles): "
     "the key needs the Data Export add-on and Architect or Admin permission. FullStory "
     "said injected: \"injected 403\". Use a key with it, deselect the stream, or set "
     "on_forbidden to skip."),
    ({}, "missing-bundle=176731200048",
     "CRITICAL FullStory answered 404 Not Found for bundle 176731200048: the bundle no "
     "longer exists. FullStory said not_found: \"no such bundle\". Run again to list "
     "bundles afresh (on_bad_bundle: skip would pass over it)."),
], ids=["5xx after retries", "timeouts after retries", "403", "404 on get"])
def test_faults_that_outlast_retries_end_with_one_line(sandbox, write_config, settings,
                                                      faults, message):
    server = sandbox(bundles=3, faults=faults)
    result = run_tap("--config", write_config(server.url, **settings))
    assert result.returncode == 1
    port = server.server_address[1]
    assert critical_lines(result) == [message.format(port=port)]


def test_404_on_list_says_check_base_url(sandbox, write_config):
    server = sandbox(bundles=1)
    result = run_tap("--config", write_config(server.url + "/not-the-api"))
    assert critical_lines(result) == [
        "CRITICAL FullStory answered 404 Not Found for list: check base_url. FullStory said "
        "not_found: \"no route /not-the-api/api/v1/export/list\"."]


def test_connection_refused(write_config):
    result = run_tap("--config", write_config("http://127.0.0.1:9", max_retries=1))
    assert result.returncode == 1
    assert critical_lines(result) == [
        "CRITICAL Gave up on list after 2 tries: Connection refused. Check that "
        "127.0.0.1:9 is reachable, then run again from the last STATE."]


def test_a_bundle_that_is_never_json_stops_with_its_id_and_resumes(
        sandbox, write_config, tmp_path):
    bad = 176739840048  # the third bundle
    broken = sandbox(bundles=5, faults=f"bad-json-bundle={bad}")
    result = run_tap("--config", write_config(broken.url, max_retries=2))
    assert result.returncode == 1
    assert critical_lines(result) == [
        f"CRITICAL Bundle {bad} is not a JSON array of events (its body starts with b'<'). "
        "FullStory served it as text/html. Gave up after 3 downloads; none of its rows is out "
        "and the last STATE resumes at it (on_bad_bundle: skip would pass over it)."]
    assert states(messages(result.stdout))[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-03T00:00:00.000000Z"}
    healthy = sandbox(bundles=5)
    _, second = resume_is_exactly_once(result.stdout, write_config(healthy.url), tmp_path,
                                       healthy.data)
    assert states(second)[-1] == final_state("2026-01-06T00:00:00.000000Z")


def test_a_bundle_broken_mid_way_every_time_stops_after_a_true_checkpoint(
        sandbox, write_config, tmp_path):
    bad = 176731200048  # the second bundle: plain JSON, cut half-way on every download
    broken = sandbox(bundles=3, events_per_bundle=100, faults=f"truncate-bundle={bad}")
    result = run_tap("--config", write_config(broken.url, max_retries=2, checkpoint_every=9))
    assert result.returncode == 1
    [line] = critical_lines(result)
    assert line.startswith(f"CRITICAL Bundle {bad} ends before its JSON array does. Gave up "
                           "after 3 downloads; its first ")
    first = messages(result.stdout)
    progress = states(first)[-1]["bookmarks"]["events"]["in_progress"]
    emitted = [row for bundle, row in map(identity, records(first)) if bundle == bad]
    assert emitted == list(range(progress["rows_done"])) and 0 < len(emitted) < 100
    assert f"its first {progress['rows_done']} row(s) are out" in line
    healthy = sandbox(bundles=3, events_per_bundle=100)
    _, second = resume_is_exactly_once(result.stdout, write_config(healthy.url), tmp_path,
                                       healthy.data)
    assert states(second)[-1] == final_state("2026-01-04T00:00:00.000000Z")
