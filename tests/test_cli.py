"""End-to-end: the real `tap-fullstory` command against the sandbox on loopback."""

import json
import subprocess
import time

import pytest
from jsonschema import Draft4Validator

from conftest import (
    API_KEY,
    TAP,
    catalog_selecting,
    edited_catalog,
    expected_events,
    identity,
    messages,
    original_event,
    records,
    run_tap,
    schema_of,
    select,
    set_md,
    states,
)
from tap_fullstory.sandbox.data import SandboxData


def test_version_and_about():
    assert run_tap("--version").stdout.decode().strip() == "tap-fullstory 0.1.0"
    about = json.loads(run_tap("--about").stdout)
    assert about["name"] == "tap-fullstory"
    assert {"discover", "catalog", "state"} <= set(about["capabilities"])
    settings = {s["name"]: s for s in about["settings"]}
    assert settings["request_timeout"]["default"] == 300
    assert settings["api_key"]["required"] and settings["api_key"]["secret"]
    markdown = run_tap("--about", "--format", "markdown").stdout.decode()
    assert "| `checkpoint_every` | integer | no | `10000` |" in markdown
    assert "| `max_downloads_per_minute` | number | no | `2` |" in markdown


def test_discover_prints_the_catalog_without_any_network(write_config):
    result = run_tap("--config", write_config("http://127.0.0.1:9"), "--discover")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    assert "events" in [s["tap_stream_id"] for s in catalog["streams"]]


def test_sync_emits_every_event_exactly_once_field_for_field(sandbox, write_config):
    server = sandbox(bundles=25, events_per_bundle=20)
    result = run_tap("--config", write_config(server.url, checkpoint_every=7))
    assert result.returncode == 0, result.stderr.decode()
    msgs = messages(result.stdout)
    assert [m["type"] for m in msgs[:2]] == ["STATE", "SCHEMA"]  # the stream starts
    assert schema_of(msgs)["key_properties"] == []
    got = records(msgs)
    expected = expected_events(server.data)
    assert len(got) == len(expected) == 500
    assert {identity(r): original_event(r) for r in got} == expected
    validator = Draft4Validator(schema_of(msgs)["schema"])
    for record in got:
        validator.validate(record)
    big = [r["UserId"] for r in got if r.get("UserId", 0) > 2**53]
    assert big and all(type(v) is int for v in big)
    assert all("time_extracted" in m for m in msgs if m["type"] == "RECORD")
    # two LIST pages (20 + 5), then a short page ends the listing; listed once to count
    # the plan and once as the sync reaches the bundles (none is kept in memory)
    assert sum(1 for path, _ in server.requests if "/list" in path) == 4
    assert states(msgs)[-1] == {"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-26T00:00:00.000000Z"}}, "currently_syncing": None}


def test_every_state_covers_exactly_the_records_before_it(sandbox, write_config):
    server = sandbox(bundles=3, events_per_bundle=20)
    msgs = messages(run_tap("--config", write_config(server.url, checkpoint_every=6)).stdout)
    seen = []  # (ExportBundleStop, ExportBundleId, ExportBundleRow) written so far
    checkpoints = 0
    for message in msgs:
        if message["type"] == "RECORD":
            record = message["record"]
            seen.append((record["ExportBundleStop"], *identity(record)))
        elif message["type"] == "STATE":
            events = message["value"]["bookmarks"].get("events", {})
            done_stop = events.get("ExportBundleStop", "")
            progress = events.get("in_progress")
            in_bundle = progress and progress["ExportBundleId"]
            # rows of fully emitted bundles, then exactly rows_done rows of the open one
            assert all(stop <= done_stop or bundle == in_bundle for stop, bundle, _ in seen)
            assert sum(1 for stop, _, _ in seen if stop <= done_stop) % 20 == 0
            if progress:
                checkpoints += 1
                rows = [row for _, bundle, row in seen if bundle == in_bundle]
                assert rows == list(range(progress["rows_done"]))
                assert message["value"]["currently_syncing"] == "events"
    assert len(seen) == 60
    assert checkpoints == 9  # rows 6, 12, 18 of each bundle
    assert msgs[-1]["value"]["currently_syncing"] is None


def test_start_date_mid_bundle_drops_earlier_events(sandbox, write_config):
    server = sandbox(bundles=3, events_per_bundle=40)
    since = "2026-01-01T12:00:00.000Z"
    result = run_tap("--config", write_config(server.url, start_date=since))
    got = records(messages(result.stdout))
    expected = expected_events(server.data, since=since)
    assert {identity(r): original_event(r) for r in got} == expected
    assert len(expected) < 120
    assert min(r["EventStart"] for r in got) >= since
    assert got[0]["ExportBundleStop"] == "2026-01-02T00:00:00.000000Z"  # the straddler
    assert "earlier than start_date were not emitted" in result.stderr.decode()


def test_second_run_from_final_state_finds_nothing_new(sandbox, write_config, tmp_path):
    server = sandbox(bundles=4)
    config = write_config(server.url)
    first = states(messages(run_tap("--config", config).stdout))[-1]
    state = tmp_path / "state.json"
    state.write_text(json.dumps(first))
    second = messages(run_tap("--config", config, "--state", str(state)).stdout)
    assert records(second) == []
    assert states(second)[-1] == first


def test_legacy_flat_state_is_accepted_and_converted(sandbox, write_config, tmp_path):
    server = sandbox(bundles=4)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"events": "2026-01-03T00:00:00Z"}))
    msgs = messages(run_tap("--config", write_config(server.url), "--state", str(state)).stdout)
    assert {r["ExportBundleStop"] for r in records(msgs)} == {
        "2026-01-04T00:00:00.000000Z", "2026-01-05T00:00:00.000000Z"}
    assert states(msgs)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-05T00:00:00.000000Z"}


def test_field_selection_and_custom_vars(sandbox, write_config, tmp_path):
    server = sandbox(bundles=2)
    config = write_config(server.url)
    path = edited_catalog(tmp_path, config, lambda stream: select(
        stream, fields={"EventType", "UserId", "CustomVars"}))
    msgs = messages(run_tap("--config", config, "--catalog", path).stdout)
    emitted = {"EventType", "UserId", "CustomVars", "ExportBundleStop"}
    assert set(schema_of(msgs)["schema"]["properties"]) == emitted  # targets make columns
    got = records(msgs)
    assert all(set(r) <= emitted for r in got)
    assert any("CustomVars" in r for r in got)


def test_table_key_properties_from_the_catalog_are_honoured(sandbox, write_config, tmp_path):
    server = sandbox(bundles=1)

    def upsert_keys(stream):
        select(stream)
        set_md(stream, [], "table-key-properties", ["ExportBundleId", "ExportBundleRow"])
        set_md(stream, ["properties", "ExportBundleRow"], "selected", False)

    path = edited_catalog(tmp_path, write_config(server.url), upsert_keys)
    msgs = messages(run_tap("--config", write_config(server.url), "--catalog", path).stdout)
    assert schema_of(msgs)["key_properties"] == ["ExportBundleId", "ExportBundleRow"]
    assert all("ExportBundleRow" in r for r in records(msgs))


def test_catalog_without_the_stream_selected_syncs_nothing(sandbox, write_config, tmp_path):
    server = sandbox(bundles=1)
    path = edited_catalog(tmp_path, write_config(server.url), lambda stream: None)
    result = run_tap("--config", write_config(server.url), "--catalog", path)
    assert result.returncode == 0
    assert records(messages(result.stdout)) == []
    assert 'WARNING The catalog selects no stream (set "selected": true on a stream\'s [] ' \
           'breadcrumb): nothing to sync.' in result.stderr.decode()
    assert server.requests == []


def test_rate_limit_429_waits_retry_after_and_loses_nothing(sandbox, write_config):
    server = sandbox(bundles=5, events_per_bundle=10, faults="get-429-every=2")
    result = run_tap("--config", write_config(server.url))
    assert result.returncode == 0, result.stderr.decode()
    got = records(messages(result.stdout))
    assert {identity(r): original_event(r) for r in got} == expected_events(server.data)
    assert [s for p, s in server.requests if "/get" in p].count(429) == 4
    assert "FullStory rate limit (429) on bundle 176731200048: waiting 1.0 s as Retry-After " \
           "asks." in result.stderr.decode()


def test_wrong_api_key_is_one_critical_line(sandbox, write_config):
    server = sandbox(bundles=1, api_key="the-right-key")
    result = run_tap("--config", write_config(server.url))
    assert result.returncode == 1
    stderr = result.stderr.decode()
    critical = [line for line in stderr.splitlines() if line.startswith("CRITICAL")]
    assert critical == ['CRITICAL FullStory rejected the API key (401 unauthenticated: "bad '
                        'API key"): check api_key in the config.']
    assert "Traceback" not in stderr
    assert API_KEY not in stderr


def test_bad_config_is_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"api_key": API_KEY, "start_date": "last tuesday"}))
    result = run_tap("--config", str(path))
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().strip() == (
        "CRITICAL start_date 'last tuesday' is not an RFC 3339 timestamp; write it like "
        "2024-01-01T00:00:00Z.")


def test_sandbox_data_is_what_the_tests_expect():
    data = SandboxData(bundles=1, events_per_bundle=50)
    assert data.events(0) == SandboxData(bundles=1, events_per_bundle=50).events(0)


def test_downloads_paced_to_the_limit_never_provoke_a_429(sandbox, write_config):
    server = sandbox(bundles=6, events_per_bundle=10, rate=(2, 1.0))
    result = run_tap("--config", write_config(server.url, max_downloads_per_minute=120))
    assert result.returncode == 0, result.stderr.decode()
    assert len(records(messages(result.stdout))) == 60
    assert [s for p, s in server.requests if "/get" in p] == [200] * 6
    assert "Pacing downloads to 120 a minute: waiting" in result.stderr.decode()


def test_test_flag_checks_the_key_and_counts_bundles(sandbox, write_config):
    server = sandbox(bundles=23)
    config = write_config(server.url, api_base_url=server.url,
                          start_date="2026-01-03T12:00:00Z")
    result = run_tap("--config", config, "--test")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == (
        f"OK: {server.url} accepted the API key: jane@example.com in org o-SANDBOX-na1, "
        "role ADMIN.\n"
        "  events (Data Export bundles): readable (ADMIN reaches Architect; the account also "
        "needs the Data Export add-on); 21 bundle(s) end after start_date "
        "2026-01-03T12:00:00.000000Z; the newest ends at 2026-01-24T00:00:00.000000Z.\n")
    assert [path for path, _ in server.requests][0] == "/me"
    assert all(path == "/me" or "/list" in path for path, _ in server.requests)
    bounded = run_tap("--config", write_config(server.url, api_base_url=server.url,
                                               end_date="2026-01-05T00:00:00Z"), "--test")
    assert bounded.stdout.decode().splitlines()[1].endswith(
        "4 bundle(s) end after start_date 2026-01-01T00:00:00.000000Z and start before "
        "end_date 2026-01-05T00:00:00.000000Z; the newest ends at "
        "2026-01-05T00:00:00.000000Z.")


@pytest.mark.parametrize("role, readable", [
    ("ADMIN", {"users", "segments", "privacy_settings", "block_rules", "individuals"}),
    ("ARCHITECT", {"users", "segments", "privacy_settings", "block_rules", "individuals"}),
    ("USER", {"segments", "block_rules"}),
    ("VIEW_ONLY", set()),
])
def test_test_flag_says_what_the_keys_role_can_read(sandbox, write_config, tmp_path, role,
                                                   readable):
    server = sandbox(bundles=2)
    server.role = role
    config = write_config(server.url, api_base_url=server.url, source="segment_export")
    names = ["users", "segments", "privacy_settings", "block_rules", "individuals"]
    result = run_tap("--config", config, "--catalog", catalog_selecting(tmp_path, config, names),
                     "--test")
    assert result.returncode == 0, result.stderr.decode()
    first, *lines = result.stdout.decode().splitlines()
    assert first.endswith(f"role {role}.")
    assert [line.split()[0] for line in lines] == [
        "users", "segments", "block_rules", "privacy_settings", "individuals"]
    got = {line.split()[0] for line in lines if ": readable (" in line}
    assert got == readable
    for line in lines:
        if line.split()[0] not in readable:
            assert "NOT readable: it needs" in line and "deselect the stream" in line
    individuals = next(line for line in lines if line.startswith("  individuals"))
    assert "the Segment Export add-on" in individuals


def test_test_flag_with_an_undocumented_role_cannot_tell(sandbox, write_config):
    server = sandbox(bundles=1)
    server.role, server.key_owner = "UMBRELLA_MANAGER", ""
    result = run_tap("--config", write_config(server.url, api_base_url=server.url), "--test")
    first, events = result.stdout.decode().splitlines()
    assert "a legacy org key (no email)" in first
    assert "cannot tell from role 'UMBRELLA_MANAGER': it needs Architect or above" in events


def test_test_flag_with_a_wrong_key_is_one_line(sandbox, write_config):
    server = sandbox(bundles=1, api_key="other")
    result = run_tap("--config", write_config(server.url, api_base_url=server.url), "--test")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode().strip().splitlines()[-1] == (
        'CRITICAL FullStory rejected the API key (401 unauthenticated: "bad API key"): check '
        "api_key in the config.")


def test_progress_on_stderr_is_one_line_per_bundle(sandbox, write_config):
    server = sandbox(bundles=3, events_per_bundle=30)
    stderr = run_tap("--config", write_config(server.url)).stderr.decode()
    assert "INFO events: 3 bundle(s) to sync, ending 2026-01-02 00:00 … 2026-01-04 00:00 UTC; " \
           "FullStory's download limit alone takes at least 0 s (3 downloads at 60,000 a " \
           "minute)." in stderr
    for k in (1, 2, 3):
        assert stderr.count(f"INFO Bundle {k}/3 ") == 1
    assert "INFO Bundle 2/3 176731200048 (2026-01-02 00:00 → 2026-01-03 00:00): 30 " \
           "record(s), " in stderr
    assert "; ETA " in stderr.split("INFO Bundle 2/3 ")[1].splitlines()[0]
    assert "INFO events: 3 bundle(s), 90 record(s) in " in stderr
    assert 'INFO Done: 1 stream(s) in ' in stderr
    assert '"metric": "http_request_duration"' in stderr and '"endpoint": "bundle"' in stderr
    assert '"metric": "record_count", "value": 90' in stderr


def test_a_partly_emitted_bundle_that_is_gone_is_reported(sandbox, write_config, tmp_path):
    server = sandbox(bundles=3)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-02T00:00:00.000000Z",
        "in_progress": {"ExportBundleId": 123, "ExportBundleStop": "2026-01-03T00:00:00Z",
                        "rows_done": 5}}}, "currently_syncing": "events"}))
    result = run_tap("--config", write_config(server.url), "--state", str(state))
    assert result.returncode == 0
    assert "ERROR Skipped bundle 123 was partly emitted (5 row(s)) and is no longer " \
           "offered: " in result.stderr.decode()
    assert len(records(messages(result.stdout))) == 40
    reason = ("bundle 123 was partly emitted (5 row(s)) and is no longer offered: "
              "FullStory's retention passed it, or end_date, settle_hours, "
              "export_window_hours or source changed since.")
    assert states(messages(result.stdout))[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-04T00:00:00.000000Z",
        "skipped": [{"ExportBundleId": 123, "ExportBundleStop": "2026-01-03T00:00:00Z",
                     "reason": reason, "events_from": "2026-01-02T00:00:00.000000Z",
                     "rows_done": 5}]}


def test_about_lists_every_stream_from_the_declarations():
    about = json.loads(run_tap("--about").stdout)
    names = [s["name"] for s in about["streams"]]
    assert names[-2:] == ["individuals", "events"] and len(names) == 17
    users = next(s for s in about["streams"] if s["name"] == "users")
    assert users == {"name": "users", "api": "GET /v2/users", "key_properties": ["id"],
                     "replication_method": "FULL_TABLE", "replication_key": None,
                     "row": "a user FullStory knows, anonymous or identified "
                            "(identified_users_only: only those identified with FS.identify)",
                     "permission": "Architect or Admin"}


def test_a_slow_target_is_named_as_what_sets_the_pace(sandbox, write_config):
    server = sandbox(bundles=2, events_per_bundle=300)
    tap = subprocess.Popen([TAP, "--config", write_config(server.url)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while tap.stdout.read(4096):  # a target that takes its time over every read
        time.sleep(0.01)
    stderr = tap.stderr.read().decode()
    assert tap.wait(timeout=60) == 0, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("INFO events: 2 bundle")
              and "record(s) in" in line]
    assert "% of it waiting for the target to read stdout (the target sets the pace: see " \
           "the README's \"Loading fast\")." in line


def test_a_file_is_never_blamed_as_a_slow_target(sandbox, write_config, tmp_path):
    server = sandbox(bundles=2, events_per_bundle=300)
    with open(tmp_path / "out.jsonl", "wb") as out:
        result = subprocess.run([TAP, "--config", write_config(server.url)], stdout=out,
                                stderr=subprocess.PIPE, timeout=60)
    assert result.returncode == 0
    assert "INFO events: 2 bundle(s), 600 record(s) in " in result.stderr.decode()
    assert "waiting for the target" not in result.stderr.decode()
