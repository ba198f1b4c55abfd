import io
import json
import logging
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tap_fullstory.decode import WideInt, iter_events
from tap_fullstory.emit import MessageWriter
from tap_fullstory.shape import RecordShaper, is_date_time
from tap_fullstory.streams import BY_NAME, EVENT_FIELDS

SCHEMA = BY_NAME["events"].schema()
ALL_FIELDS = set(SCHEMA["properties"])
START = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
BUNDLE = SimpleNamespace(id=176722560048, stop_text="2026-01-02T00:00:00.000000Z")


def shaper(fields=ALL_FIELDS, start=START):
    return RecordShaper(SCHEMA, fields, "CustomVars", start, "EventStart", EVENT_FIELDS)


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


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, WideInt(2**64 + 5), WideInt(-2**63 - 1),
                                   -2**63 - 1])
def test_integers_a_bigint_column_cannot_hold_move_to_custom_vars(value):
    record, s = shape({"UserId": value, "SessionId": 5, "EventType": "click"})
    assert "UserId" not in record and record["SessionId"] == 5
    assert record["CustomVars"] == {"UserId": value}
    assert type(record["CustomVars"]["UserId"]) is type(value)
    assert s.misfits == {"UserId": 1}


@pytest.mark.parametrize("value", [2**63 - 1, -2**63])
def test_the_int64_extremes_stay_in_their_column(value):
    record, s = shape({"UserId": value, "EventType": "click"})
    assert record["UserId"] == value and not s.misfits


def test_a_big_integer_in_a_known_layout_is_caught_each_time():
    s = shaper()
    identity = s.identity_values(BUNDLE)
    records = [s.shape({"UserId": user, "PageId": 7}, identity, row)
               for row, user in enumerate([1, 2**63, 3])]
    assert [r.get("UserId") for r in records] == [1, None, 3]
    assert records[1]["CustomVars"] == {"UserId": 2**63} and records[1]["PageId"] == 7
    assert s.misfits == {"UserId": 1} and len(s._plans) == 1


def test_numbers_beyond_a_double_and_wide_integers_leave_number_columns():
    record, s = shape({"EventDuration": Decimal("1E+400"), "PageDuration": WideInt(2**70),
                       "EventCumulativeLayoutShift": 0.25, "evt_total_real": 4})
    assert record["CustomVars"] == {"EventDuration": Decimal("1E+400"),
                                    "PageDuration": 2**70, "evt_total_real": 4}
    assert type(record["CustomVars"]["evt_total_real"]) is int
    assert record["EventCumulativeLayoutShift"] == 0.25
    assert s.misfits == {"EventDuration": 1, "PageDuration": 1}


@pytest.mark.parametrize("start", ["yesterday", "2026-13-01T00:00:00Z", 1767225600, ["x"]])
def test_unreadable_event_starts_are_emitted_and_counted(start):
    s = shaper()
    record = s.shape({"EventStart": start, "EventType": "click"}, s.identity_values(BUNDLE), 0)
    assert record["CustomVars"] == {"EventStart": start} and record["EventType"] == "click"
    assert s.unreadable_event_start == 1 and s.before_start_date == 0


def test_missing_or_null_event_start_is_not_unreadable():
    s = shaper()
    identity = s.identity_values(BUNDLE)
    s.shape({"EventType": "click"}, identity, 0)
    s.shape({"EventStart": None}, identity, 1)
    s.shape({"EventStart": "2026-01-02T00:00:00Z"}, identity, 2)
    assert s.unreadable_event_start == 0


def run_and_report(caplog, fields, events):
    s = shaper(fields)
    identity = s.identity_values(BUNDLE)
    for row, event in enumerate(events):
        s.shape(dict(event), identity, row)
    caplog.set_level(logging.INFO)
    s.report(logging.getLogger("tap_fullstory.test"))
    return [(r.levelname, r.getMessage()) for r in caplog.records]


EVENTS_TO_REPORT = [{"EventStart": "2026-01-01T00:00:00Z"}, {"EventStart": "soon"},
                    {"UserId": "x"}, {"UserId": "y"}, {"PageUrl": 7}]


def test_report_logs_what_was_not_emitted_as_it_came(caplog):
    assert run_and_report(caplog, ALL_FIELDS, EVENTS_TO_REPORT) == [
        ("INFO", "1 event(s) earlier than start_date were not emitted."),
        ("WARNING", "1 value(s) of EventStart did not fit its type and went to CustomVars."),
        ("WARNING", "1 value(s) of PageUrl did not fit its type and went to CustomVars."),
        ("WARNING", "2 value(s) of UserId did not fit its type and went to CustomVars."),
        ("WARNING", "1 event(s) had an EventStart that is not an RFC 3339 timestamp; they were "
                    "emitted, as start_date cannot be checked for them."),
    ]


def test_report_says_misfits_were_dropped_when_custom_vars_is_deselected(caplog):
    lines = run_and_report(caplog, ALL_FIELDS - {"CustomVars"}, EVENTS_TO_REPORT[2:])
    assert lines == [
        ("WARNING", "1 value(s) of PageUrl did not fit its type and were dropped, as "
                    "CustomVars is not selected."),
        ("WARNING", "2 value(s) of UserId did not fit its type and were dropped, as "
                    "CustomVars is not selected."),
    ]


def test_report_of_a_clean_run_says_nothing(caplog):
    assert run_and_report(caplog, ALL_FIELDS, [{"EventStart": "2026-01-02T00:00:00Z"}]) == []


def test_wide_values_reach_the_record_line_with_every_digit(tmp_path):
    path = tmp_path / "bundle.body"
    path.write_bytes(b'[{"UserId": 18446744073709551621, "SessionId": 9223372036854775808, '
                     b'"PageId": 5, "EventDuration": 1e400, "EventTargetText": "\\ud83d!", '
                     b'"evt_n_real": 4, "EventStart": "2026-01-02T00:00:00Z"}]')
    s, out = shaper(), io.BytesIO()
    writer = MessageWriter(out)
    for row, event in enumerate(iter_events(str(path), BUNDLE.id)):
        writer.write_record(s.shape(event, s.identity_values(BUNDLE), row))
    writer.flush()
    line = out.getvalue()
    assert b'"CustomVars":{"UserId":18446744073709551621,"SessionId":9223372036854775808,' \
           b'"EventDuration":1E+400,"evt_n_real":4}' in line
    record = json.loads(line)["record"]
    assert record["PageId"] == 5 and record["EventTargetText"] == "\ufffd!"
    assert s.misfits == {"UserId": 1, "SessionId": 1, "EventDuration": 1}


def test_a_key_of_the_wrong_type_keeps_its_column_converted():
    users = BY_NAME["users"].schema()
    shaper = RecordShaper(users, set(users["properties"]), "other_fields", keys=["id"])
    assert shaper.shape({"id": 7277135327093248123, "uid": "x"}) == {
        "id": "7277135327093248123", "uid": "x"}
    people = BY_NAME["individuals"].schema()
    shaper = RecordShaper(people, set(people["properties"]), keys=["IndvId"])
    assert shaper.shape({"IndvId": "5766471436111872123", "Uid": "u"}) == {
        "IndvId": 5766471436111872123, "Uid": "u"}
    assert shaper.shape({"IndvId": "not a number"}) == {"IndvId": "not a number"}
    assert shaper.misfits == {"IndvId": 2}
    # the same shape of row without a key declared goes to the catch-all, as any misfit does
    assert RecordShaper(people, set(people["properties"])).shape(
        {"IndvId": "5766471436111872123"}) == {"CustomVars": {"IndvId": "5766471436111872123"}}


@pytest.mark.parametrize("sent, kept", [
    ("5766471436111872123", 5766471436111872123), ("-9223372036854775808", -2**63),
    ("--5", "--5"), ("-", "-"), ("²", "²"), ("٣", "٣"), (" 5", " 5"), ("5\n", "5\n"),
    ("-0", "-0"), ("007", "007"), ("+5", "+5"), ("1e3", "1e3"), ("9" * 5000, "9" * 5000),
    ("9223372036854775808", "9223372036854775808"), ("", ""),
    (1.5, 1.5), (True, True), ([1], [1]), ({"a": 1}, {"a": 1}), (Decimal("5"), Decimal("5")),
])
def test_a_key_text_becomes_an_integer_only_when_it_is_exactly_one(sent, kept):
    people = BY_NAME["individuals"].schema()
    shaper = RecordShaper(people, set(people["properties"]), keys=["IndvId"])
    record = shaper.shape({"IndvId": sent})
    assert record == {"IndvId": kept} and type(record["IndvId"]) is type(kept)


@pytest.mark.parametrize("sent, kept", [
    (7277135327093248123, "7277135327093248123"), (2**64 - 1, "18446744073709551615"),
    (-2**63, "-9223372036854775808"), (10**5000, 10**5000), (WideInt(2**70), WideInt(2**70)),
    (True, True), (None, None),
], ids=["fits", "u64", "i64", "huge", "wide", "bool", "none"])
def test_a_key_number_becomes_text_only_when_it_fits_64_bits(sent, kept):
    users = BY_NAME["users"].schema()
    shaper = RecordShaper(users, set(users["properties"]), "other_fields", keys=["id"])
    record = shaper.shape({"id": sent})
    assert record == {"id": kept} and type(record["id"]) is type(kept)


ODD_VALUES = [10**5000, -10**5000, 2**64, WideInt(10**30), Decimal("1e400"), Decimal("NaN"),
              float("nan"), float("inf"), True, False, None, 0, -1, 1.5, "", "--5", "9" * 5000,
              "\ud800", "a\x00b", [], [1, [2, {"x": None}]], {}, {"a": {"b": [1]}},
              "2026-01-02T00:00:00Z", "2026-01-02T00:00:00+25:00", "9999-12-31T23:59:59-23:59",
              "0001-01-01T00:00:00+23:59", "2026-01-02T23:59:60Z"]
FIELD_OF_EACH_KIND = ["UserId", "EventDuration", "PageUrl", "PageStart", "EventStart",
                      "CustomVars", "ExportBundleRow", "ExportBundleStop", "evt_undeclared"]
KINDS = {"integer": int, "number": (int, float), "string": str, "object": dict}


def fits(value, prop):
    """True if `value` may sit in a column of schema `prop`."""
    if prop.get("format") == "date-time":
        return is_date_time(value)
    kinds = tuple(KINDS[kind] for kind in prop["type"] if kind in KINDS)
    ok_type = value is None or (isinstance(value, kinds) and type(value) is not bool
                                and type(value) is not WideInt)
    if isinstance(value, int) and prop["type"] == ["null", "integer"]:
        ok_type = ok_type and -2**63 <= value < 2**63
    return ok_type


@pytest.mark.parametrize("field", FIELD_OF_EACH_KIND)
@pytest.mark.parametrize("value", ODD_VALUES, ids=[f"v{i}" for i in range(len(ODD_VALUES))])
@pytest.mark.parametrize("finishes_unit", [True, False], ids=["finishing", "straddling"])
def test_any_value_in_any_field_is_shaped_without_raising(field, value, finishes_unit):
    s = RecordShaper(SCHEMA, ALL_FIELDS, "CustomVars", START, "EventStart", EVENT_FIELDS,
                     datetime(2027, 1, 1, tzinfo=timezone.utc), keys=["UserId"])
    s.finishes_unit = finishes_unit
    identity = s.identity_values(BUNDLE)
    for event in ({field: value}, {"EventStart": "2026-06-01T00:00:00Z", field: value}):
        record = s.shape(dict(event), identity, 4)
        if record is None:
            continue
        for key, got in record.items():
            if key in SCHEMA["properties"] and key not in ("UserId", "CustomVars"):
                assert fits(got, SCHEMA["properties"][key]), (key, got)  # UserId: a key


def test_fits_refuses_what_a_column_cannot_hold():
    integer, stamp = SCHEMA["properties"]["UserId"], SCHEMA["properties"]["PageStart"]
    assert fits(5, integer) and fits(None, integer) and fits("2026-01-02T00:00:00Z", stamp)
    assert not any([fits(True, integer), fits(2**63, integer), fits(WideInt(2**70), integer),
                    fits("5", integer), fits("tomorrow", stamp)])


@pytest.mark.parametrize("layout", [{}, {"PageId": 5}, {"EventStart": "x"}],
                         ids=["alone", "with-an-int", "value-by-value"])
def test_a_bool_is_no_integer_or_number_though_python_says_it_is(layout):
    record, s = shape({**layout, "SessionId": True, "EventDuration": False})
    assert record["CustomVars"]["SessionId"] is True and "SessionId" not in record
    assert record["CustomVars"]["EventDuration"] is False and "EventDuration" not in record
    assert s.misfits["SessionId"] == s.misfits["EventDuration"] == 1
