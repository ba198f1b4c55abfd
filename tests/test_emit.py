import io
import json

from tap_fullstory.emit import CHUNK_BYTES, MessageWriter


def test_records_states_and_schema_are_single_json_lines_in_order():
    out = io.BytesIO()
    writer = MessageWriter(out)
    writer.write_schema("events", {"type": "object"}, [], ["ExportBundleStop"])
    writer.set_time_extracted("2026-01-02T00:00:00.000000Z")
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
