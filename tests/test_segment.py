"""The Segment Export source against the sandbox: same stream, same exactly-once promise."""

import json
import time
from datetime import datetime, timezone

import pytest
from ciso8601 import parse_rfc3339

from conftest import (
    catalog_selecting,
    identity,
    in_progress,
    messages,
    nth_state,
    original_event,
    records,
    run_and_kill,
    run_tap,
    states,
)
from tap_fullstory.sandbox.faults import Faults

HOURS = 6
START, END = "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"
FINAL = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-04T00:00:00.000000Z"}},
         "currently_syncing": None}


def window_events(data):
    """{(window id, row): event} for every window from START to END."""
    first = int(data.start.timestamp())
    expected = {}
    for begin in range(first, first + 3 * 86400, HOURS * 3600):
        for row, event in enumerate(data.window_events(begin, begin + HOURS * 3600)):
            expected[(begin * 100 + HOURS, row)] = event
    return expected


@pytest.fixture
def segment(sandbox, write_config):
    server = sandbox(bundles=3, events_per_bundle=60)

    def config(**settings):
        return write_config(server.url, **{"source": "segment_export", "start_date": START,
                                           "end_date": END, "export_window_hours": HOURS,
                                           **settings})
    return server, config


def test_full_sync_emits_every_event_once_from_aligned_windows(segment):
    server, config = segment
    result = run_tap("--config", config())
    assert result.returncode == 0, result.stderr.decode()
    got = records(messages(result.stdout))
    expected = window_events(server.data)
    assert len(got) == len(expected) == 180
    assert {identity(r): original_event(r) for r in got} == expected
    assert all(r["ExportBundleStop"].endswith(("00:00:00.000000Z", "06:00:00.000000Z",
                                               "12:00:00.000000Z", "18:00:00.000000Z"))
               for r in got)
    assert "PageAgent" not in set().union(*got)  # the newer field names, declared fields
    assert states(messages(result.stdout))[-1] == FINAL
    assert len(server.segment.operations) == 12  # one export per 6-hour window
    assert server.segment.authorized_downloads == 0  # the key never went to the location
    stderr = result.stderr.decode()
    assert "export 33% complete" in stderr and "INFO Window 12/12 " in stderr


def test_kill_mid_window_resumes_the_same_export_and_skips_what_was_out(segment, tmp_path):
    server, config = segment
    path = config(checkpoint_every=4)
    killed, _ = run_and_kill(path, nth_state(5, in_progress), tmp_path)
    last = states(killed)[-1]["bookmarks"]["events"]["in_progress"]
    assert last["searchExportId"].startswith("se-") and last["operationId"].startswith("op-")
    made = len(server.segment.operations)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    resumed = messages(run_tap("--config", path, "--state", str(state)).stdout)
    before = max(i for i, m in enumerate(killed) if m["type"] == "STATE")
    first = [identity(r) for r in records(killed[:before + 1])]
    second = [identity(r) for r in records(resumed)]
    assert not set(first) & set(second)
    assert set(first) | set(second) == set(window_events(server.data))
    assert second[0] == (last["ExportBundleId"], last["rows_done"])
    # the interrupted window was read from its saved export, not exported again
    windows_left = 12 - len({bundle for bundle, _ in first} - {last["ExportBundleId"]})
    assert len(server.segment.operations) - made == windows_left - 1
    assert states(resumed)[-1] == FINAL
    assert server.segment.authorized_downloads == 0


def test_a_failed_operation_is_one_line_and_a_rerun_completes(segment, tmp_path):
    server, config = segment
    server.faults.fail_operation = 3
    path = config()
    result = run_tap("--config", path)
    assert result.returncode == 1
    critical = [line for line in result.stderr.decode().splitlines()
                if line.startswith("CRITICAL")]
    assert critical == [
        "CRITICAL FullStory could not export window 2026-01-01T12:00:00.000000Z to "
        "2026-01-01T18:00:00.000000Z (operation op-3): sandbox: the export job ran out of "
        "memory. Run again to export it afresh; the last STATE resumes at this window "
        "(on_bad_bundle: skip would pass over it)."]
    first = messages(result.stdout)
    assert states(first)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-01T12:00:00.000000Z"}
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(first)[-1]))
    second = messages(run_tap("--config", path, "--state", str(state)).stdout)
    ids = [identity(r) for r in records(first) + records(second)]
    assert len(ids) == len(set(ids)) and set(ids) == set(window_events(server.data))
    assert states(second)[-1] == FINAL


def test_an_expired_export_on_resume_is_exported_again_without_losing_rows(segment,
                                                                          tmp_path):
    server, config = segment
    path = config(checkpoint_every=4)
    killed, _ = run_and_kill(path, nth_state(5, in_progress), tmp_path)
    last = states(killed)[-1]["bookmarks"]["events"]["in_progress"]
    server.segment.expire_all()
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(killed)[-1]))
    result = run_tap("--config", path, "--state", str(state))
    resumed = messages(result.stdout)
    assert f"export {last['searchExportId']} has expired; exporting the window again" in \
        result.stderr.decode()
    before = max(i for i, m in enumerate(killed) if m["type"] == "STATE")
    first = [identity(r) for r in records(killed[:before + 1])]
    second = [identity(r) for r in records(resumed)]
    assert set(first) | set(second) == set(window_events(server.data))  # nothing lost
    repeated = set(first) & set(second)
    # only the re-read window repeats, and no more of it than was out before
    assert {bundle for bundle, _ in repeated} <= {last["ExportBundleId"]}
    assert len(repeated) <= last["rows_done"]
    assert states(resumed)[-1] == FINAL


def test_a_partly_sent_window_without_its_export_is_sent_whole(segment, tmp_path):
    # a hand-written state (the README's refetch recipe) names no export: the new export
    # promises no row order, so none of its rows may be skipped by position
    server, config = segment
    window = (int(server.data.start.timestamp()) + 6 * 3600) * 100 + HOURS
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-01T06:00:00Z",
        "in_progress": {"ExportBundleId": window, "rows_done": 5}}}}))
    result = run_tap("--config", config(), "--state", str(state))
    assert result.returncode == 0, result.stderr.decode()
    assert "the state says 5 row(s) of it are out but names no export; a new export is " \
           "read from its first row, so those rows may repeat." in result.stderr.decode()
    got = {identity(r) for r in records(messages(result.stdout))}
    assert {key for key in window_events(server.data) if key[0] == window} <= got


def test_the_refetch_recipe_then_a_cut_off_download_sends_each_row_once(sandbox,
                                                                       write_config,
                                                                       tmp_path):
    # the recipe's state names no export, so the window is read from a new export from its
    # first row; its file then breaks half-way, after rows went out: the retry reads that
    # same export and goes on after them, never from the first row again
    server = sandbox(bundles=1, events_per_bundle=8000, faults="truncate-download=1")
    begin = int(server.data.start.timestamp()) + 6 * 3600
    window = begin * 100 + HOURS
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": {"events": {
        "ExportBundleStop": "2026-01-01T06:00:00Z",
        "in_progress": {"ExportBundleId": window, "rows_done": 5}}}}))
    config = write_config(server.url, source="segment_export", export_window_hours=HOURS,
                          end_date="2026-01-01T12:00:00Z", checkpoint_every=50)
    result = run_tap("--config", config, "--state", str(state))
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "Downloading it again" in stderr and "row(s) are out" not in stderr
    ids = [identity(r) for r in records(messages(result.stdout))]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} row(s) came twice"
    expected = server.data.window_events(begin, begin + HOURS * 3600)
    assert set(ids) == {(window, row) for row in range(len(expected))}
    assert len(server.segment.operations) == 1  # the retry read the same export


def test_two_ranges_split_inside_a_window_come_once(segment, tmp_path):
    # a boundary between two milliseconds, inside a 6 h window: both ranges read that
    # window, each emits its side; the first range continued from its state to a later
    # end_date sends the rest
    server, config = segment
    expected = window_events(server.data)
    boundary = "2026-01-02T03:17:45.123Z"
    first = messages(run_tap("--config", config(end_date=boundary)).stdout)
    later = messages(run_tap("--config", config(start_date=boundary)).stdout)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(states(first)[-1]))
    rest = messages(run_tap("--config", config(), "--state", str(state)).stdout)  # to END
    for second in (later, rest):
        ids = [identity(r) for r in records(first) + records(second)]
        assert len(ids) == len(set(ids)), "an event came in both runs"
        assert set(ids) == set(expected), "an event fell between the runs"
    assert states(first)[-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-02T03:17:45.123000Z"}


def test_test_flag_for_segment_export(segment):
    server, config = segment
    result = run_tap("--config", config(), "--test")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines()[1] == (
        "  events (Segment Export TYPE_EVENT windows): readable (ADMIN reaches Architect; "
        "the account also needs the Segment Export add-on); 12 settled 6 h window(s) from "
        "start_date 2026-01-01T00:00:00.000000Z to end_date 2026-01-04T00:00:00.000000Z; the "
        "newest ends at 2026-01-04T00:00:00.000000Z.")
    assert [path for path, _ in server.requests] == ["/me"]  # no export made to check


@pytest.mark.parametrize("settings, message", [
    ({"source": "bundles"}, "source 'bundles' must be one of data_export, segment_export."),
    ({"export_window_hours": 25}, "export_window_hours must be at most 24, not 25."),
    ({"export_window_hours": 0}, "export_window_hours must be at least 1, not 0."),
])
def test_bad_segment_settings(segment, settings, message):
    _, config = segment
    result = run_tap("--config", config(**settings))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == f"CRITICAL {message}"


@pytest.mark.parametrize("faults", ["5xx-every=4", "reset-download=2", "truncate-download=3",
                                    "5xx-every=7,truncate-download=5"])
def test_faults_are_survived_exactly_once(segment, faults):
    server, config = segment
    server.faults = Faults.parse(faults)
    result = run_tap("--config", config(checkpoint_every=5))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    ids = [identity(r) for r in records(messages(result.stdout))]
    assert len(ids) == len(set(ids)) and set(ids) == set(window_events(server.data))
    assert server.segment.authorized_downloads == 0


def test_on_bad_bundle_skip_passes_a_poison_window_over(segment):
    server, config = segment
    server.faults = Faults.parse("bad-window=3")
    result = run_tap("--config", config(max_retries=1, on_bad_bundle="skip"))
    assert result.returncode == 0, result.stderr.decode()
    bad = 1767225600 // 3600 * 3600 + 12 * 3600  # the third window: 12:00 to 18:00
    bad_id = bad * 100 + HOURS
    ids = [identity(r) for r in records(messages(result.stdout))]
    expected = {key for key in window_events(server.data) if key[0] != bad_id}
    assert len(ids) == len(set(ids)) and set(ids) == expected
    [skipped] = states(messages(result.stdout))[-1]["bookmarks"]["events"]["skipped"]
    assert skipped["ExportBundleId"] == bad_id
    assert skipped["reason"] == ("Window 2026-01-01T12:00:00.000000Z to 2026-01-01T18:00:00"
                                 ".000000Z is not NDJSON event lines (its body starts with "
                                 "b'<'). FullStory served it as text/html.")
    assert "ERROR Skipped window 2026-01-01T12:00:00.000000Z to 2026-01-01T18:00:00.000000Z: " \
           "Window 2026-01-01T12:00:00.000000Z to 2026-01-01T18:00:00.000000Z is not NDJSON " \
           "event lines" in result.stderr.decode()


def creates_before_first_download(server):
    """How many exports the tap had created when it first downloaded one."""
    paths = [path for path, _ in server.requests]
    first = next(i for i, path in enumerate(paths) if path.startswith("/download/"))
    return sum(1 for path in paths[:first] if path.startswith("/segments/v1/exports"))


@pytest.mark.parametrize("in_flight", [1, 3])
def test_exports_are_created_ahead_and_emitted_in_window_order(segment, in_flight):
    server, config = segment
    result = run_tap("--config", config(max_exports_in_flight=in_flight))
    assert result.returncode == 0, result.stderr.decode()
    got = records(messages(result.stdout))
    assert {identity(r): original_event(r) for r in got} == window_events(server.data)
    stops = [r["ExportBundleStop"] for r in got]
    assert stops == sorted(stops)  # strictly in window order, whatever finished first
    assert creates_before_first_download(server) == in_flight
    assert len(server.segment.operations) == 12  # one export per window, none twice
    assert states(messages(result.stdout))[-1] == FINAL


def test_a_429_on_create_lowers_the_exports_in_flight(segment):
    server, config = segment
    server.faults = Faults.parse("create-429-every=2")
    result = run_tap("--config", config(max_exports_in_flight=3))
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "FullStory rate-limited creating exports: at most 2 in flight from now on." in stderr
    assert "FullStory rate-limited creating exports: at most 1 in flight from now on." in stderr
    ids = [identity(r) for r in records(messages(result.stdout))]
    assert len(ids) == len(set(ids)) and set(ids) == set(window_events(server.data))


def test_windows_40_to_70_days_back_hold_every_event_and_individual(sandbox, write_config,
                                                                    tmp_path):
    """Each export sends segmentTimeRange = timeRange. Without it `everyone` is the people
    of the last 30 days (as the sandbox models FullStory), and this backfill would lose
    the events and individuals of everyone not active lately."""
    today = int(time.time()) // 86400 * 86400
    first = today - 75 * 86400
    server = sandbox(bundles=75, events_per_bundle=8,
                     start=datetime.fromtimestamp(first, timezone.utc))
    begin, end = today - 70 * 86400, today - 40 * 86400
    path = write_config(server.url, source="segment_export", start_date=moment(begin),
                        end_date=moment(end), export_window_hours=24)
    result = run_tap("--config", path, "--catalog",
                     catalog_selecting(tmp_path, path, ["events", "individuals"]))
    assert result.returncode == 0, result.stderr.decode()
    msgs = messages(result.stdout)
    data, days = server.data, range(begin, end, 86400)
    events = [r for r in records(msgs) if "ExportBundleId" in r]
    expected = {(day * 100 + 24, row): event for day in days
                for row, event in enumerate(data.window_events(day, day + 86400))}
    assert len(events) == len(expected) == len({identity(r) for r in events})
    assert {identity(r): original_event(r) for r in events} == expected
    people = [r for r in records(msgs) if "ExportWindowId" in r]
    rows = {(day + 86400, row["IndvId"]) for day in days
            for row in data.window_individuals(day, day + 86400)}
    got = [(int(parse_rfc3339(r["ExportWindowStop"]).timestamp()), r["IndvId"]) for r in people]
    assert len(got) == len(set(got)) and set(got) == rows
    recent = {e["IndvId"] for e in data.window_events(today - 30 * 86400, today)}
    assert {e["IndvId"] for e in expected.values()} - recent  # people not active lately


def moment(unix):
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def critical(result):
    return [line for line in result.stderr.decode().splitlines() if "CRITICAL" in line]


@pytest.mark.parametrize("status, code", [(404, "not_found"), (400, "invalid_argument")])
def test_an_unknown_segment_is_a_setting_to_fix_even_with_skip(segment, tmp_path, status,
                                                               code):
    """FullStory does not document what an unknown segment answers: 404 or 400, the run
    ends on one line naming segment_id, the bookmark unmoved and nothing skipped."""
    server, config = segment
    server.faults.unknown_segment = status
    state = tmp_path / "state.json"
    start = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-02T00:00:00.000000Z"}}}
    state.write_text(json.dumps(start))
    result = run_tap("--config", config(segment_id="Xy9-gone", on_bad_bundle="skip"),
                     "--state", str(state))
    assert result.returncode == 1
    [line] = critical(result)
    assert "segment_id ('Xy9-gone'" in line and f"{status}" in line and code in line
    assert "segment 'Xy9-gone' not found" in line  # FullStory's own message
    assert states(messages(result.stdout))[-1] == {**start, "currently_syncing": None}
    assert not records(messages(result.stdout))
    assert len(server.segment.operations) == 0


def test_a_proxy_path_that_answers_404_names_api_base_url(segment, write_config):
    server, _ = segment
    path = write_config(server.url, source="segment_export", start_date=START, end_date=END,
                        api_base_url=server.url + "/not-fullstory", on_bad_bundle="skip")
    result = run_tap("--config", path)
    assert result.returncode == 1
    [line] = critical(result)
    assert "api_base_url" in line and "/not-fullstory" in line
    assert "skipped" not in json.dumps(states(messages(result.stdout))[-1])


def test_a_refused_download_is_asked_for_afresh(segment):
    server, config = segment
    server.faults.refuse_download = 1
    result = run_tap("--config", config())
    assert result.returncode == 0, result.stderr.decode()
    assert {identity(r): original_event(r) for r in records(messages(result.stdout))} == \
        window_events(server.data)
    assert "the download location answered 403; asking FullStory for a fresh one" in \
        result.stderr.decode()


@pytest.mark.parametrize("on_forbidden", ["fail", "skip"])
def test_storage_that_keeps_refusing_is_one_line_never_a_permission(segment, on_forbidden):
    server, config = segment
    server.faults.refuse_download = 1000
    result = run_tap("--config", config(on_forbidden=on_forbidden, on_bad_bundle="skip"))
    assert result.returncode == 1  # on_forbidden: skip does not skip the stream for it
    [line] = critical(result)
    assert "refused the download (403)" in line and "fresh location" in line
    assert "permission" not in line.replace("not the API key's permission", "")
    final = states(messages(result.stdout))[-1]
    assert final == {"bookmarks": {"events": {}}, "currently_syncing": None} or \
        "skipped" not in json.dumps(final)
    assert not records(messages(result.stdout))
