import io
import json
from decimal import Decimal

import pytest

from tap_fullstory.decode import WideInt
from tap_fullstory.emit import CHUNK_BYTES, MessageWriter


def test_records_states_and_schema_are_single_json_lines_in_order():
    out = io.BytesIO()
    writer = MessageWriter(out)
    writer.write_schema("events", {"type": "object"}, [], ["ExportBundleStop"])
    writer.start_records("events", time_extracted="2026-01-02T00:00:00.000000Z")
    writer.write_record({"UserId": 2**63 - 1, "Text": "👋 \"q\"\n"})
    assert out.getvalue().count(b"\n") == 1  # records wait for a STATE or a full chunk
    writer.write_state({"bookmarks": {}})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"type": "SCHEMA", "stream": "events", "schema": {"type": "object"},
         "key_properties": [], "bookmark_properties": ["ExportBundleStop"]},
        {"type": "RECORD", "stream": "events",
         "record": {"UserId": 2**63 - 1, "Text": "👋 \"q\"\n"},
         "time_extracted": "2026-01-02T00:00:00.000000Z"},
        {"type": "STATE", "value": {"bookmarks": {}}},
    ]


def test_buffer_is_written_in_whole_lines():
    out = io.BytesIO()
    writer = MessageWriter(out)
    for i in range(CHUNK_BYTES // 40):
        writer.write_record({"n": i, "pad": "x" * 20})
    assert out.getvalue() and out.getvalue().endswith(b"\n")


class ShortWrites(io.RawIOBase):
    """A stream that takes at most 7 bytes per write(), as a raw pipe may."""

    def __init__(self):
        self.data, self.calls = bytearray(), 0

    def writable(self):
        return True

    def write(self, chunk):
        self.calls += 1
        taken = bytes(chunk[:7])
        self.data += taken
        return len(taken)


def test_short_writes_are_retried_until_every_line_is_whole():
    out = ShortWrites()
    writer = MessageWriter(out)
    records = [{"n": i, "text": "é👋 \"q\"\n" * (i % 5)} for i in range(200)]
    for record in records:
        writer.write_record(record)
    writer.write_state({"bookmarks": {"events": {"rows_done": 200}}})
    lines = bytes(out.data).split(b"\n")
    assert lines[-1] == b""  # ends on a whole line
    messages = [json.loads(line) for line in lines[:-1]]
    assert [m["record"] for m in messages[:-1]] == records
    assert messages[-1] == {"type": "STATE", "value": {"bookmarks": {"events": {"rows_done": 200}}}}
    assert out.calls > len(out.data) // 7  # the short counts were really met
    assert writer.last_state == {"bookmarks": {"events": {"rows_done": 200}}}


def test_numbers_orjson_cannot_write_keep_every_digit():
    out = io.BytesIO()
    writer = MessageWriter(out)
    huge = WideInt(int(Decimal("7" * 5000)))  # more digits than int() reads from text
    writer.write_record({"a": WideInt(18446744073709551621), "b": Decimal("1E+400"),
                         "c": {"d": [WideInt(-9223372036854775809), 2**64 - 1]}, "e": huge,
                         "f": 6.75, "g": 4})
    writer.write_record({"plain": 2**63, "wider": [-2**64, {"x": 2**64}]})  # not from decode
    writer.flush()
    first, second = out.getvalue().splitlines()
    assert b'"record":{"plain":9223372036854775808,"wider":[-18446744073709551616,' \
           b'{"x":18446744073709551616}]}' in second
    assert b'"a":18446744073709551621,"b":1E+400,"c":{"d":[-9223372036854775809,' \
           b'18446744073709551615]},"e":' + b"7" * 5000 + b',"f":6.75,"g":4}' in first
    assert json.loads(first, parse_float=Decimal, parse_int=Decimal)["record"]["b"] == \
        Decimal("1E+400")


def test_values_nothing_can_write_still_fail_loudly():
    writer = MessageWriter(io.BytesIO())
    with pytest.raises(TypeError):
        writer.write_record({"a": object()})
    with pytest.raises(TypeError):
        writer.write_record({"a": Decimal("NaN")})
