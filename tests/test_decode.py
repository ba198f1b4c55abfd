import gzip
import json

import pytest

from tap_fullstory.decode import iter_events
from tap_fullstory.errors import BundleFormatError

EVENTS = [{"UserId": 9007199254740993, "EventStart": "2026-01-01T00:00:00.123Z",
           "EventTargetText": 'He said "hi"\nthen 👋', "EventDuration": 6.75,
           "evt_n_real": 4, "user_tags_strs": ["a", "ü"], "PageName": ""}]


def layouts():
    yield "compact", json.dumps(EVENTS * 3, separators=(",", ":"))
    yield "one-per-line", "[\n" + ",\n".join(json.dumps(e) for e in EVENTS * 3) + "\n]\n"
    yield "pretty", json.dumps(EVENTS * 3, indent=4, ensure_ascii=False)
    yield "bom-and-space", "\ufeff  \n" + json.dumps(EVENTS * 3)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name, text", list(layouts()), ids=[n for n, _ in layouts()])
def test_every_layout_decodes_to_the_same_exact_events(tmp_path, compress, name, text):
    raw = text.encode("utf-8")
    path = tmp_path / "bundle.body"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    events = list(iter_events(str(path), 1))
    assert events == EVENTS * 3
    assert type(events[0]["UserId"]) is int and type(events[0]["evt_n_real"]) is int
    assert type(events[0]["EventDuration"]) is float


def test_empty_array(tmp_path):
    path = tmp_path / "bundle.body"
    path.write_bytes(gzip.compress(b"[]"))
    assert list(iter_events(str(path), 1)) == []


@pytest.mark.parametrize("body, message", [
    (b"", "Bundle 5 is not a JSON array of events \\(its body is empty\\)"),
    (b'{"exports": []}', "Bundle 5 is not a JSON array of events \\(its body starts with"),
    (b'[{"a": 1}, 7]', "Bundle 5 row 1 is a int, not an event object"),
    (b'[{"a": 1}, {"a": 2', "Bundle 5 ends before its JSON array does"),
    (b'[{"a": 1}] trailing', "Bundle 5 is not valid JSON"),
    (gzip.compress(b'[{"a": 1}, {"a": 2}]')[:-12], "Bundle 5 is a broken gzip file"),
])
def test_bad_bodies_raise_one_line_errors(tmp_path, body, message):
    path = tmp_path / "bundle.body"
    path.write_bytes(body)
    with pytest.raises(BundleFormatError, match=message) as raised:
        list(iter_events(str(path), 5))
    assert "\n" not in str(raised.value)


AWKWARD = [
    {"EventTargetText": 'a "},{" inside a string', "n": 1},
    {"nested": {"deep": {"x": [1, {"y": "},\n{"}]}}, "EventTargetText": "}, {"},
    {"list_of_objects": [{"a": 1}, {"b": 2}], "after": "x\\"},
    {"unicode": "é 👋 \u2028", "escaped_quote": "\"},{\""},
]


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "pretty"])
def test_boundaries_inside_strings_and_nested_values_are_not_cuts(tmp_path, indent):
    path = tmp_path / "bundle.body"
    path.write_bytes(gzip.compress(json.dumps(AWKWARD * 50, indent=indent).encode()))
    assert list(iter_events(str(path), 1)) == AWKWARD * 50


def test_events_split_across_read_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr("tap_fullstory.decode.READ_BYTES", 37)
    path = tmp_path / "bundle.body"
    path.write_bytes(json.dumps(EVENTS * 20 + AWKWARD).encode())
    assert list(iter_events(str(path), 1)) == EVENTS * 20 + AWKWARD


def test_a_bad_item_midway_is_named_after_the_good_rows(tmp_path):
    path = tmp_path / "bundle.body"
    path.write_bytes(b'[{"a": 1}, {"a": 2}, 7, {"a": 3}]')
    seen = []
    with pytest.raises(BundleFormatError, match="Bundle 9 row 2 is a int"):
        for event in iter_events(str(path), 9):
            seen.append(event)
    assert seen == [{"a": 1}, {"a": 2}]


def test_ndjson_layout_reads_one_event_per_line(tmp_path):
    path = tmp_path / "export.ndjson.gz"
    lines = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS * 3 + AWKWARD)
    path.write_bytes(gzip.compress(lines + b"\n"))
    assert list(iter_events(str(path), 1, layout="ndjson")) == EVENTS * 3 + AWKWARD


@pytest.mark.parametrize("body, message", [
    (b'{"a": 1}\n[1]\n', "Window 1 line 2 is a list, not an event object."),
    (b'{"a": 1}\n{"a": ', "Window 1 line 2 is not valid JSON \\(it ends early\\)."),
])
def test_bad_ndjson_lines_are_named(tmp_path, body, message):
    path = tmp_path / "export.ndjson"
    path.write_bytes(body)
    with pytest.raises(BundleFormatError, match=message):
        list(iter_events(str(path), 1, layout="ndjson", what="Window 1"))
