"""A long history backfilled as partitions run in parallel, as the README shows: each its
own start_date/end_date and state, together within FullStory's download limit."""

import json
import subprocess
from dataclasses import dataclass
from datetime import timedelta

import pytest
from ciso8601 import parse_rfc3339

from conftest import API_KEY, TAP, expected_events, identity, messages, records, states
from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.faults import Faults
from tap_fullstory.sandbox.server import SandboxServer

BOUNDARIES = ["2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"]


@pytest.mark.parametrize("boundaries", [
    ["2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"],
    ["2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-07T00:00:00Z",
     "2026-01-09T00:00:00Z"],
], ids=["P=2", "P=3"])
def test_partitions_in_parallel_cover_the_range_exactly_once_within_the_limit(
        sandbox, write_config, tmp_path, boundaries):
    # 2 downloads in any 2 s: FullStory's limit, scaled down so the test takes seconds. Each
    # of the P partitions paces itself to 1/P of it.
    partitions = len(boundaries) - 1
    server = sandbox(bundles=8, events_per_bundle=30, rate=(2, 2.0))
    per_minute = 2 / 2.0 * 60 / partitions
    configs = [write_config(server.url, start_date=start, end_date=end,
                            max_downloads_per_minute=per_minute)
               for start, end in zip(boundaries, boundaries[1:], strict=False)]
    runs = [subprocess.Popen([TAP, "--config", config], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for config in configs]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr.decode()
        assert API_KEY.encode() not in stderr
    got = [records(messages(stdout)) for stdout, _ in outputs]
    ids = [identity(r) for part in got for r in part]
    assert len(ids) == len(set(ids)), "a partition repeated another's event"
    assert set(ids) == set(expected_events(server.data)), "an event is missing"
    # the bundle whose Stop is a boundary belongs to the earlier partition only
    for k, boundary in enumerate(boundaries[1:-1]):
        stop = boundary.replace("Z", ".000000Z")
        assert stop in {r["ExportBundleStop"] for r in got[k]}
        assert stop not in {r["ExportBundleStop"] for r in got[k + 1]}
    finals = [states(messages(stdout))[-1]["bookmarks"]["events"] for stdout, _ in outputs]
    assert finals == [{"ExportBundleStop": b.replace("Z", ".000000Z")} for b in boundaries[1:]]
    downloads = [status for path, status in server.requests if "/get" in path]
    assert downloads.count(200) == 8, "a bundle was downloaded twice"
    if partitions == 2:
        # 2/P a minute each never puts more than 2 downloads in one window when P divides 2
        assert downloads == [200] * 8, "the partitions together went over the limit"
        assert not any(b"rate limit (429)" in stderr for _, stderr in outputs)
    # With P = 3 two partitions' downloads can fall into the same window with a third's: the
    # sandbox then answers 429, the tap waits it out, and the result is still exactly once.


def test_a_partition_resumes_from_its_own_state(sandbox, write_config, tmp_path):
    server = sandbox(bundles=8, events_per_bundle=30)
    config = write_config(server.url, start_date=BOUNDARIES[1], end_date=BOUNDARIES[2])
    first = subprocess.run([TAP, "--config", config], capture_output=True, timeout=60)
    state = tmp_path / "partition-2.json"
    state.write_text(json.dumps(states(messages(first.stdout))[-1]))
    again = subprocess.run([TAP, "--config", config, "--state", str(state)],
                           capture_output=True, timeout=60)
    assert records(messages(again.stdout)) == []
    assert "events: no new bundles, nothing to sync." in again.stderr.decode()


def run_range(config, state=None, tmp_path=None):
    args = [TAP, "--config", config]
    if state is not None:
        path = tmp_path / "range-state.json"
        path.write_text(json.dumps(state))
        args += ["--state", str(path)]
    result = subprocess.run(args, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return messages(result.stdout)


def test_a_boundary_inside_a_bundle_splits_its_events_by_event_start(sandbox, write_config):
    server = sandbox(bundles=6, events_per_bundle=300)
    cuts = ["2026-01-01T00:00:00Z", "2026-01-03T12:00:00Z", "2026-01-05T07:30:00Z", None]
    parts = [run_range(write_config(server.url, start_date=start,
                                    **({"end_date": end} if end else {})))
             for start, end in zip(cuts, cuts[1:], strict=False)]
    ids = [identity(r) for part in parts for r in records(part)]
    assert len(ids) == len(set(ids)), "an event came in two ranges"
    assert set(ids) == set(expected_events(server.data)), "an event fell between ranges"
    straddler = 176739840048  # 2026-01-03 → 2026-01-04: read by the first two ranges
    assert all(any(r["ExportBundleId"] == straddler for r in records(part))
               for part in parts[:2])


def test_a_range_continued_without_its_end_date_sends_the_rest_of_the_last_bundle(
        sandbox, write_config, tmp_path):
    server = sandbox(bundles=4, events_per_bundle=300)
    first = run_range(write_config(server.url, end_date="2026-01-02T15:00:00Z"))
    progress = states(first)[-1]["bookmarks"]["events"]
    # the bookmark is a moment: the range's end_date, inside the last bundle it read
    assert progress == {"ExportBundleStop": "2026-01-02T15:00:00.000000Z"}
    again = run_range(write_config(server.url, end_date="2026-01-02T15:00:00Z"),
                      states(first)[-1], tmp_path)
    assert records(again) == [] and states(again)[-1] == states(first)[-1]
    rest = run_range(write_config(server.url), states(first)[-1], tmp_path)
    ids = [identity(r) for r in records(first) + records(rest)]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected_events(server.data))
    assert states(rest)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-05T00:00:00.000000Z"}


def assert_ranges_add_up(first, later, data):
    """`first` and a `later` run (the next range, or a continuation of the first from its
    state) together emit every event of `data` once."""
    ids = [identity(r) for r in records(first) + records(later)]
    assert len(ids) == len(set(ids)), "an event came in both runs"
    assert set(ids) == set(expected_events(data)), "an event fell between the runs"


def test_a_boundary_between_two_milliseconds_is_kept_to_the_microsecond(
        sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=300)
    event = next(e for e in server.data.events(1)[100:]
                 if not e["EventStart"].endswith(".000Z"))
    moment = parse_rfc3339(event["EventStart"]) + timedelta(milliseconds=1)
    boundary = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # between two events
    first = run_range(write_config(server.url, end_date=boundary))
    assert states(first)[-1]["bookmarks"]["events"]["ExportBundleStop"] == \
        moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert_ranges_add_up(first, run_range(write_config(server.url, start_date=boundary)),
                         server.data)
    assert_ranges_add_up(first, run_range(write_config(server.url), states(first)[-1],
                                          tmp_path), server.data)


@dataclass(frozen=True)
class SomeWithoutEventStart(SandboxData):
    """Every 40th event has no EventStart, and the one after it an unreadable one."""

    def events(self, index):
        events = super().events(index)
        for event in events[7::40]:
            del event["EventStart"]
        for event in events[8::40]:
            event["EventStart"] = "yesterday"
        return events


def test_events_without_a_readable_start_go_to_the_run_that_finishes_their_bundle(
        write_config, tmp_path):
    data = SomeWithoutEventStart(bundles=3, events_per_bundle=200)
    server = SandboxServer(data, api_key=API_KEY, rate=(0, 1.0), faults=Faults.parse(""),
                           bytes_per_second=None).start()
    try:
        boundary = "2026-01-02T12:00:00Z"  # inside the second bundle
        first = run_range(write_config(server.url, end_date=boundary))
        straddler = data.exports()[1]["Id"]
        assert all("EventStart" in r and r["EventStart"] != "yesterday"
                   for r in records(first) if r["ExportBundleId"] == straddler)
        assert_ranges_add_up(first, run_range(write_config(server.url,
                                                           start_date=boundary)), data)
        assert_ranges_add_up(first, run_range(write_config(server.url), states(first)[-1],
                                              tmp_path), data)
    finally:
        server.stop()
