"""A long history backfilled as partitions run in parallel, as the README shows: each its
own start_date/end_date and state, together within FullStory's download limit."""

import json
import subprocess

from conftest import API_KEY, TAP, expected_events, identity, messages, records, states

BOUNDARIES = ["2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"]


def test_two_partitions_in_parallel_cover_the_range_exactly_once_within_the_limit(
        sandbox, write_config, tmp_path):
    # 2 downloads in any 2 s: FullStory's limit, scaled down so the test takes seconds. Each
    # of the P = 2 partitions paces itself to half of it.
    server = sandbox(bundles=8, events_per_bundle=30, rate=(2, 2.0))
    per_minute = 2 / 2.0 * 60 / 2
    configs = [write_config(server.url, start_date=start, end_date=end,
                            max_downloads_per_minute=per_minute)
               for start, end in zip(BOUNDARIES, BOUNDARIES[1:], strict=False)]
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
    # the bundle whose Stop is the boundary belongs to the first partition only
    assert {r["ExportBundleStop"] for r in got[0]} >= {"2026-01-05T00:00:00.000000Z"}
    assert "2026-01-05T00:00:00.000000Z" not in {r["ExportBundleStop"] for r in got[1]}
    finals = [states(messages(stdout))[-1]["bookmarks"]["events"] for stdout, _ in outputs]
    assert finals == [{"ExportBundleStop": "2026-01-05T00:00:00.000000Z"},
                      {"ExportBundleStop": "2026-01-09T00:00:00.000000Z"}]
    downloads = [status for path, status in server.requests if "/get" in path]
    assert downloads == [200] * 8, "the partitions together went over the limit"
    assert not any(b"rate limit (429)" in stderr for _, stderr in outputs)


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
