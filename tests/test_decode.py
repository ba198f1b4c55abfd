import gzip
import io
import json
import tracemalloc
from decimal import Decimal

import orjson
import pytest

from tap_fullstory import decode
from tap_fullstory.decode import WideInt, iter_events
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


# Awkward events as raw JSON text (json.dumps cannot write 1e400 or keep a lone
# surrogate as written), each with the exact value every path must give.
HUGE_DIGITS = "7" * 5000  # more digits than Python's int() reads from text
AWKWARD_EXACT = [
    (r'{"a": "x},{y", "n": 1}', {"a": "x},{y", "n": 1}),
    (r'{"nested": {"deep": [1, {"y": "},{"}]}, "list": [{"a": 1}, {"b": 2}]}',
     {"nested": {"deep": [1, {"y": "},{"}]}, "list": [{"a": 1}, {"b": 2}]}),
    (r'{"u": "é 👋 \u00e9\n\"q\" \/ \\"}', {"u": 'é 👋 é\n"q" / \\'}),
    (r'{"big": 18446744073709551621, "neg": -9223372036854775809}',
     {"big": WideInt(18446744073709551621), "neg": WideInt(-9223372036854775809)}),
    (r'{"u64": 18446744073709551615, "i63": 9223372036854775808, "max": 9223372036854775807}',
     {"u64": 18446744073709551615, "i63": 9223372036854775808, "max": 9223372036854775807}),
    (r'{"min": -9223372036854775808, "wide": [100000000000000000000000000000, -1]}',
     {"min": -9223372036854775808, "wide": [WideInt(10**29), -1]}),
    ('{"huge": ' + HUGE_DIGITS + "}", {"huge": WideInt(int(Decimal(HUGE_DIGITS)))}),
    (r'{"f": 6.75, "g": 1e-7, "h": 1.0, "real": 4, "z": -0.0, "tiny": 1e-400}',
     {"f": 6.75, "g": 1e-7, "h": 1.0, "real": 4, "z": -0.0, "tiny": 0.0}),
    (r'{"inf": 1e400, "ninf": -1E+400, "ok": 1.5e300}',
     {"inf": Decimal("1e400"), "ninf": Decimal("-1E+400"), "ok": 1.5e300}),
    (r'{"high": "a\ud83db", "low": "\udc4b", "pair": "\ud83d\udc4b"}',
     {"high": "a\ufffdb", "low": "\ufffd", "pair": "👋"}),
    (r'{"escaped": "\\ud83d", "then_lone": "\\\ud83d", "high_high": "\ud83d\ud83d\udc4b"}',
     {"escaped": "\\ud83d", "then_lone": "\\\ufffd", "high_high": "\ufffd👋"}),
    (r'{"split": "\\ud83d\udc4b", "\ud800key": 1}', {"split": "\\ud83d\ufffd", "\ufffdkey": 1}),
    (r'{"s": "\ud83d", "list": [{"a": 1}, {"b": "},{"}], "t": 12345678901234567890123}',
     {"s": "\ufffd", "list": [{"a": 1}, {"b": "},{"}], "t": WideInt(12345678901234567890123)}),
    (r'{"digits_in_text": "order 123456789012345678901234567890", "n": 2.5}',
     {"digits_in_text": "order 123456789012345678901234567890", "n": 2.5}),
    (r'{"dashes": "--------------------", "float_big": 1e19}',
     {"dashes": "--------------------", "float_big": 1e19}),
]
LONE_SURROGATES = 7  # in AWKWARD_EXACT
AWKWARD_WANT = [value for _, value in AWKWARD_EXACT] + EVENTS


def assert_same(got, want):
    """Equal, with the same types all the way down (6.75 is not 6.75 as a Decimal)."""
    assert type(got) is type(want), (got, want)
    if type(want) is dict:
        assert list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    elif type(want) is list:
        assert len(got) == len(want)
        for item, wanted in zip(got, want, strict=True):
            assert_same(item, wanted)
    elif isinstance(want, int):
        assert got == want
    else:
        assert repr(got) == repr(want)  # tells -0.0 from 0.0


def awkward_bodies():
    texts = [text for text, _ in AWKWARD_EXACT] + [json.dumps(EVENTS[0])]
    yield "compact", "[" + ",".join(texts) + "]", AWKWARD_WANT
    yield "one-per-line", "[\n" + ",\n".join(texts) + "\n]\n", AWKWARD_WANT
    yield "spaced", "[ " + " ,\n  ".join(texts) + " ]", AWKWARD_WANT
    for last in (3, 12):  # a wide integer, a surrogate with cuts inside: in the last event
        order = [i for i in range(len(AWKWARD_EXACT)) if i != last] + [last]
        yield f"awkward-last-{last}", "[" + ", ".join(AWKWARD_EXACT[i][0] for i in order) + \
            "]\n", [AWKWARD_EXACT[i][1] for i in order]


def fast_path(path):
    """The splitter alone: its events, and None if it read the whole body itself."""
    events, tally = [], decode._Tally()
    with decode.open_body(path) as body:
        split = decode._Splitter(body, tally).events()
        while True:
            try:
                events.append(next(split))
            except StopIteration as stop:
                return events, stop.value, tally.lone_surrogates


def ijson_path(path):
    tally = decode._Tally()
    return list(decode._parsed_events(path, "Bundle 1", tally)), tally.lone_surrogates


@pytest.mark.parametrize("read_bytes", [1 << 18, 61], ids=["big-blocks", "tiny-blocks"])
@pytest.mark.parametrize("name, text, want", list(awkward_bodies()),
                         ids=[n for n, _, _ in awkward_bodies()])
def test_fast_path_and_fallback_agree_on_every_value(tmp_path, monkeypatch, read_bytes,
                                                      name, text, want):
    monkeypatch.setattr(decode, "READ_BYTES", read_bytes)
    path = tmp_path / "bundle.json.gz"
    path.write_bytes(gzip.compress(text.encode()))
    fast, stopped_at, fast_lone = fast_path(str(path))
    slow, slow_lone = ijson_path(str(path))
    assert stopped_at is None  # the splitter read it all: no event sent it to ijson
    assert_same(fast, want)
    assert_same(slow, want)
    assert fast_lone == slow_lone == LONE_SURROGATES


def test_a_piece_too_long_to_be_an_event_hands_over_to_ijson_exactly(tmp_path, monkeypatch):
    # The 5,009-byte event fits the cap, but the splitter's buffer (it and a block) does not.
    monkeypatch.setattr(decode, "READ_BYTES", 1024)
    monkeypatch.setattr(decode, "MAX_EVENT_BYTES", 5200)
    path = tmp_path / "bundle.body"
    path.write_bytes(next(awkward_bodies())[1].encode())
    assert fast_path(str(path))[1] == 6  # handed over at the long event
    assert_same(list(iter_events(str(path), 1)), AWKWARD_WANT)


def test_ndjson_follows_the_same_rules(tmp_path):
    path = tmp_path / "export.ndjson.gz"
    lines = "\n".join(text for text, _ in AWKWARD_EXACT) + "\n"
    path.write_bytes(gzip.compress(lines.encode()))
    got = list(iter_events(str(path), 1, layout="ndjson", what="Window 1"))
    assert_same(got, [value for _, value in AWKWARD_EXACT])


def test_lone_surrogates_are_counted_in_one_warning_per_body(tmp_path, caplog):
    path = tmp_path / "bundle.body"
    path.write_bytes(b'[{"a": "\\ud83d"}, {"b": "ok"}, {"c": "\\udc00 \\udc01"}]')
    events = list(iter_events(str(path), 123))
    assert events == [{"a": "\ufffd"}, {"b": "ok"}, {"c": "\ufffd \ufffd"}]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["Bundle 123: 3 lone surrogate escape(s) in text replaced by U+FFFD."]


def test_a_body_without_lone_surrogates_warns_nothing(tmp_path, caplog):
    path = tmp_path / "bundle.body"
    path.write_bytes(b'[{"a": "\\ud83d\\udc4b \\\\ud83d"}]')
    assert list(iter_events(str(path), 1)) == [{"a": "👋 \\ud83d"}]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_the_fallback_counts_surrogates_once_after_taking_over(tmp_path, caplog):
    path = tmp_path / "bundle.body"
    path.write_bytes(b'[{"a": "\\ud83d"}, {"b": 1}, 7]')
    with pytest.raises(BundleFormatError, match="row 2 is a int"):
        list(iter_events(str(path), 5))
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "Bundle 5: 1 lone surrogate escape(s) in text replaced by U+FFFD."]


def normal_events(count):
    return [{"UserId": 2**62 + i, "EventStart": "2026-01-01T00:00:00.000Z",
             "EventTargetText": f"button {i}", "EventDuration": i / 8} for i in range(count)]


def counted(sizes, function):
    """`function`, noting in `sizes` how long the text is that it is given."""
    def wrapper(data, *rest):
        sizes.append(len(data))
        return function(data, *rest)
    return wrapper


UNUSUAL = {
    "lone surrogate": (r'{"EventTargetText": "\ud83d", "n": 1}', {"EventTargetText": "\ufffd",
                                                                  "n": 1}),
    "int beyond 64 bits": (r'{"UserId": 18446744073709551621}',
                           {"UserId": WideInt(18446744073709551621)}),
    "1e400": (r'{"EventDuration": 1e400}', {"EventDuration": Decimal("1e400")}),
    "surrogate and cuts inside it": (r'{"a": "\ud83d", "b": [{"c": 1}, {"d": "},{"}]}',
                                     {"a": "\ufffd", "b": [{"c": 1}, {"d": "},{"}]}),
}


@pytest.mark.parametrize("kind", list(UNUSUAL))
def test_one_unusual_event_is_read_exactly_alone_and_the_fast_path_goes_on(
        tmp_path, monkeypatch, kind):
    monkeypatch.setattr(decode, "READ_BYTES", 4096)  # many blocks after the unusual event
    text, value = UNUSUAL[kind]
    before, after = normal_events(3), normal_events(2000)
    body = ("[" + ",".join([json.dumps(e) for e in before] + [text] +
                           [json.dumps(e) for e in after]) + "]").encode()
    path = tmp_path / "bundle.json.gz"
    path.write_bytes(gzip.compress(body))
    exact_reads, orjson_bytes = [], []
    monkeypatch.setattr(decode, "exact_value", counted(exact_reads, decode.exact_value))
    monkeypatch.setattr(orjson, "loads", counted(orjson_bytes, orjson.loads))
    monkeypatch.setattr(decode, "_parsed_events", None)  # ijson must not be needed
    assert list(iter_events(str(path), 1)) == before + [value] + after
    assert len(exact_reads) <= 2 and sum(exact_reads) < 3 * 4096
    assert sum(orjson_bytes) < 1.1 * len(body)  # no piece is parsed again and again


def test_cuts_inside_one_long_value_are_not_tried_again_and_again(tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "READ_BYTES", 4096)
    event = {"items": [{"i": i} for i in range(5000)], "text": "},{" * 500}
    body = json.dumps([event] + normal_events(10)).encode()
    path = tmp_path / "bundle.body"
    path.write_bytes(body)
    orjson_bytes, exact_bytes = [], []
    monkeypatch.setattr(orjson, "loads", counted(orjson_bytes, orjson.loads))
    monkeypatch.setattr(decode, "exact_value", counted(exact_bytes, decode.exact_value))
    assert list(iter_events(str(path), 1)) == [event] + normal_events(10)
    assert sum(orjson_bytes) + sum(exact_bytes) < 8 * len(body)


@pytest.mark.parametrize("body, message", [
    (b'[{"a": "\\ud83d", "b": 1}, {"a": 2', "Bundle 5 ends before its JSON array does"),
    (b'[{"a": 1e400}, {"a": tru}]', "Bundle 5 is not valid JSON"),
    (b'[{"a": "\xed\xa0\x80"}, {"b": 1}]', "Bundle 5 is not valid JSON \\(its text is not UTF-8"),
    (b'[{"a": 1}, {"a": NaN}]', "Bundle 5 is not valid JSON"),
    (b'[{"a": 1}, {"a": 1e400}x]', "Bundle 5 is not valid JSON"),
    (b'[{"a": 1}, {"a": "\\ud83d", "b": [{"c": 1}, {"d": 2}]}, ]', "Bundle 5 is not valid JSON"),
    (b'[{"a": "\\ud83d"}, 7]', "Bundle 5 row 1 is a int, not an event object"),
])
def test_bad_bodies_with_unusual_events_raise_one_line_errors(tmp_path, body, message):
    path = tmp_path / "bundle.body"
    path.write_bytes(body)
    with pytest.raises(BundleFormatError, match=message) as raised:
        list(iter_events(str(path), 5))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("body", [b'{"a": NaN}\n', b'{"a": "x"} {"b": 1}\n', b'{"a": tru}\n'])
def test_ndjson_lines_the_exact_reader_refuses_are_named(tmp_path, body):
    path = tmp_path / "export.ndjson"
    path.write_bytes(b'{"a": "\\ud83d"}\n' + body)
    with pytest.raises(BundleFormatError, match="Window 1 line 2 is not valid JSON\\."):
        list(iter_events(str(path), 1, layout="ndjson", what="Window 1"))


def test_mending_keeps_the_length_and_minds_escaped_backslashes():
    text = rb'"\ud83d \\ud83d \\\ud83d \ud83d\udc4b \udc4b\ud83d \\\\\udfff"'
    mended, lone = decode.mend_surrogates(text)
    assert mended == rb'"\ufffd \\ud83d \\\ufffd \ud83d\udc4b \ufffd\ufffd \\\\\ufffd"'
    assert lone == 5 and len(mended) == len(text)


def test_the_mending_reader_never_cuts_an_escape(monkeypatch):
    monkeypatch.setattr(decode, "READ_BYTES", 3)
    text = rb'["\ud83d\udc4b", "\\\ud83d", "abc\udc00", "\\\\ud83d"]' * 7
    reader = decode._MendedReader(io.BytesIO(text), decode._Tally())
    assert reader.read(0) == b""
    chunks = iter(lambda: reader.read(65536), b"")
    assert b"".join(chunks) == decode.mend_surrogates(text)[0]


def test_a_value_read_on_past_its_cut_counts_only_its_own_surrogates(tmp_path, caplog):
    path = tmp_path / "bundle.body"
    path.write_bytes(b'[{"a": "\\ud83d", "b": [{"c": 1}, {"d": 2}]}, {"e": "\\udc00"}, {"f": 1}]')
    assert list(iter_events(str(path), 3)) == [
        {"a": "\ufffd", "b": [{"c": 1}, {"d": 2}]}, {"e": "\ufffd"}, {"f": 1}]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "Bundle 3: 2 lone surrogate escape(s) in text replaced by U+FFFD."]


def test_a_gzip_file_sent_gzip_encoded_as_well_is_inflated_twice(tmp_path):
    path = tmp_path / "bundle.body"
    path.write_bytes(gzip.compress(gzip.compress(json.dumps(EVENTS * 2).encode())))
    assert list(iter_events(str(path), 1)) == EVENTS * 2


# The splitter's states, one at a time: first block, fast piece, joined piece, exact piece,
# refill and tail.
def split(body):
    """The splitter alone over `body`: its events, what it returned, and the splitter."""
    splitter = decode._Splitter(io.BytesIO(body), decode._Tally())
    events, run = [], splitter.events()
    while True:
        try:
            events.append(next(run))
        except StopIteration as stop:
            return events, stop.value, splitter


@pytest.mark.parametrize("body, events, returned", [
    (b'{"a": 1}', [], 0), (b'[1, {"a": 1}]', [], 0), (b"[]", [], 0), (b"", [], 0),
    (b' \n[ \n {"a": 1} ]', [{"a": 1}], None),
])
def test_the_first_block_must_open_an_array_of_objects(body, events, returned):
    assert split(body)[:2] == (events, returned)


def refused(*_):
    raise AssertionError("exact_value was called")


def test_a_fast_piece_is_read_by_orjson_alone(monkeypatch):
    monkeypatch.setattr(decode, "exact_value", refused)
    assert split(b'[{"a": 1}, {"b": [2]},\n{"c": "d"}]')[:2] == (
        [{"a": 1}, {"b": [2]}, {"c": "d"}], None)


def test_a_joined_piece_takes_in_the_cuts_inside_its_strings(monkeypatch):
    monkeypatch.setattr(decode, "exact_value", refused)
    events, returned, splitter = split(b'[{"a": "x},{y},{z"}, {"b": 1}]')
    assert (events, returned) == ([{"a": "x},{y},{z"}, {"b": 1}], None)
    assert splitter._joins == 0  # reset by the piece after it


def test_a_piece_joined_too_often_is_read_exactly_once_it_has_doubled(monkeypatch):
    reads = []
    monkeypatch.setattr(decode, "exact_value", counted(reads, decode.exact_value))
    event = {"a": "},{" * (decode.MAX_JOINS + 5)}
    events = [event] + normal_events(5)
    assert split(json.dumps(events).encode())[:2] == (events, None)
    assert len(reads) == 1


def test_an_exact_piece_ends_at_its_cut_and_the_fast_path_goes_on(monkeypatch):
    reads = []
    monkeypatch.setattr(decode, "exact_value", counted(reads, decode.exact_value))
    events, returned, splitter = split(b'[{"a": "\\ud83d"}, {"b": 1}, {"c": 2}]')
    assert (events, returned) == ([{"a": "\ufffd"}, {"b": 1}, {"c": 2}], None)
    assert reads == [len(b'{"a": "\\ud83d"}')] and not splitter._exact


def test_an_exact_piece_that_is_not_an_object_or_not_json_hands_over():
    assert split(b'[{"a": 1}, {"a": NaN}, {"b": 2}]')[:2] == ([{"a": 1}], 1)


def test_a_refill_keeps_the_piece_in_hand_until_it_is_too_long(monkeypatch):
    monkeypatch.setattr(decode, "READ_BYTES", 8)
    monkeypatch.setattr(decode, "MAX_EVENT_BYTES", 60)
    body = b'[{"a": 1}, {"b": "' + b"x" * 30 + b'"}, {"c": "' + b"y" * 80 + b'"}, {"d": 4}]'
    assert split(body)[:2] == ([{"a": 1}, {"b": "x" * 30}], 2)


@pytest.mark.parametrize("body, events, returned", [
    (b'[{"a": 1}, {"b": 2}]  \n', [{"a": 1}, {"b": 2}], None),
    (b'[{"a": "\\ud83d"}]', [{"a": "\ufffd"}], None),
    (b'[{"a": 1}, {"b": 2}', [{"a": 1}], 1),
    (b'[{"a": 1}, {"b": 2}] x', [{"a": 1}], 1),
    (b'[{"a": 1}, {"b": 2}}]', [{"a": 1}], 1),
])
def test_the_tail_is_the_last_event_before_the_closing_bracket(body, events, returned):
    assert split(body)[:2] == (events, returned)


def nested(depth, inner=b"1"):
    return b'{"deep": ' + b"[" * (depth - 1) + inner + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("event", [nested(1025), nested(5000), nested(200_000),
                                   nested(3000, b'"\\ud83d"'), nested(3000, b"1e400")],
                         ids=["1025", "5000", "200000", "surrogate", "1e400"])
def test_an_event_nested_too_deep_is_named_by_its_row(tmp_path, compress, event):
    body = b'[{"a": 1}, ' + event + b', {"b": 2}]'
    path = tmp_path / "bundle.body"
    path.write_bytes(gzip.compress(body) if compress else body)
    seen = []
    with pytest.raises(BundleFormatError) as raised:
        seen.extend(iter_events(str(path), 42))
    assert str(raised.value) == "Bundle 42 row 1 is nested deeper than 1024 levels."
    assert seen == [{"a": 1}]


@pytest.mark.parametrize("depth", [1000, 1024])
def test_an_event_as_deep_as_allowed_is_read_whatever_the_path(tmp_path, depth):
    path = tmp_path / "bundle.body"
    path.write_bytes(b"[" + nested(depth, b'"\\ud83d"') + b"]")  # the exact reader recurses
    events = list(iter_events(str(path), 1))
    inner = events[0]["deep"]
    for _ in range(depth - 2):
        inner = inner[0]
    assert inner == ["\ufffd"]


@pytest.mark.parametrize("line, message", [
    (nested(1025), "Window 1 line 2 is nested deeper than 1024 levels."),
    (nested(100_000, b'"\\ud83d"'), "Window 1 line 2 is nested deeper than 1024 levels."),
    (b'{"a": "\xff"}', "Window 1 line 2 is not valid JSON (its text is not UTF-8)."),
    (b"[" * 3000 + b"1", "Window 1 line 2 is nested deeper than 1024 levels."),
    (b"[" * 500 + b"1", "Window 1 line 2 is not valid JSON."),
])
def test_ndjson_lines_too_deep_or_not_utf8_are_named(tmp_path, line, message):
    path = tmp_path / "export.ndjson"
    path.write_bytes(b'{"a": 1}\n' + line + b'\n{"b": 2}\n')
    with pytest.raises(BundleFormatError) as raised:
        list(iter_events(str(path), 1, layout="ndjson", what="Window 1"))
    assert str(raised.value) == message


def test_an_ndjson_line_deep_but_allowed_is_read(tmp_path):
    path = tmp_path / "export.ndjson"
    path.write_bytes(nested(1000, b'"\\ud83d"') + b"\n")
    (event,) = iter_events(str(path), 1, layout="ndjson")
    inner = event["deep"]
    for _ in range(998):
        inner = inner[0]
    assert inner == ["\ufffd"]


class Endless(io.RawIOBase):
    """A body that never ends: `head`, then `fill` bytes for ever (a bomb, inflated)."""

    def __init__(self, head, fill=b"x"):
        self._head, self._fill, self._at = head, fill, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, position, whence=0):
        self._at = position
        return position

    def readinto(self, buffer):
        data = self._head[self._at:self._at + len(buffer)]
        data += self._fill * (len(buffer) - len(data))
        buffer[:len(data)] = data
        self._at += len(data)
        return len(data)


@pytest.mark.parametrize("layout, head, message", [
    ("ndjson", b'{"a": 1}\n{"b": "', "Bundle 7 line 2 is longer than 1 MiB"),
    ("ndjson", b"", "Bundle 7 line 1 is longer than 1 MiB"),
    ("array", b'[{"a": 1}, {"b": "', "Bundle 7 row 1 is longer than 1 MiB"),
    ("array", b'[{"a": 1}, {"b": ' + b"[" * 500, "Bundle 7 row 1 is longer than 1 MiB"),
    ("array", b'[{"a": 1}, {"b": "\\\\', "Bundle 7 row 1 is longer than 1 MiB"),
    ("array", b'[{"a": 1}, {"b": "\\u12', "Bundle 7 row 1 is longer than 1 MiB"),
    ("array", b'[{"a": 1}, {"b": 1', "Bundle 7 row 1 is longer than 1 MiB"),
])
def test_a_body_that_never_ends_stops_at_the_cap_in_bounded_memory(monkeypatch, layout, head,
                                                                   message):
    monkeypatch.setattr(decode, "MAX_EVENT_BYTES", 1 << 20)
    fill = {b"1": b"1", b"2": b"1", b"[": b" ", b"\\": b"\\"}.get(head[-1:], b"x")
    source = lambda: io.BufferedReader(Endless(head, fill))  # noqa: E731
    tracemalloc.start()
    try:
        with pytest.raises(BundleFormatError, match=message) as raised:
            list(iter_events(source, 7, layout=layout))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "(the most one event may be)." in str(raised.value)
    assert peak < 8 << 20


@pytest.mark.parametrize("layout", ["ndjson", "array"])
def test_a_gzip_bomb_without_a_newline_is_one_line(tmp_path, monkeypatch, layout):
    monkeypatch.setattr(decode, "MAX_EVENT_BYTES", 1 << 20)
    path = tmp_path / "bomb.json.gz"
    head = b'[{"a": "' if layout == "array" else b'{"a": "'
    fill = b"x" if layout == "array" else b"\0"  # NUL bytes: ijson would refuse them at once
    path.write_bytes(gzip.compress(head + fill * (32 << 20)))
    unit = "row 0" if layout == "array" else "line 1"
    with pytest.raises(BundleFormatError, match=f"Bundle 3 {unit} is longer than 1 MiB"):
        list(iter_events(str(path), 3, layout=layout))


@pytest.mark.parametrize("cut", [1000, 1001, 5000])
def test_an_ndjson_line_longer_than_the_cap_is_named_whatever_the_blocks(tmp_path,
                                                                         monkeypatch, cut):
    monkeypatch.setattr(decode, "MAX_EVENT_BYTES", 1000)
    line = b'{"a": "' + b"x" * (cut - 9) + b'"}'  # `cut` bytes long
    path = tmp_path / "export.ndjson"
    path.write_bytes(b'{"b": 1}\n' + line + b"\n")
    if cut <= 1000:
        assert len(list(iter_events(str(path), 1, layout="ndjson"))) == 2
        return
    with pytest.raises(BundleFormatError,
                       match="^Bundle 1 line 2 is longer than 1000 bytes \\(the most one"):
        list(iter_events(str(path), 1, layout="ndjson"))


@pytest.mark.parametrize("body, message", [
    (b'[{"a": 1}, {"a": 2}, {"a": 3} x]',
     "Bundle 5 is not valid JSON after row 2 (lexical error: invalid char in json text.)."),
    (b'[{"a": 1}, {"a": "\xff"}]', "Bundle 5 is not valid JSON after row 0 (lexical error: "
                                  "invalid bytes in UTF8 string.)."),
    (b'[{"a": "\xed\xa0\x80"}]', "Bundle 5 is not valid JSON (its text is not UTF-8)."),
])
def test_the_fallback_says_after_which_row_the_fault_is(tmp_path, body, message):
    path = tmp_path / "bundle.body"
    path.write_bytes(body)
    with pytest.raises(BundleFormatError) as raised:
        list(iter_events(str(path), 5))
    assert str(raised.value) == message
