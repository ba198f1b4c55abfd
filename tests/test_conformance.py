"""The checks of Stitch's tap-tester suite, against the sandbox through the real CLI."""

import json

import pytest

from conftest import (
    edited_catalog,
    expected_events,
    identity,
    messages,
    records,
    run_tap,
    select,
    states,
)
from tap_fullstory.timestamps import format_time


def discovered(write_config, url):
    result = run_tap("--config", write_config(url), "--discover")
    assert result.returncode == 0
    return json.loads(result.stdout)


def test_discovery(sandbox, write_config):
    catalog = discovered(write_config, "http://127.0.0.1:9")  # offline: nothing listens
    stream = next(s for s in catalog["streams"] if s["tap_stream_id"] == "events")
    assert stream["stream"] == "events"
    root = [m for m in stream["metadata"] if m["breadcrumb"] == []]
    assert len(root) == 1
    assert set(root[0]["metadata"]) == {"table-key-properties", "forced-replication-method",
                                        "valid-replication-keys", "inclusion"}
    assert root[0]["metadata"]["table-key-properties"] == []
    assert root[0]["metadata"]["forced-replication-method"] == "INCREMENTAL"
    automatic = {m["breadcrumb"][1] for m in stream["metadata"]
                 if m["breadcrumb"] and m["metadata"]["inclusion"] == "automatic"}
    assert automatic == set(root[0]["metadata"]["valid-replication-keys"]) == {
        "ExportBundleStop"}


@pytest.mark.parametrize("option", ["--catalog", "--properties"])
def test_minimum_selection_emits_exactly_the_automatic_fields(sandbox, write_config,
                                                              tmp_path, option):
    server = sandbox(bundles=3)
    config = write_config(server.url)
    catalog = edited_catalog(tmp_path, config, lambda stream: select(stream, fields=set()))
    got = records(messages(run_tap("--config", config, option, catalog).stdout))
    assert len(got) == 60
    assert all(set(record) == {"ExportBundleStop"} for record in got)


def test_all_fields_selected_every_field_appears(sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=200)
    config = write_config(server.url)
    path = edited_catalog(tmp_path, config, select)
    got = records(messages(run_tap("--config", config, "--catalog", path).stdout))
    seen = set().union(*got)
    events = next(s for s in discovered(write_config, server.url)["streams"]
                  if s["tap_stream_id"] == "events")
    assert seen == set(events["schema"]["properties"])


def test_later_start_date_is_a_strict_subset(sandbox, write_config):
    server = sandbox(bundles=5, events_per_bundle=40)
    early = records(messages(run_tap("--config", write_config(server.url)).stdout))
    later = "2026-01-03T06:00:00.000Z"
    late = records(messages(run_tap("--config", write_config(server.url, start_date=later))
                            .stdout))
    assert {identity(r) for r in late} < {identity(r) for r in early}
    assert all(r["EventStart"] >= later for r in late)
    assert all(r["ExportBundleStop"] > later for r in late)
    assert {identity(r) for r in late} == set(expected_events(server.data, since=later))


def test_bookmark_is_the_largest_replication_key_and_a_second_run_is_empty(
        sandbox, write_config, tmp_path):
    server = sandbox(bundles=4)
    config = write_config(server.url)
    first = messages(run_tap("--config", config).stdout)
    bookmark = states(first)[-1]["bookmarks"]["events"]["ExportBundleStop"]
    assert bookmark == max(r["ExportBundleStop"] for r in records(first))
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(first)[-1]))
    second = messages(run_tap("--config", config, "--state", str(state)).stdout)
    assert records(second) == [] and states(second)[-1] == states(first)[-1]


def test_interrupted_sync_resumes_to_the_same_final_state(sandbox, write_config, tmp_path):
    server = sandbox(bundles=6, events_per_bundle=30)
    config = write_config(server.url)
    uninterrupted = messages(run_tap("--config", config).stdout)
    third = server.data.exports()[2]
    interrupted = {"currently_syncing": "events", "bookmarks": {"events": {
        "ExportBundleStop": format_time(server.data.exports()[1]["Stop"]),
        "in_progress": {"ExportBundleId": third["Id"],
                        "ExportBundleStop": format_time(third["Stop"]), "rows_done": 12}}}}
    state = tmp_path / "state.json"
    state.write_text(json.dumps(interrupted))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    assert states(resumed)[-1] == states(uninterrupted)[-1]
    assert states(resumed)[-1]["currently_syncing"] is None
    got = [identity(r) for r in records(resumed)]
    assert got[0] == (third["Id"], 12)
    assert set(got) == {identity(r) for r in records(uninterrupted)
                        if r["ExportBundleStop"] > interrupted["bookmarks"]["events"][
                            "ExportBundleStop"]} - {(third["Id"], row) for row in range(12)}
