"""Bad input through the real CLI: one CRITICAL line, a non-zero exit, nothing written."""

import json

import pytest

from conftest import API_KEY, messages, records, run_tap

GOOD = {"api_key": API_KEY, "start_date": "2026-01-01T00:00:00Z",
        "base_url": "http://127.0.0.1:9", "max_retries": 0}


def one_critical_line(result):
    assert result.returncode == 1
    assert result.stdout == b"", "nothing may be written on bad input"
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CRITICAL "), lines
    return lines[0][len("CRITICAL "):]


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize("content, message", [
    ("{", "is not valid JSON (line 1, column 2): fix the syntax."),
    ("[]", "must hold a JSON object of settings, not a list."),
    ({**GOOD, "api_key": ""}, "Config is missing api_key: FullStory API key"),
    ({k: v for k, v in GOOD.items() if k != "start_date"}, "Config is missing start_date"),
    ({**GOOD, "start_date": "01/02/2026"}, "start_date '01/02/2026' is not an RFC 3339 "
                                          "timestamp; write it like 2024-01-01T00:00:00Z."),
    ({**GOOD, "checkpoint_every": "ten"}, 'checkpoint_every must be a whole number, not "ten".'),
    ({**GOOD, "checkpoint_every": 0}, "checkpoint_every must be at least 1, not 0."),
    ({**GOOD, "max_retries": 2.5}, "max_retries must be a whole number, not 2.5."),
    ({**GOOD, "request_timeout": -1}, "request_timeout must be at least 0, not -1."),
    ({**GOOD, "max_downloads_per_minute": 0}, "max_downloads_per_minute must be at least"),
    ({**GOOD, "base_url": "http://export.fullstory.com"},
     "base_url 'http://export.fullstory.com' must use https (plain http is only allowed "
     "for loopback addresses such as the sandbox)."),
], ids=["not json", "not an object", "empty api_key", "no start_date", "bad start_date",
        "text number", "zero checkpoint", "fractional retries", "negative timeout",
        "zero pace", "http base_url"])
def test_bad_config(tmp_path, content, message):
    config = write(tmp_path / "config.json", content)
    assert message in one_critical_line(run_tap("--config", config))


def test_config_missing_or_unreadable(tmp_path):
    assert one_critical_line(run_tap("--config", str(tmp_path / "nope.json"))) == (
        f"Config file {tmp_path / 'nope.json'} does not exist; pass the path of a JSON "
        "file like sample_config.json.")
    assert one_critical_line(run_tap("--config", str(tmp_path))) == (
        f"Config file {tmp_path} cannot be read: Is a directory.")
    assert "--config is required" in one_critical_line(run_tap())


@pytest.mark.parametrize("content, message", [
    (None, "does not exist; omit --state to start from start_date."),
    ("{not json", "is not valid JSON (line 1); pass the last STATE value the tap printed."),
    ({"type": "STATE"}, "State has keys this tap never writes (type)"),
    ([1, 2], "State must be a JSON object, not a list"),
    ({"bookmarks": {"events": {"ExportBundleStop": 5}}},
     "State bookmark ExportBundleStop must be an RFC 3339 timestamp"),
], ids=["missing", "not json", "unknown shape", "not an object", "bad bookmark"])
def test_bad_state(tmp_path, content, message):
    config = write(tmp_path / "config.json", GOOD)
    state = tmp_path / "state.json"
    if content is not None:
        write(state, content)
    assert message in one_critical_line(run_tap("--config", config, "--state", str(state)))


@pytest.mark.parametrize("content, message", [
    (None, "does not exist."),
    ("[", "is not valid JSON (line 1): write it with --discover and edit it."),
    ({"streams": {}}, "must be an object with a 'streams' list, as --discover prints."),
    ({"streams": [{"stream": "events"}]}, "stream 0 has no tap_stream_id"),
    ({"streams": [{"tap_stream_id": "events", "schema": "x"}]},
     "stream 0 has no schema with properties"),
    ({"streams": [{"tap_stream_id": "events", "schema": {"properties": {}},
                   "metadata": "selected"}]}, "stream 0 has metadata that is not a list"),
], ids=["missing", "not json", "no streams list", "no id", "no schema", "bad metadata"])
def test_bad_catalog(tmp_path, content, message):
    config = write(tmp_path / "config.json", GOOD)
    catalog = tmp_path / "catalog.json"
    if content is not None:
        write(catalog, content)
    assert message in one_critical_line(run_tap("--config", config, "--catalog", str(catalog)))


def test_catalog_without_events_syncs_nothing_and_says_so(tmp_path):
    config = write(tmp_path / "config.json", GOOD)
    catalog = write(tmp_path / "catalog.json", {"streams": []})
    result = run_tap("--config", config, "--catalog", catalog)
    assert result.returncode == 0
    assert records(messages(result.stdout)) == []
    assert 'The catalog selects no stream (set "selected": true on a stream\'s [] ' \
           "breadcrumb): nothing to sync." in result.stderr.decode()


def test_a_bad_state_is_caught_before_anything_is_written(tmp_path):
    config = write(tmp_path / "config.json", GOOD)
    state = write(tmp_path / "state.json", {"bookmarks": {"events": {"in_progress": 3}}})
    assert "'in_progress' must hold ExportBundleId and rows_done" in one_critical_line(
        run_tap("--config", config, "--state", state))


def test_a_catalog_whose_schema_lost_the_key_is_one_line(tmp_path):
    config = write(tmp_path / "config.json", GOOD)
    discovered = json.loads(run_tap("--config", config, "--discover").stdout)
    for stream in discovered["streams"]:
        if stream["tap_stream_id"] == "users":
            del stream["schema"]["properties"]["id"]
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = True
    catalog = write(tmp_path / "catalog.json", discovered)
    assert one_critical_line(run_tap("--config", config, "--catalog", catalog)) == (
        "The catalog's schema for users has no id (its key, replication key or platform): "
        "write the catalog with --discover and change only what is selected.")
