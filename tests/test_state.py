from datetime import datetime, timezone

import pytest

from tap_fullstory.errors import ConfigError
from tap_fullstory.state import StateKeeper, UnitBookmark, read_unit_bookmark, validate_state
from tap_fullstory.units import Unit

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
BUNDLE = Unit(id=42, start=1767225600, stop=1767312000)


def bookmark_of(state):
    return read_unit_bookmark(validate_state(state))


def test_empty_state_lists_from_start_date():
    assert bookmark_of({}).list_from(START_DATE) == int(START_DATE.timestamp())


def test_bookmark_lists_from_the_last_stop():
    state = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-02T00:00:00.000000Z"}}}
    assert bookmark_of(state).list_from(START_DATE) == 1767312000


def test_later_start_date_wins_over_an_older_bookmark():
    state = {"bookmarks": {"events": {"ExportBundleStop": "2025-01-01T00:00:00Z"}}}
    assert bookmark_of(state).list_from(START_DATE) == int(START_DATE.timestamp())


def test_legacy_flat_state_is_converted():
    assert bookmark_of({"events": "2026-01-02T00:00:00Z"}).list_from(START_DATE) == 1767312000
    assert StateKeeper({"events": "2026-01-02T00:00:00Z"}).finish() == {"bookmarks": {
        "events": {"ExportBundleStop": "2026-01-02T00:00:00Z"}}, "currently_syncing": None}


def test_in_progress_unit_skips_its_emitted_rows():
    state = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-01T00:00:00Z",
                                      "in_progress": {"ExportBundleId": 42,
                                                      "rows_done": 500}}}}
    bookmark = bookmark_of(state)
    assert bookmark.rows_to_skip(42) == 500
    assert bookmark.rows_to_skip(43) == 0


def test_checkpoints_then_done_then_a_final_state():
    keeper = StateKeeper({"bookmarks": {"other": {"x": 1}}})
    bookmark = UnitBookmark()
    assert keeper.update("events", bookmark.in_progress(BUNDLE, 10).to_dict()) == {
        "bookmarks": {"other": {"x": 1}, "events": {"in_progress": {
            "ExportBundleId": 42, "ExportBundleStop": "2026-01-02T00:00:00.000000Z",
            "rows_done": 10}}},
        "currently_syncing": "events"}
    done = bookmark.in_progress(BUNDLE, 10).done(BUNDLE)
    assert done.to_dict() == {"ExportBundleStop": "2026-01-02T00:00:00.000000Z"}
    keeper.update("events", done.to_dict())
    assert keeper.finish() == {"bookmarks": {"other": {"x": 1}, "events": {
        "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}}, "currently_syncing": None}


def test_a_skipped_unit_is_listed_and_passed():
    bookmark = UnitBookmark(stop="2026-01-01T00:00:00.000000Z").skip(BUNDLE, "HTML body", 3)
    assert bookmark.to_dict() == {"ExportBundleStop": "2026-01-02T00:00:00.000000Z",
                                  "skipped": [{"ExportBundleId": 42,
                                               "ExportBundleStop": "2026-01-02T00:00:00.000000Z",
                                               "reason": "HTML body",
                                               "events_from": "2026-01-01T00:00:00.000000Z",
                                               "rows_done": 3}]}
    assert bookmark_of({"bookmarks": {"events": bookmark.to_dict()}}) == bookmark


def test_state_round_trips_through_its_own_checkpoints():
    value = UnitBookmark().in_progress(BUNDLE, 7, {"searchExportId": "se-1"}).to_dict()
    assert bookmark_of({"bookmarks": {"events": value}}) == UnitBookmark(
        unit_id=42, unit_stop="2026-01-02T00:00:00.000000Z", rows_done=7,
        origin={"searchExportId": "se-1"})


@pytest.mark.parametrize("state, message", [
    ([], "must be a JSON object, not a list"),
    ({"foo": 1}, "has keys this tap never writes \\(foo\\)"),
    ({"bookmarks": []}, "'bookmarks' must be an object"),
    ({"bookmarks": {"events": "x"}}, "'bookmarks.events' must be an object"),
    ({"bookmarks": {"events": {"ExportBundleStop": "soon"}}}, "not an RFC 3339 timestamp"),
    ({"bookmarks": {"events": {"in_progress": {"rows_done": 1}}}}, "must hold ExportBundleId"),
    ({"bookmarks": {"events": {"in_progress": {"ExportBundleId": 1, "rows_done": -1}}}},
     "whole numbers"),
    ({"bookmarks": {"events": {"skipped": {"ExportBundleId": 1}}}}, "must be a list"),
    ({"currently_syncing": 3}, "'currently_syncing' must be a stream name or null"),
    ({"bookmarks": {"events": {"in_progress": {"ExportBundleId": 1, "rows_done": 1,
                                               "operationId": 5}}}},
     "names an export that is not a pair of ids"),
    ({"bookmarks": {"events": {"in_progress": {"ExportBundleId": 1, "rows_done": 1,
                                               "events_before": "soon"}}}},
     "events_before 'soon' is not an RFC 3339 timestamp"),
    ({"events": "not a date"}, "Legacy state value 'events'"),
])
def test_bad_states_are_rejected(state, message):
    with pytest.raises(ConfigError, match=message):
        bookmark_of(state)


def test_a_legacy_events_before_is_read_as_the_moment_of_the_bookmark():
    legacy = {"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-01T00:00:00.000000Z",
        "in_progress": {"ExportBundleId": 42, "ExportBundleStop": "2026-01-02T00:00:00.000000Z",
                        "rows_done": 0, "events_before": "2026-01-01T15:00:00.000000Z"}}}}
    assert bookmark_of(legacy).to_dict() == {"ExportBundleStop": "2026-01-01T15:00:00.000000Z"}
    legacy["bookmarks"]["events"]["in_progress"]["rows_done"] = 7  # resumed, then stopped
    bookmark = bookmark_of(legacy)
    assert bookmark.stop == "2026-01-01T15:00:00.000000Z" and bookmark.rows_to_skip(42) == 7


def test_a_skipped_entry_leaves_once_its_unit_is_done_and_resumes_it_if_offered_again():
    skipped = UnitBookmark(stop="2026-01-01T00:00:00.000000Z").skip(BUNDLE, "broke", 3)
    assert skipped.rows_to_skip(BUNDLE.id) == 3
    assert "skipped" not in skipped.in_progress(BUNDLE, 9).done(BUNDLE).to_dict()
    again = skipped.skip(BUNDLE, "broke again", 5)
    assert [e["rows_done"] for e in again.skipped] == [5]  # one entry per unit, the latest


def test_a_vanished_unit_is_listed_and_the_bookmark_stays():
    bookmark = UnitBookmark(stop="2026-01-01T00:00:00.000000Z").in_progress(BUNDLE, 4)
    gone = bookmark.vanished("no longer offered.")
    assert gone.to_dict() == {"ExportBundleStop": "2026-01-01T00:00:00.000000Z", "skipped": [
        {"ExportBundleId": 42, "ExportBundleStop": "2026-01-02T00:00:00.000000Z",
         "reason": "no longer offered.", "events_from": "2026-01-01T00:00:00.000000Z",
         "rows_done": 4}]}


def test_the_bookmark_never_moves_back():
    later = UnitBookmark(stop="2026-01-03T00:00:00.000000Z")
    assert later.reached("2026-01-02T00:00:00.000000Z").stop == "2026-01-03T00:00:00.000000Z"
