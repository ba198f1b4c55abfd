"""A bookmark from another grid: the window size or the source changed between two runs.

The bookmark is a moment. Whatever units the next run reads (4-hour windows after 6-hour
ones, windows after daily bundles, bundles after windows), it emits only events at or
after that moment, so every event arrives once even though the units, their ids and
their row numbers differ. Moving from data_export to segment_export with the same state
is the README's migration path: it is tried here as the README says it.
"""

import json
from collections import Counter

import pytest
from ciso8601 import parse_rfc3339

from conftest import messages, records, run_tap, states

START, END = "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"


IDENTIFYING = ("EventStart", "IndvId", "SessionId", "PageId", "EventType",
               "EventSessionOffset", "EventPageOffset")


def event_key(event):
    """What tells one event from another, whichever API (and so ids and row numbers) it
    came from."""
    return tuple(event.get(name) for name in IDENTIFYING)


def source_events(data):
    """Every event of the sandbox's account from START to END, as event_key writes it."""
    begin, end = parse_rfc3339(START), parse_rfc3339(END)
    events = Counter(event_key(event)
                     for index in range(data.bundles) for event in data.events(index)
                     if begin <= parse_rfc3339(event["EventStart"]) < end)
    assert set(events.values()) == {1}, "event_key must tell every event apart"
    return events


@pytest.fixture
def account(sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=90)

    def run(state=None, **settings):
        config = write_config(server.url, **{"start_date": START, "end_date": END,
                                             **settings})
        args = ["--config", config]
        if state is not None:
            path = tmp_path / f"state-{len(list(tmp_path.glob('state-*')))}.json"
            path.write_text(json.dumps(state))
            args += ["--state", str(path)]
        result = run_tap(*args)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        return messages(result.stdout)
    return server, run


def assert_once(server, *runs):
    got = Counter(event_key(r) for run in runs for r in records(run))
    twice = [key for key, count in got.items() if count > 1]
    assert not twice, f"{len(twice)} event(s) came twice, e.g. {twice[0]}"
    assert got == source_events(server.data), "an event fell between the runs"


SEGMENT = {"source": "segment_export"}


@pytest.mark.parametrize("first, then", [
    # a 06:00 bookmark, then 4-hour windows: the 04:00-08:00 window reaches back before it
    ({**SEGMENT, "export_window_hours": 6, "end_date": "2026-01-02T06:00:00Z"},
     {**SEGMENT, "export_window_hours": 4}),
    # daily bundles to a moment inside one, then 6-hour windows
    ({"end_date": "2026-01-02T15:00:00Z"}, {**SEGMENT, "export_window_hours": 6}),
    # 5-hour windows, then daily bundles: the bundle straddles the window's Stop
    ({**SEGMENT, "export_window_hours": 5, "end_date": "2026-01-02T10:00:00Z"}, {}),
    # 1-hour windows to a moment inside a window, then 24-hour ones
    ({**SEGMENT, "export_window_hours": 1, "end_date": "2026-01-01T17:30:00Z"},
     {**SEGMENT, "export_window_hours": 24}),
], ids=["6h-then-4h", "bundles-then-6h", "5h-then-bundles", "1h-then-24h"])
def test_a_bookmark_from_another_grid_bounds_what_the_next_run_emits(account, first, then):
    server, run = account
    before = run(**first)
    bookmark = states(before)[-1]["bookmarks"]["events"]["ExportBundleStop"]
    after = run(states(before)[-1], **then)
    assert all(parse_rfc3339(r["EventStart"]) >= parse_rfc3339(bookmark)
               for r in records(after))
    assert_once(server, before, after)


def test_moving_from_data_export_to_segment_export_with_the_same_state(account):
    """The README's migration: a finished data_export run's final STATE, then the same
    state with source segment_export (and the default 24-hour windows)."""
    server, run = account
    bundles = run(end_date="2026-01-02T00:00:00Z")
    assert states(bundles)[-1] == {"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}}, "currently_syncing": None}
    windows = run(states(bundles)[-1], source="segment_export")
    assert {r["ExportBundleStop"] for r in records(windows)} == {
        "2026-01-03T00:00:00.000000Z", "2026-01-04T00:00:00.000000Z"}
    assert_once(server, bundles, windows)
    assert states(windows)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-04T00:00:00.000000Z"}


def test_three_runs_over_three_grids_add_up(account):
    server, run = account
    one = run(source="segment_export", export_window_hours=3,
              end_date="2026-01-01T10:00:00Z")
    two = run(states(one)[-1], end_date="2026-01-02T20:00:00Z")  # bundles
    three = run(states(two)[-1], source="segment_export", export_window_hours=7)
    assert_once(server, one, two, three)
