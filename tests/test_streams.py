"""The account's streams through the real CLI against the sandbox: users, segments, the
recording settings and their history, and individuals — each compared with what the
sandbox serves, record by record."""

import json
import math
import signal

import pytest
from ciso8601 import parse_rfc3339

from conftest import (
    catalog_selecting,
    messages,
    nth_state,
    records,
    run_and_kill,
    run_tap,
    schema_of,
    states,
)
from tap_fullstory.sandbox import server as sandbox_server
from tap_fullstory.streams import BY_NAME, STREAMS

PAGED = [s for s in STREAMS if s.kind == "paged"]
CURRENT = {"block_rules": "blocking", "domain_settings": "domain", "geo_settings": "geo",
           "privacy_settings": "privacy", "recording_features": "features",
           "target_rules": "targeting"}
HISTORY = {"block_rules_history": "blocking", "domain_settings_history": "domain",
           "geo_settings_history": "geo", "privacy_settings_history": "privacy",
           "recording_features_history": "features", "target_rule_history": "targeting"}
LIFTED = ("lastUpdated", "created", "lastUpdatedBy", "createdBy")
END = "2026-01-04T00:00:00Z"


@pytest.fixture
def account(sandbox, write_config, tmp_path):
    """A sandbox, and `sync(streams, state=None, **settings)` running the tap with a catalog
    that selects exactly `streams`."""
    server = sandbox(bundles=3, events_per_bundle=80)
    def catalog(names):
        return catalog_selecting(tmp_path, write_config(server.url), names)

    def config(**settings):
        return write_config(server.url, api_base_url=server.url, end_date=END,
                            export_window_hours=24, **settings)

    def sync(names, state=None, **settings):
        args = ["--config", config(**settings), "--catalog", catalog(names)]
        if state is not None:
            path = tmp_path / "state.json"
            path.write_text(json.dumps(state))
            args += ["--state", str(path)]
        return run_tap(*args)

    return server, sync, config, catalog


def by_stream(msgs, name):
    return [m["record"] for m in msgs if m["type"] == "RECORD" and m["stream"] == name]


def lifted(version):
    """A settings object as its record: metadata's four fields also at the top level."""
    return {**version, **{k: version["metadata"][k] for k in LIFTED
                          if k in version["metadata"]}}


def current_rows(server, name, kind):
    """What a current-settings stream must hold: one row per platform it is read for."""
    return [dict(lifted(server.account.current(kind, platform or "web")),
                 **({"platform": platform} if platform else {}))
            for platform in BY_NAME[name].platforms or (None,)]


def history_rows(server, name, kind):
    """What a history stream emits: each platform's versions oldest first, web first."""
    rows = []
    for platform in BY_NAME[name].platforms or (None,):
        versions = sorted(map(lifted, server.account.history(kind, platform or "web")),
                          key=lambda v: v["lastUpdated"])
        rows += [dict(v, **({"platform": platform} if platform else {})) for v in versions]
    return rows


def path_calls(server, path):
    return sum(1 for requested, _ in server.requests if requested.split("?")[0] == path)


@pytest.mark.parametrize("spelling", ["documented", "alternate"])
def test_every_paged_stream_equals_the_sandbox_record_by_record(account, spelling):
    server, sync, _, _ = account
    server.token_spelling = spelling
    result = sync([s.name for s in PAGED])
    assert result.returncode == 0, result.stderr.decode()
    msgs = messages(result.stdout)
    users = {u["id"]: u for u in server.account.users(include_schema=True)}
    got = {r["id"]: r for r in by_stream(msgs, "users")}
    assert got == users  # ids exact strings, properties and type_conflicts whole
    assert any(isinstance(u["properties"].get("address"), dict) for u in got.values())
    calls = math.ceil(len(users) / 10)  # FullStory's 10 a page, whatever page_size says
    assert path_calls(server, "/v2/users") == calls > 1
    assert all("include_schema=true" in path and "is_identified" not in path
               for path, _ in server.requests if path.startswith("/v2/users"))
    assert any("uid" not in u for u in got.values())  # anonymous users too
    assert (f"INFO users: total_records announces {len(users)} record(s): {calls} "
            "request(s) at 10 a page.") in result.stderr.decode()
    segments = {s["id"]: s for s in server.account.segments()}
    assert {r["id"]: r for r in by_stream(msgs, "segments")} == segments
    assert "created" not in {r["id"]: r for r in by_stream(msgs, "segments")}["everyone"]
    for name, kind in CURRENT.items():
        assert by_stream(msgs, name) == current_rows(server, name, kind), name
    for name, kind in HISTORY.items():
        assert by_stream(msgs, name) == history_rows(server, name, kind), name
        assert path_calls(server, f"/settings/recording/v1/{kind}/history") > 1
    for name in ("domain_settings", "recording_features_history"):
        assert {r["platform"] for r in by_stream(msgs, name)} == {"web", "mobile"}
    for stream in PAGED:
        schema = schema_of(msgs, stream.name)
        assert schema["key_properties"] == list(stream.key)


def test_full_table_streams_carry_a_version_and_end_with_activate_version(account):
    server, sync, _, _ = account
    msgs = messages(sync(["users", "block_rules"]).stdout)
    for name in ("users", "block_rules"):
        stream = [m for m in msgs if m.get("stream") == name]
        assert [m["type"] for m in stream][-1] == "ACTIVATE_VERSION"
        version = stream[-1]["version"]
        assert {m["version"] for m in stream if m["type"] == "RECORD"} == {version}
        assert states(msgs)[-1]["bookmarks"][name] == {}


def test_history_streams_are_incremental_across_three_runs(account):
    server, sync, _, _ = account
    names = list(HISTORY)
    first = messages(sync(names).stdout)
    state = states(first)[-1]
    assert all(by_stream(first, name) for name in names)
    newer = {name: dict(lifted(server.account.add_version(kind)),
                        **({"platform": "web"} if BY_NAME[name].platforms else {}))
             for name, kind in list(HISTORY.items())[:3]}
    second = messages(sync(names, state).stdout)
    for name in names:
        assert by_stream(second, name) == ([newer[name]] if name in newer else []), name
    third = messages(sync(names, states(second)[-1]).stdout)
    assert records(third) == []
    assert states(third)[-1] == states(second)[-1]
    for name in newer:
        mark = {"lastUpdated": newer[name]["lastUpdated"]}
        if BY_NAME[name].platforms:  # one bookmark per platform; mobile had no new version
            mobile = history_rows(server, name, HISTORY[name])[-1]
            mark = {"platforms": {"web": mark,
                                  "mobile": {"lastUpdated": mobile["lastUpdated"]}}}
        assert states(second)[-1]["bookmarks"][name] == mark, name


PLATFORM_STREAMS = {"domain_settings": "domain", "recording_features": "features",
                    "domain_settings_history": "domain",
                    "recording_features_history": "features"}


def test_each_platform_has_its_own_history_and_bookmark(account):
    server, sync, _, _ = account
    names = ["domain_settings_history", "recording_features_history"]
    first = messages(sync(names).stdout)
    marks = states(first)[-1]["bookmarks"]
    assert set(marks["domain_settings_history"]["platforms"]) == {"web", "mobile"}
    newer = dict(lifted(server.account.add_version("domain", "mobile")), platform="mobile")
    second = messages(sync(names, states(first)[-1]).stdout)
    assert by_stream(second, "domain_settings_history") == [newer]
    assert by_stream(second, "recording_features_history") == []
    after = states(second)[-1]["bookmarks"]["domain_settings_history"]["platforms"]
    assert after == {"web": marks["domain_settings_history"]["platforms"]["web"],
                     "mobile": {"lastUpdated": newer["lastUpdated"]}}


def test_a_bookmark_from_before_mobile_was_read_is_the_web_bookmark(account):
    server, sync, _, _ = account
    web = history_rows(server, "domain_settings_history", "domain")
    newest_web = [r for r in web if r["platform"] == "web"][-1]["lastUpdated"]
    state = {"bookmarks": {"domain_settings_history": {"lastUpdated": newest_web}},
             "currently_syncing": None}
    got = by_stream(messages(sync(["domain_settings_history"], state).stdout),
                    "domain_settings_history")
    assert got == [r for r in web if r["platform"] == "mobile"]


@pytest.mark.parametrize("status", [404, 400, 403])
def test_an_account_without_mobile_apps_is_one_info_line_per_stream(account, status):
    server, sync, _, _ = account
    server.mobile_apps, server.no_mobile_status = False, status  # FullStory documents none
    result = sync(list(PLATFORM_STREAMS))
    assert result.returncode == 0, result.stderr.decode()
    msgs, stderr = messages(result.stdout), result.stderr.decode()
    for name in PLATFORM_STREAMS:
        rows = by_stream(msgs, name)
        assert rows and {r["platform"] for r in rows} == {"web"}, name
        assert f"INFO {name}: FullStory answered {status} for platform=mobile" in stderr
    assert stderr.count("the account has no mobile apps") == len(PLATFORM_STREAMS)
    assert "WARNING" not in stderr and "ERROR" not in stderr
    marks = states(msgs)[-1]["bookmarks"]["domain_settings_history"]
    assert set(marks["platforms"]) == {"web"}
    assert [m["type"] for m in msgs if m.get("stream") == "domain_settings"][-1] == \
        "ACTIVATE_VERSION"


def test_a_refusal_after_the_first_mobile_page_is_an_error_not_no_apps(account,
                                                                        monkeypatch):
    # Only a refused first request says the account has no mobile apps: a 400 on page 2
    # (a token FullStory no longer takes) must not move the mobile bookmark past versions
    # never read.
    server, sync, _, _ = account
    server.page_size = 2

    def wrap(handler):
        def answer(request, *args):
            if request.query.get("platform") == "mobile" and request.query.get(
                    "paginationToken"):
                return request.send_error_json(400, "invalid_argument", "bad page token")
            return handler(request, *args)
        return answer

    monkeypatch.setattr(sandbox_server, "ROUTES", [
        (method, pattern, wrap(handler) if "history" in pattern.pattern else handler, api)
        for method, pattern, handler, api in sandbox_server.ROUTES])
    result = sync(["domain_settings_history"])
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "no mobile apps" not in stderr
    critical = [line for line in stderr.splitlines() if line.startswith("CRITICAL")]
    assert len(critical) == 1 and "domain_settings_history (mobile)" in critical[0], critical
    msgs = messages(result.stdout)
    assert {r["platform"] for r in by_stream(msgs, "domain_settings_history")} == {"web"}
    assert set(states(msgs)[-1]["bookmarks"]["domain_settings_history"]["platforms"]) == {
        "web"}


def test_a_5xx_for_mobile_is_still_retried_and_then_an_error(account):
    server, sync, _, _ = account
    server.mobile_apps, server.no_mobile_status = False, 503
    result = sync(["domain_settings"], max_retries=1)
    assert result.returncode == 1
    assert "CRITICAL Gave up on domain_settings (mobile) after 2 tries" in \
        result.stderr.decode()


def test_a_403_names_the_stream_and_the_permission_it_needs(account):
    server, sync, _, _ = account
    server.faults.forbidden_path = ("/v2/users",)
    result = sync(["users", "segments"])
    assert result.returncode == 1
    critical = [line for line in result.stderr.decode().splitlines()
                if line.startswith("CRITICAL")]
    assert critical == [
        "CRITICAL FullStory refused access (403) to the users stream (GET /v2/users): the key "
        "needs Architect or Admin permission. FullStory said permission_denied: \"the API key "
        "may not read /v2/users\". Use a key with it, deselect the stream, or set "
        "on_forbidden to skip."]
    # a failure is not an interruption: the next run syncs every stream again
    assert states(messages(result.stdout))[-1]["currently_syncing"] is None


ACCOUNT = [s for s in STREAMS if s.kind in ("paged", "fanout")]


@pytest.mark.parametrize("stream", ACCOUNT, ids=[s.name for s in ACCOUNT])
def test_a_403_on_any_account_stream_is_one_line_naming_it(account, stream):
    server, sync, _, _ = account
    server.faults.forbidden_path = (stream.endpoint.path,)
    result = sync([stream.name])
    assert result.returncode == 1
    critical = [line for line in result.stderr.decode().splitlines()
                if line.startswith("CRITICAL")]
    assert critical == [
        f"CRITICAL FullStory refused access (403) to the {stream.name} stream ({stream.api}): "
        f"the key needs {stream.permission} permission. FullStory said permission_denied: "
        f"\"the API key may not read {stream.endpoint.path}\". Use a key with it, deselect "
        "the stream, or set on_forbidden to skip."]


def test_on_forbidden_skip_passes_over_the_stream_and_syncs_the_rest(account):
    server, sync, _, _ = account
    server.faults.forbidden_path = ("/settings/recording/v1/privacy",)
    result = sync(["privacy_settings", "privacy_settings_history", "segments"],
                  on_forbidden="skip")
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "WARNING Skipped the privacy_settings stream: FullStory refused access (403) to " \
           "the privacy_settings stream (GET /settings/recording/v1/privacy): the key needs " \
           "Architect or Admin permission." in stderr
    assert "WARNING Skipped the privacy_settings_history stream" in stderr
    msgs = messages(result.stdout)
    assert len(by_stream(msgs, "segments")) == len(server.account.segments())
    assert by_stream(msgs, "privacy_settings") == []


def test_429s_on_the_account_api_are_waited_out(account):
    server, sync, _, _ = account
    server.faults.api_429_every = 3
    result = sync(["users", "segments"])
    assert result.returncode == 0, result.stderr.decode()
    msgs = messages(result.stdout)
    assert len(by_stream(msgs, "users")) == len(server.account.users())
    assert "FullStory rate limit (429) on users" in result.stderr.decode() or \
        "FullStory rate limit (429) on segments" in result.stderr.decode()


def window_rows(data):
    """{(window stop, IndvId): row} of every daily window from 2026-01-01 to END."""
    first = int(data.start.timestamp())
    return {(begin + 86400, row["IndvId"]): row
            for begin in range(first, first + 3 * 86400, 86400)
            for row in data.window_individuals(begin, begin + 86400)}


def individual(record):
    """The export row a record was shaped from, keyed by its window's stop and IndvId."""
    row = {k: v for k, v in record.items()
           if k not in ("CustomVars", "ExportWindowId", "ExportWindowStop")}
    row.update(record.get("CustomVars") or {})
    return row


def window_key(record):
    return int(parse_rfc3339(record["ExportWindowStop"]).timestamp()), record["IndvId"]


def test_individuals_come_once_per_window_with_their_properties(account):
    server, sync, _, _ = account
    result = sync(["individuals"])
    assert result.returncode == 0, result.stderr.decode()
    got = by_stream(messages(result.stdout), "individuals")
    expected = window_rows(server.data)
    assert {window_key(r): individual(r) for r in got} == expected
    assert len(got) == len(expected)
    assert any(r["IndvId"] > 2**53 and type(r["IndvId"]) is int for r in got)
    assert any("user_plan_str" in (r.get("CustomVars") or {}) for r in got)
    people = {}
    for r in got:
        people.setdefault(r["IndvId"], []).append(r["ExportWindowStop"])
    assert any(len(stops) > 1 for stops in people.values())  # several windows, once each
    assert all(len(stops) == len(set(stops)) for stops in people.values())
    assert states(messages(result.stdout))[-1]["bookmarks"]["individuals"] == {
        "ExportWindowStop": "2026-01-04T00:00:00.000000Z"}


def test_individuals_in_two_ranges_split_inside_a_window_come_once(account, write_config):
    # Individuals have no time of their own to split a window on: the window whose Stop
    # is in a range belongs to that range, as the end_date setting says.
    server, _, _, catalog = account
    boundary, more = "2026-01-02T12:00:00Z", ["--catalog", catalog(["individuals"])]
    ranges = [{"end_date": boundary}, {"start_date": boundary, "end_date": END}]
    got = []
    for settings in ranges:
        result = run_tap("--config", write_config(server.url, api_base_url=server.url,
                                                  export_window_hours=24, **settings), *more)
        assert result.returncode == 0, result.stderr.decode()
        got.append([window_key(r) for r in by_stream(messages(result.stdout), "individuals")])
    assert {stop for stop, _ in got[0]} == {int(parse_rfc3339(
        "2026-01-02T00:00:00Z").timestamp())}
    keys = got[0] + got[1]
    assert len(keys) == len(set(keys)), "a window's row came in both ranges"
    assert set(keys) == set(window_rows(server.data))


def test_individuals_killed_mid_window_resume_from_the_saved_export(account, tmp_path):
    server, _, config, catalog = account
    path, more = config(checkpoint_every=3), ["--catalog", catalog(["individuals"])]

    def mid_window(value):
        return "in_progress" in value["bookmarks"].get("individuals", {})

    killed, code = run_and_kill(path, nth_state(4, mid_window), tmp_path, more=more)
    assert code == -signal.SIGKILL
    last = states(killed)[-1]
    progress = last["bookmarks"]["individuals"]["in_progress"]
    assert progress["searchExportId"].startswith("se-")
    made = len(server.segment.operations)
    resumed = messages(run_tap("--config", path, *more, "--state",
                               str(write(tmp_path, last))).stdout)
    cut = max(i for i, m in enumerate(killed) if m["type"] == "STATE")
    before = [window_key(r) for r in by_stream(killed[:cut + 1], "individuals")]
    after = [window_key(r) for r in by_stream(resumed, "individuals")]
    assert not set(before) & set(after), "a row a STATE covered came again"
    assert set(before) | set(after) == set(window_rows(server.data))
    # the interrupted window was read from its saved export, only later ones exported
    later = [stop for stop, _ in window_rows(server.data)
             if stop > window_key({"ExportWindowStop": progress["ExportWindowStop"],
                                   "IndvId": 0})[0]]
    assert len(server.segment.operations) - made == len(set(later))
    assert states(resumed)[-1]["bookmarks"]["individuals"] == {
        "ExportWindowStop": "2026-01-04T00:00:00.000000Z"}


def test_a_resumed_run_goes_on_with_the_stream_that_was_syncing(account, tmp_path):
    server, sync, _, _ = account
    names = ["users", "segments", "block_rules_history", "events"]
    first = messages(sync(names).stdout)
    interrupted = [s for s in states(first) if s["currently_syncing"] == "block_rules_history"][0]
    server.requests.clear()
    resumed = sync(names, interrupted)
    assert resumed.returncode == 0, resumed.stderr.decode()
    msgs = messages(resumed.stdout)
    assert by_stream(msgs, "users") == [] and by_stream(msgs, "segments") == []
    assert path_calls(server, "/v2/users") == 0
    assert len(by_stream(msgs, "events")) == 240
    assert "Resuming the interrupted run at block_rules_history." in resumed.stderr.decode()
    assert states(msgs)[-1]["currently_syncing"] is None
    assert [s for s in states(msgs)][-1]["bookmarks"]["events"] == {
        "ExportBundleStop": "2026-01-04T00:00:00.000000Z"}


def test_a_full_table_stream_resumed_reads_everything_again_under_a_new_version(
        account, tmp_path):
    server, _, config, catalog = account
    path, more = config(), ["--catalog", catalog(["segments", "users"])]
    seen = []

    def in_users(message):
        if message["type"] == "RECORD" and message["stream"] == "users":
            seen.append(message["version"])
        return len(seen) == 3

    killed, _ = run_and_kill(path, in_users, tmp_path, more=more)
    last = states(killed)[-1]
    assert last["currently_syncing"] == "users"
    gone = server.account.users()[0]["id"]
    server.account.remove_user(gone)  # between the interrupted run and its resume
    resumed = messages(run_tap("--config", path, *more, "--state",
                               str(write(tmp_path, last))).stdout)
    versions = {m["version"] for m in resumed if m.get("stream") == "users"
                and m["type"] in ("RECORD", "ACTIVATE_VERSION")}
    assert len(versions) == 1 and versions != {seen[0]}  # the activation drops what is stale
    assert {r["id"] for r in by_stream(resumed, "users")} == {
        u["id"] for u in server.account.users()}
    assert len(by_stream(resumed, "segments")) == len(server.account.segments())


def write(tmp_path, state):
    path = tmp_path / "state-file.json"
    path.write_text(json.dumps(state))
    return path




def test_a_stream_that_keeps_failing_never_starves_the_ones_before_it(account):
    server, sync, _, _ = account
    server.faults = type(server.faults).parse("null-bundle=176731200048")
    names = ["users", "segments", "events"]
    first = sync(names, max_retries=0)
    assert first.returncode == 1
    again = sync(names, states(messages(first.stdout))[-1], max_retries=0)
    assert again.returncode == 1
    msgs = messages(again.stdout)
    assert len(by_stream(msgs, "users")) == len(server.account.users())
    assert len(by_stream(msgs, "segments")) == len(server.account.segments())


def test_identified_users_only_lists_the_identified_users(account):
    server, _, config, catalog = account
    result = run_tap("--config", config(identified_users_only=True), "--catalog",
                     catalog(["users"]))
    assert result.returncode == 0, result.stderr.decode()
    identified = server.account.users(identified=True, include_schema=True)
    assert by_stream(messages(result.stdout), "users") == identified
    assert 0 < len(identified) < len(server.account.users())
    assert all("is_identified=true" in path for path, _ in server.requests
               if path.startswith("/v2/users"))
    assert (f"users: total_records announces {len(identified)} record(s) with "
            f"is_identified=true: {math.ceil(len(identified) / 10)} request(s) at 10 a page."
            ) in result.stderr.decode()


def test_two_versions_with_the_same_last_updated_and_a_stop_between_them(account):
    """A kill right after the STATE that follows the first of two versions sharing a
    lastUpdated leaves that STATE: resumed from it, the second comes once, the first not."""
    server, sync, _, _ = account
    first = messages(sync(["block_rules_history"]).stdout)
    ties = [lifted(server.account.add_version("blocking")),
            lifted(server.account.add_version("blocking", same_moment=True))]
    assert ties[0]["lastUpdated"] == ties[1]["lastUpdated"]
    whole = messages(sync(["block_rules_history"], states(first)[-1],
                          checkpoint_every=1).stdout)
    cut = next(i for i, m in enumerate(whole) if m["type"] == "RECORD")
    before = whole[:cut + 1]
    between = next(m["value"] for m in whole[cut + 1:] if m["type"] == "STATE")
    assert between["bookmarks"]["block_rules_history"] == {
        "lastUpdated": ties[0]["lastUpdated"], "versions_out_at_last_updated": 1}
    rest = messages(sync(["block_rules_history"], between).stdout)
    got = by_stream(before, "block_rules_history") + by_stream(rest, "block_rules_history")
    assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, ties))
    assert states(rest)[-1]["bookmarks"]["block_rules_history"] == {
        "lastUpdated": ties[0]["lastUpdated"]} == \
        states(whole)[-1]["bookmarks"]["block_rules_history"]
