"""The edges of the exactly-once promise through the real CLI: full and missing disks,
bodies gzip-encoded over HTTP, endless 429s, answers from a proxy, poison bundles, a stalled
body and a target that goes away. Each ends with one clear line and a true STATE, or is
survived exactly once."""

import gzip
import json
import subprocess

import pytest

from conftest import (
    TAP,
    expected_events,
    identity,
    messages,
    original_event,
    records,
    resume_is_exactly_once,
    run_tap,
    states,
)
from tap_fullstory.sandbox.server import PROXY_PAGE
from tap_fullstory.timestamps import format_time


def critical_lines(result):
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("CRITICAL")]


def final_state(server):
    return {"bookmarks": {"events": {
        "ExportBundleStop": format_time(server.data.exports()[-1]["Stop"])}},
        "currently_syncing": None}


def assert_exactly_once(result, server, missing=()):
    """Every event but those of the bundles in `missing`, once, field for field."""
    assert result.returncode == 0, result.stderr.decode()
    got = records(messages(result.stdout))
    ids = [identity(r) for r in got]
    assert len(ids) == len(set(ids)), "an event was emitted twice"
    expected = {key: event for key, event in expected_events(server.data).items()
                if key[0] not in missing}
    assert {identity(r): original_event(r) for r in got} == expected


def body_sizes(server):
    """(on the wire, inflated) bytes of each bundle the sandbox serves."""
    sizes = []
    for index in range(len(server.data.exports())):
        body, _ = server.data.body(index)
        inflated = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        sizes.append((len(body), len(inflated)))
    return sizes


def test_a_full_spool_dir_is_one_line_and_a_true_state(sandbox, write_config, small_disk,
                                                       tmp_path):
    server = sandbox(bundles=4, events_per_bundle=400)
    sizes = body_sizes(server)
    # Room for the first, gzip, bundle but not for the second, plain, one beside it.
    disk = small_disk(f"{sizes[0][0] + sizes[1][0] // 2}")
    config = write_config(server.url, spool_dir=str(disk), checkpoint_every=50)
    result = run_tap("--config", config)
    assert result.returncode == 1
    [line] = critical_lines(result)
    mb = sizes[1][0] / 1e6
    assert line.startswith(f"CRITICAL spool_dir {disk} is full: Bundle 176731200048 needs "
                           f"{mb:,.1f} MB and ")
    assert line.endswith("Free some space or point spool_dir at a larger disk, then run "
                         "again from the last STATE.")
    assert list(disk.iterdir()) == []
    # the first bundle went out whole; its STATE is the last line, and resumes exactly once
    msgs, _ = resume_is_exactly_once(result.stdout, write_config(server.url), tmp_path,
                                     server.data)
    assert states(msgs)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}


def test_gzip_encoded_bodies_are_spooled_compressed(sandbox, write_config, small_disk):
    server = sandbox(bundles=3, events_per_bundle=1500, encoding="content-encoding")
    sizes = body_sizes(server)
    wire, inflated = max(s[0] for s in sizes), min(s[1] for s in sizes)
    assert 4 * wire < inflated  # two compressed bodies fit; one inflated one never would
    disk = small_disk(f"{2 * wire + 64 * 1024}")
    result = run_tap("--config", write_config(server.url, spool_dir=str(disk)))
    assert_exactly_once(result, server)
    assert states(messages(result.stdout))[-1] == final_state(server)


@pytest.mark.parametrize("problem", ["missing", "a file", "read-only"])
def test_an_unusable_spool_dir_is_one_line_before_any_download(
        sandbox, write_config, small_disk, tmp_path, problem):
    server = sandbox(bundles=2)
    if problem == "missing":
        where, why = tmp_path / "nowhere", "does not exist"
    elif problem == "a file":
        where, why = tmp_path / "file", "is not a directory"
        where.write_text("x")
    else:
        where = small_disk("1m")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        why = "cannot hold a spool file (Read-only file system)"
    result = run_tap("--config", write_config(server.url, spool_dir=str(where)))
    assert result.returncode == 1
    assert critical_lines(result) == [
        f"CRITICAL spool_dir {where} {why}: point spool_dir at a writable directory with "
        "room for two bundles (compressed)."]
    assert messages(result.stdout)[-1] == {
        "type": "STATE", "value": {"bookmarks": {"events": {}}, "currently_syncing": None}}
    assert not any("/get" in path for path, _ in server.requests)


def test_retry_after_zero_for_ever_is_never_a_busy_loop(sandbox, write_config):
    server = sandbox(bundles=2, faults="429-forever=1")
    result = run_tap("--config", write_config(server.url, max_rate_limit_wait=3))
    assert result.returncode == 1
    assert critical_lines(result) == [
        "CRITICAL FullStory kept answering 429 (rate limited) to bundle 176722560048 for "
        "more than 3 s (max_rate_limit_wait); another client may be using the same key's "
        "limit. Run again later from the last STATE."]
    attempts = [path for path, status in server.requests if "/get" in path]
    assert 2 <= len(attempts) <= 4  # at least a second apart
    assert "waiting 1.0 s (Retry-After asked 0 s; never less than 1 s)" in \
        result.stderr.decode()
    assert states(messages(result.stdout))[-1]["bookmarks"] == {"events": {}}


def test_an_html_page_instead_of_the_list_says_what_came_back(sandbox, write_config):
    server = sandbox(bundles=2, faults="html-list=1")
    result = run_tap("--config", write_config(server.url))
    assert critical_lines(result) == [
        "CRITICAL FullStory's answer to list is not what the API promises (a JSON object "
        f"with 'exports'): 200, text/html, {len(PROXY_PAGE)} bytes: '<html><head><title>502"
        f"</title></head><body>Internal proxy er'…. Check that base_url ({server.url}) "
        "points at FullStory, or the proxy in between."]


@pytest.mark.parametrize("fault, reason", [
    ("bad-json-bundle", "Bundle {id} is not a JSON array of events (its body starts with "
                        "b'<'). FullStory served it as text/html."),
    ("null-bundle", "Bundle {id} is not a JSON array of events (its body starts with b'n')."),
    ("missing-bundle", "FullStory answered 404 Not Found for bundle {id}: the bundle no "
                       "longer exists. FullStory said not_found: \"no such bundle\"."),
])
def test_on_bad_bundle_skip_passes_a_poison_bundle_over_and_records_it(
        sandbox, write_config, fault, reason):
    bad = 176739840048  # the third of five
    server = sandbox(bundles=5, faults=f"{fault}={bad}")
    result = run_tap("--config", write_config(server.url, max_retries=1,
                                              on_bad_bundle="skip"))
    assert_exactly_once(result, server, missing={bad})
    reason = reason.format(id=bad)
    errors = [line for line in result.stderr.decode().splitlines()
              if line.startswith("ERROR")]
    assert errors == [f"ERROR Skipped bundle {bad} (2026-01-03T00:00:00.000000Z → "
                      f"2026-01-04T00:00:00.000000Z): {reason} It is listed under 'skipped' "
                      "in the state; see the README to fetch it again."]
    assert states(messages(result.stdout))[-1] == {"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-06T00:00:00.000000Z",
        "skipped": [{"ExportBundleId": bad, "ExportBundleStop": "2026-01-04T00:00:00.000000Z",
                     "reason": reason, "events_from": "2026-01-03T00:00:00.000000Z"}]}},
        "currently_syncing": None}


def test_a_bundle_broken_mid_way_is_skipped_after_its_good_rows_and_fetched_again_later(
        sandbox, write_config, tmp_path):
    bad = 176731200048  # the second bundle: cut half-way on every download
    broken = sandbox(bundles=3, events_per_bundle=100, faults=f"truncate-bundle={bad}")
    first = run_tap("--config", write_config(broken.url, max_retries=1, checkpoint_every=9,
                                             on_bad_bundle="skip"))
    assert first.returncode == 0, first.stderr.decode()
    final = states(messages(first.stdout))[-1]["bookmarks"]["events"]
    [skipped] = final["skipped"]
    done = skipped["rows_done"]
    assert skipped["ExportBundleId"] == bad and 0 < done < 100
    out = [identity(r) for r in records(messages(first.stdout))]
    assert sorted(row for bundle, row in out if bundle == bad) == list(range(done))
    # The README's recipe: a run over just that bundle's period, from its in_progress.
    healthy = sandbox(bundles=3, events_per_bundle=100)
    state = tmp_path / "refetch.json"
    state.write_text(json.dumps({"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-02T00:00:00Z",
        "in_progress": {"ExportBundleId": bad, "rows_done": done}}}}))
    again = run_tap("--config", write_config(healthy.url, end_date=skipped["ExportBundleStop"]),
                    "--state", str(state))
    assert again.returncode == 0, again.stderr.decode()
    out += [identity(r) for r in records(messages(again.stdout))]
    assert len(out) == len(set(out)) and set(out) == set(expected_events(healthy.data))


def test_a_stalled_body_times_out_and_is_downloaded_again(sandbox, write_config):
    server = sandbox(bundles=3, events_per_bundle=200, faults="stall-download=2")
    result = run_tap("--config", write_config(server.url, request_timeout=1))
    assert_exactly_once(result, server)
    assert "no answer within 1 s (request_timeout). Retrying in" in result.stderr.decode()


def test_a_target_that_closes_the_pipe(sandbox, write_config):
    server = sandbox(bundles=5, events_per_bundle=200)
    tap = subprocess.Popen([TAP, "--config", write_config(server.url)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tap.stdout.read(5000)
    tap.stdout.close()  # the target has gone away
    stderr = tap.stderr.read().decode()
    assert tap.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("CRITICAL")] == [
        "CRITICAL stdout was closed by the target; the last STATE it received resumes the "
        "sync."]
