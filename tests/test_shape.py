from datetime import datetime, timezone

import pytest

from tap_fullstory.bundles import Bundle
from tap_fullstory.discover import IDENTITY_FIELDS, load_schema
from tap_fullstory.shape import RecordShaper, is_date_time

SCHEMA = load_schema()
ALL_FIELDS = set(SCHEMA["properties"])
START = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
BUNDLE = Bundle(id=176722560048, start=1767225600, stop=1767312000)


def shaper(fields=ALL_FIELDS, start=START):
    return RecordShaper(SCHEMA, fields, start, IDENTITY_FIELDS)


def shape(event, fields=ALL_FIELDS, row=3):
    s = shaper(fields)
    return s.shape(dict(event), s.identity_values(BUNDLE), row), s


def test_declared_fields_keep_exact_values_and_identity_is_added():
    event = {"UserId": 2**63 - 1, "EventStart": "2026-01-01T12:00:00.001Z",
             "EventDuration": 6.75, "EventType": "click", "PageName": ""}
    record, _ = shape(event)
    assert record == {**event, "ExportBundleId": BUNDLE.id, "ExportBundleRow": 3,
                      "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}


def test_undeclared_keys_go_to_custom_vars_with_their_names():
    event = {"EventStart": "2026-01-02T00:00:00Z", "user_plan_str": "pro",
             "evt_order.total_real": 4, "page_tags_strs": ["a"], "NewFieldFromFS": None}
    record, _ = shape(event)
    assert record["CustomVars"] == {"user_plan_str": "pro", "evt_order.total_real": 4,
                                    "page_tags_strs": ["a"], "NewFieldFromFS": None}
    assert "user_plan_str" not in record


@pytest.mark.parametrize("field, value", [
    ("UserId", "123"), ("UserId", 1.5), ("UserId", True), ("EventDuration", "fast"),
    ("PageUrl", 7), ("EventStart", "yesterday"), ("PageStart", 1767225600),
    ("EventModDead", [1]), ("ReqStatus", {"code": 200}),
])
def test_values_that_do_not_fit_move_to_custom_vars(field, value):
    event = {"EventType": "click", field: value}
    record, s = shape(event)
    assert field not in record
    assert record["CustomVars"] == {field: value}
    assert s.misfits == {field: 1}


def test_nulls_fit_every_declared_field():
    event = {"UserId": None, "EventStart": None, "PageUrl": None, "EventDuration": None}
    record, s = shape(event)
    assert {k: record[k] for k in event} == event and not s.misfits


def test_integers_fit_number_fields():
    record, s = shape({"EventDuration": 4, "EventCumulativeLayoutShift": 0})
    assert record["EventDuration"] == 4 and not s.misfits


def test_fields_the_tap_owns_keep_the_source_value_in_custom_vars():
    record, _ = shape({"ExportBundleRow": "x", "CustomVars": {"a": 1}})
    assert record["ExportBundleRow"] == 3
    assert record["CustomVars"] == {"ExportBundleRow": "x", "CustomVars": {"a": 1}}


def test_events_before_start_date_are_not_emitted():
    s = shaper()
    identity = s.identity_values(BUNDLE)
    assert s.shape({"EventStart": "2026-01-01T11:59:59.999Z"}, identity, 0) is None
    assert s.shape({"EventStart": "2026-01-01T12:00:00.000Z"}, identity, 1) is not None
    assert s.shape({"EventStart": "2026-01-01T13:00:00+02:00"}, identity, 2) is None
    assert s.before_start_date == 2


def test_events_without_a_readable_event_start_are_kept():
    record, _ = shape({"EventType": "click"})
    assert record["EventType"] == "click"


def test_deselected_fields_are_dropped_and_automatic_kept():
    fields = {"ExportBundleStop", "EventType"}
    record, _ = shape({"EventType": "click", "PageUrl": "https://e.com", "user_x_str": "y"},
                      fields)
    assert record == {"EventType": "click", "ExportBundleStop": "2026-01-02T00:00:00.000000Z"}


@pytest.mark.parametrize("value, ok", [
    ("2026-01-01T00:00:00Z", True), ("2026-01-01T00:00:00.123Z", True),
    ("2026-01-01T00:00:00+05:30", True), (None, True), ("2026-01-01", False),
    ("2026-13-01T00:00:00Z", False), (0, False),
])
def test_is_date_time(value, ok):
    assert is_date_time(value) is ok


def test_events_with_the_same_layout_share_a_plan_but_are_counted_each():
    s = shaper()
    identity = s.identity_values(BUNDLE)
    records = [s.shape({"UserId": "x", "EventType": "click", "evt_a_str": str(i)}, identity, i)
               for i in range(3)]
    assert [r["CustomVars"] for r in records] == [
        {"UserId": "x", "evt_a_str": str(i)} for i in range(3)]
    assert s.misfits == {"UserId": 3}
    assert len(s._plans) == 1


def test_a_bad_timestamp_in_a_known_layout_still_moves_to_custom_vars():
    s = shaper()
    identity = s.identity_values(BUNDLE)
    good = s.shape({"EventStart": "2026-01-02T00:00:00Z", "PageStart": "2026-01-02T00:00:00Z"},
                   identity, 0)
    bad = s.shape({"EventStart": "2026-01-02T00:00:00Z", "PageStart": "tomorrow"}, identity, 1)
    assert good["PageStart"] == "2026-01-02T00:00:00Z"
    assert "PageStart" not in bad and bad["CustomVars"] == {"PageStart": "tomorrow"}
    assert s.misfits == {"PageStart": 1}


def test_custom_vars_deselected_drops_undeclared_keys():
    fields = ALL_FIELDS - {"CustomVars"}
    record, s = shape({"EventType": "click", "user_x_str": "y", "UserId": "z"}, fields)
    assert "CustomVars" not in record and "user_x_str" not in record
    assert "UserId" not in record and s.misfits == {"UserId": 1}
