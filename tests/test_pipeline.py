"""The tap piped into real Singer programs, each in its own virtualenv."""

import csv
import json
import subprocess

from conftest import (
    TAP,
    catalog_selecting,
    edited_catalog,
    expected_events,
    identity,
    messages,
    original_event,
    select,
    states,
    tool,
)


def pipe(tap_args, target_args, cwd):
    tap = subprocess.Popen([TAP, *tap_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    target = subprocess.run(target_args, stdin=tap.stdout, capture_output=True, cwd=cwd,
                            timeout=300)
    tap.stdout.close()
    tap_stderr = tap.stderr.read()
    assert tap.wait(timeout=60) == 0, tap_stderr.decode()
    return target


def test_target_jsonl_receives_every_event_exactly_once(sandbox, write_config, tmp_path):
    server = sandbox(bundles=22, events_per_bundle=30)
    (tmp_path / "target.json").write_text(json.dumps({"destination_path": str(tmp_path / "out")}))
    target = pipe(["--config", write_config(server.url, checkpoint_every=25)],
                  [tool("target-jsonl", "target-jsonl"), "--config", "target.json"], tmp_path)
    assert target.returncode == 0, target.stderr.decode()
    files = list((tmp_path / "out").glob("events*.jsonl"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text("utf-8").splitlines()]
    assert {identity(r): original_event(r) for r in rows} == expected_events(server.data)
    assert len(rows) == 660
    final = json.loads(target.stdout.decode().splitlines()[-1])
    assert final == {"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-23T00:00:00.000000Z"}}, "currently_syncing": None}


def test_singer_check_tap_validates_the_message_stream(sandbox, write_config, tmp_path):
    server = sandbox(bundles=21, events_per_bundle=25)
    output = subprocess.run([TAP, "--config", write_config(server.url, checkpoint_every=10)],
                            capture_output=True, timeout=120).stdout
    assert len(states(messages(output))) > 21
    check = subprocess.run([tool("singer-check-tap", "singer-tools")], input=output,
                           capture_output=True, cwd=tmp_path, timeout=300)
    report = check.stdout.decode()
    assert check.returncode == 0, report + check.stderr.decode()
    assert "The output is valid." in report
    assert "    525 record messages" in report


def test_singer_check_tap_rejects_a_record_that_breaks_the_schema(tmp_path):
    # The validator above must be able to fail: feed it one bad record.
    schema = {"type": "SCHEMA", "stream": "events", "key_properties": [],
              "schema": {"type": "object", "properties": {
                  "EventStart": {"type": ["null", "string"], "format": "date-time"}}}}
    bad = {"type": "RECORD", "stream": "events", "record": {"EventStart": "yesterday"}}
    stream = "\n".join(json.dumps(m) for m in (schema, bad)) + "\n"
    check = subprocess.run([tool("singer-check-tap", "singer-tools")], input=stream.encode(),
                           capture_output=True, cwd=tmp_path, timeout=120)
    assert check.returncode != 0


def test_target_csv_gets_the_selected_columns_and_one_row_per_event(
        sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=40)
    config = write_config(server.url)
    keep = {"EventType", "EventStart", "UserId", "PageUrl", "CustomVars", "ExportBundleId",
            "ExportBundleRow"}
    catalog = edited_catalog(tmp_path, config, lambda stream: select(stream, keep))
    (tmp_path / "target.json").write_text(json.dumps({"destination_path": str(tmp_path)}))
    target = pipe(["--config", config, "--catalog", catalog],
                  [tool("target-csv", "target-csv"), "--config", "target.json"], tmp_path)
    assert target.returncode == 0, target.stderr.decode()[-2000:]
    [output] = list(tmp_path.glob("*.csv"))
    with open(output, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert set(table[0]) == keep | {"ExportBundleStop"}  # the automatic field too
    assert "PageBrowser" not in table[0]  # deselected
    assert len(table) == 120
    expected = expected_events(server.data)
    assert {(int(r["ExportBundleId"]), int(r["ExportBundleRow"])) for r in table} == set(
        expected)
    for r in table:
        assert int(r["UserId"]) == expected[(int(r["ExportBundleId"]),
                                            int(r["ExportBundleRow"]))]["UserId"]


def whole_catalog(tmp_path, config):
    """A catalog selecting every stream, saved; its path and the stream names."""
    path = catalog_selecting(tmp_path, config)
    return path, [s["tap_stream_id"] for s in json.loads(open(path).read())["streams"]]


def test_singer_check_tap_validates_the_whole_catalog(sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=40)
    config = write_config(server.url, api_base_url=server.url,
                          end_date="2026-01-04T00:00:00Z", checkpoint_every=15)
    catalog, names = whole_catalog(tmp_path, config)
    output = subprocess.run([TAP, "--config", config, "--catalog", catalog],
                            capture_output=True, timeout=120).stdout
    check = subprocess.run([tool("singer-check-tap", "singer-tools")], input=output,
                           capture_output=True, cwd=tmp_path, timeout=300)
    report = check.stdout.decode()
    assert check.returncode == 0, report + check.stderr.decode()
    assert "The output is valid." in report
    assert f"     {len(names)} schema messages" in report
    counts = {}
    for message in messages(output):
        if message["type"] == "RECORD":
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    assert set(counts) == set(names)  # every stream has records, and all are valid
    for name, count in counts.items():
        assert f"| {name} " in report and f"| {count} " in report.split(f"| {name} ")[1][:40]


def test_target_jsonl_receives_every_stream(sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=40)
    config = write_config(server.url, api_base_url=server.url,
                          end_date="2026-01-04T00:00:00Z")
    catalog, names = whole_catalog(tmp_path, config)
    (tmp_path / "target.json").write_text(json.dumps({"destination_path": str(tmp_path / "o")}))
    target = pipe(["--config", config, "--catalog", catalog],
                  [tool("target-jsonl", "target-jsonl"), "--config", "target.json"], tmp_path)
    assert target.returncode == 0, target.stderr.decode()
    files = {path.name.rsplit("-", 1)[0]: path for path in (tmp_path / "o").glob("*.jsonl")}
    assert set(files) == set(names)
    users = [json.loads(line) for line in files["users"].read_text().splitlines()]
    assert sorted(u["id"] for u in users) == sorted(u["id"] for u in server.account.users())
    final = json.loads(target.stdout.decode().splitlines()[-1])
    assert set(final["bookmarks"]) == set(names) and final["currently_syncing"] is None
