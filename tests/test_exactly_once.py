"""Kill -9 the tap at several points, resume from its last STATE, count every event."""

import json
import signal

import pytest

from conftest import (
    expected_events,
    identity,
    in_progress,
    messages,
    nth_state,
    original_event,
    records,
    run_and_kill,
    run_tap,
    states,
)

CHECKPOINT_EVERY = 7
EVENTS_PER_BUNDLE = 20


def records_past_state(n, k):
    """Kill after reading k RECORD lines past the n-th STATE: a tail the resume repeats."""
    seen = {"states": 0, "records": 0}

    def should_kill(message):
        if message["type"] == "STATE":
            seen["states"] += 1
            seen["records"] = 0
        elif message["type"] == "RECORD" and seen["states"] >= n:
            seen["records"] += 1
        return seen["records"] >= k
    return should_kill


def bundle_done(value):
    events = value["bookmarks"].get("events", {})
    return "ExportBundleStop" in events and "in_progress" not in events


def check_resume(killed, resumed, expected, uninterrupted_final, exactly_once=False,
                 checkpoint_every=CHECKPOINT_EVERY):
    """Nothing lost; nothing before the last STATE repeated; the tail repeats at most."""
    last = max((i for i, m in enumerate(killed) if m["type"] == "STATE"), default=-1)
    before = [identity(r) for r in records(killed[:last + 1])]
    tail = [identity(r) for r in records(killed[last + 1:])]
    again = records(resumed)
    again_ids = [identity(r) for r in again]
    assert len(set(before)) == len(before) and len(set(again_ids)) == len(again_ids)
    assert not set(before) & set(again_ids), "an event before the last STATE came again"
    assert set(before) | set(again_ids) == set(expected), "events were lost"
    assert set(tail) <= set(again_ids)
    assert len(tail) < checkpoint_every
    if exactly_once:
        assert tail == []
    everything = records(killed) + again
    assert all(original_event(r) == expected[identity(r)] for r in everything)
    assert states(resumed)[-1] == uninterrupted_final
    return len(tail)


@pytest.fixture
def world(sandbox, write_config):
    """The same 25 bundles, served with and without a tight download limit."""
    fast = sandbox(bundles=25, events_per_bundle=EVENTS_PER_BUNDLE)
    config = write_config(fast.url, checkpoint_every=CHECKPOINT_EVERY)
    final = states(messages(run_tap("--config", config).stdout))[-1]
    return fast, config, final, expected_events(fast.data)


KILL_POINTS = {
    "the stream's first STATE": nth_state(1),
    "first checkpoint": nth_state(1, in_progress),
    "mid-bundle, early": nth_state(2, in_progress),
    "mid-bundle, later": nth_state(11, in_progress),
    "between bundles": nth_state(5, bundle_done),
    "after the first LIST page": nth_state(21, bundle_done),
    "in the last bundle": nth_state(24 * 2 + 1, in_progress),  # 2 checkpoints a bundle
}


@pytest.mark.parametrize("point", KILL_POINTS, ids=list(KILL_POINTS))
def test_kill_and_resume_loses_nothing_and_repeats_only_the_tail(world, tmp_path, point):
    fast, config, final, expected = world
    killed, code = run_and_kill(config, KILL_POINTS[point], tmp_path)
    assert code == -signal.SIGKILL
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    check_resume(killed, resumed, expected, final)


def test_kill_right_after_a_state_is_exactly_once(world, sandbox, write_config, tmp_path):
    fast, config, final, expected = world
    # Two downloads per minute: after bundle 2's STATE the tap can only wait on a 429,
    # so the kill lands with nothing written after that STATE.
    slow = sandbox(bundles=25, events_per_bundle=EVENTS_PER_BUNDLE, rate=(2, 60.0))
    slow_config = write_config(slow.url, checkpoint_every=CHECKPOINT_EVERY)
    killed, _ = run_and_kill(slow_config, nth_state(2, bundle_done), tmp_path)
    assert states(killed)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-03T00:00:00.000000Z"}
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    check_resume(killed, resumed, expected, final, exactly_once=True)


def test_resume_twice_in_a_row(world, tmp_path):
    fast, config, final, expected = world
    killed, _ = run_and_kill(config, nth_state(3, in_progress), tmp_path)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    killed_again, _ = run_and_kill(config, nth_state(4, in_progress), tmp_path, str(state))
    state.write_text(json.dumps(states(killed_again)[-1]))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    combined = killed_again + resumed
    first_last = max(i for i, m in enumerate(killed) if m["type"] == "STATE")
    before = {identity(r) for r in records(killed[:first_last + 1])}
    assert before.isdisjoint(identity(r) for r in records(combined))
    assert before | {identity(r) for r in records(combined)} == set(expected)
    assert states(resumed)[-1] == final


def test_rows_written_after_the_last_state_come_again_with_the_same_identity(
        world, write_config, tmp_path):
    fast, _, final, expected = world
    # 15 rows (~17 kB) go out with each checkpoint in one write; reading 3 of them past
    # a STATE through a 4 kB pipe means the next STATE cannot have been written yet.
    config = write_config(fast.url, checkpoint_every=15)
    killed, _ = run_and_kill(config, records_past_state(3, 3), tmp_path)  # 3rd: bundle done
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    repeated = check_resume(killed, resumed, expected, final, checkpoint_every=15)
    assert 3 <= repeated < 15


def test_kill_while_the_next_bundle_downloads(world, sandbox, write_config, tmp_path):
    fast, config, final, expected = world
    # ~10 kB/s: each download takes a fraction of a second, so the feed is mid-download of the
    # next bundle while the current one is emitted and checkpointed.
    slow = sandbox(bundles=25, events_per_bundle=EVENTS_PER_BUNDLE, bytes_per_second=10_000)
    slow_config = write_config(slow.url, checkpoint_every=CHECKPOINT_EVERY)
    fourth = f"get?id={slow.data.exports()[3]['Id']}"
    third_done = nth_state(3, bundle_done)

    def kill_once_the_fourth_downloads(message):
        if not third_done(message):
            return False
        assert slow.wait_for_request(fourth), "the feed did not download ahead"
        return True

    killed, _ = run_and_kill(slow_config, kill_once_the_fourth_downloads, tmp_path)
    assert states(killed)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-04T00:00:00.000000Z"}
    # the half-downloaded bundle had no name: the kernel freed it with the killed process
    assert list((tmp_path / "spool").iterdir()) == []
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    check_resume(killed, resumed, expected, final)
    assert list((tmp_path / "spool").iterdir()) == []
