from datetime import datetime, timezone

import pytest

from tap_fullstory.bundles import Bundle
from tap_fullstory.errors import ConfigError
from tap_fullstory.state import Bookmark, StateKeeper, format_stop, read_bookmark

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
BUNDLE = Bundle(id=42, start=1767225600, stop=1767312000)


def test_empty_state_lists_from_start_date():
    assert read_bookmark({}).list_from(START_DATE) == int(START_DATE.timestamp())


def test_bookmark_lists_from_the_last_stop():
    state = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-02T00:00:00.000000Z"}}}
    assert read_bookmark(state).list_from(START_DATE) == 1767312000


def test_later_start_date_wins_over_an_older_bookmark():
    state = {"bookmarks": {"events": {"ExportBundleStop": "2025-01-01T00:00:00Z"}}}
    assert read_bookmark(state).list_from(START_DATE) == int(START_DATE.timestamp())


def test_legacy_flat_state_is_converted():
    bookmark = read_bookmark({"events": "2026-01-02T00:00:00Z"})
    assert bookmark.list_from(START_DATE) == 1767312000
    keeper = StateKeeper({"events": "2026-01-02T00:00:00Z"})
    assert keeper.final() == {"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-02T00:00:00Z"}}, "currently_syncing": None}


def test_in_progress_bundle_skips_its_emitted_rows():
    state = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-01T00:00:00Z",
                                      "in_progress": {"ExportBundleId": 42,
                                                      "rows_done": 500}}}}
    bookmark = read_bookmark(state)
    assert bookmark.rows_to_skip(42) == 500
    assert bookmark.rows_to_skip(43) == 0


def test_keeper_writes_checkpoints_then_a_final_state():
    keeper = StateKeeper({"bookmarks": {"other": {"x": 1}}})
    assert keeper.in_progress(BUNDLE, 10) == {
        "bookmarks": {"other": {"x": 1}, "events": {"in_progress": {
            "ExportBundleId": 42, "ExportBundleStop": "2026-01-02T00:00:00.000000Z",
            "rows_done": 10}}},
        "currently_syncing": "events"}
    assert keeper.bundle_done(BUNDLE)["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}
    assert keeper.final() == {"bookmarks": {"other": {"x": 1}, "events": {
        "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}}, "currently_syncing": None}


def test_keeper_drops_a_resumed_in_progress_position_once_the_bundle_is_done():
    keeper = StateKeeper({"bookmarks": {"events": {"in_progress": {
        "ExportBundleId": 42, "rows_done": 3}}}})
    keeper.bundle_done(BUNDLE)
    assert "in_progress" not in keeper.final()["bookmarks"]["events"]


def test_state_round_trips_through_its_own_checkpoints():
    keeper = StateKeeper({})
    assert read_bookmark(keeper.in_progress(BUNDLE, 7)) == Bookmark(
        bundle_id=42, bundle_stop="2026-01-02T00:00:00.000000Z", rows_done=7)


@pytest.mark.parametrize("state, message", [
    ([], "must be a JSON object, not a list"),
    ({"foo": 1}, "has keys this tap never writes \\(foo\\)"),
    ({"bookmarks": []}, "'bookmarks' must be an object"),
    ({"bookmarks": {"events": "x"}}, "'bookmarks.events' must be an object"),
    ({"bookmarks": {"events": {"ExportBundleStop": "soon"}}}, "not an RFC 3339 timestamp"),
    ({"bookmarks": {"events": {"in_progress": {"rows_done": 1}}}}, "must hold ExportBundleId"),
    ({"bookmarks": {"events": {"in_progress": {"ExportBundleId": 1, "rows_done": -1}}}},
     "whole numbers"),
    ({"events": "not a date"}, "Legacy state value 'events'"),
])
def test_bad_states_are_rejected(state, message):
    with pytest.raises(ConfigError, match=message):
        read_bookmark(state)


def test_format_stop():
    assert format_stop(1767312000) == "2026-01-02T00:00:00.000000Z"
