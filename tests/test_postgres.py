"""tap-fullstory | target-postgres (meltanolabs) into a real PostgreSQL, checked with SQL."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import TAP, catalog_selecting, edited_catalog, expected_events, select, set_md, tool

PG_BIN = Path(os.environ.get("TAP_FULLSTORY_PG_BIN", "/usr/lib/postgresql/15/bin"))
BUNDLES, EVENTS = 4, 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL 15 cluster on a loopback port, stopped however tests end."""
    assert (PG_BIN / "initdb").exists(), f"PostgreSQL server binaries missing in {PG_BIN}"
    root = Path(tempfile.mkdtemp(prefix="tap-fullstory-pg-"))
    as_postgres = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(root, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = root / "data"
    subprocess.run(as_postgres + [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                  "--auth=trust", "-E", "UTF8"], check=True,
                   capture_output=True)
    subprocess.run(as_postgres + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l",
                                  str(root / "server.log"), "-o",
                                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
                                  "start"], check=True, capture_output=True)
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "password": "",
               "database": "postgres"}
    finally:
        subprocess.run(as_postgres + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                                      "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def sql_json(db, query):
    """Run a query that returns one JSON value; parse it."""
    result = subprocess.run(["psql", "-h", db["host"], "-p", str(db["port"]), "-U",
                             db["user"], "-d", db["database"], "-Atc", query],
                            capture_output=True, check=True, text=True)
    return json.loads(result.stdout)


def pipeline(db, schema, tap_args, tmp_path, kill_when=None):
    """tap | target-postgres through this process, which can SIGKILL the tap when
    `kill_when(line)` is true and then closes the target's input, as a dead tap would.
    Returns the last STATE the target emitted."""
    config = tmp_path / f"target-{schema}.json"
    config.write_text(json.dumps({**db, "default_target_schema": schema}))
    target_out = tmp_path / f"target-{schema}.out"
    with open(target_out, "ab") as out, open(tmp_path / "target.err", "ab") as err:
        target = subprocess.Popen([tool("target-postgres", "target-postgres"), "--config",
                                   str(config)], stdin=subprocess.PIPE, stdout=out,
                                  stderr=err)
        tap = subprocess.Popen([TAP, *tap_args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        for line in tap.stdout:
            target.stdin.write(line)
            if kill_when and kill_when(json.loads(line)):
                tap.send_signal(signal.SIGKILL)
                break
        target.stdin.close()
        tap.wait(timeout=60)
        assert target.wait(timeout=300) == 0, (tmp_path / "target.err").read_text()[-3000:]
    return json.loads(target_out.read_text().splitlines()[-1])


def rows(db, schema):
    return sql_json(db, f"""
        select coalesce(json_agg(json_build_object(
            'pair', json_build_array("ExportBundleId", "ExportBundleRow"),
            'UserId', "UserId"::text, 'SessionId', "SessionId"::text,
            'PageId', "PageId"::text, 'IndvId', "IndvId"::text,
            'EventStart', to_char("EventStart", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'EventTargetText', "EventTargetText",
            'plan', "CustomVars"->>'user_plan_str')), '[]')
        from {schema}.events""")


def assert_each_event_once(db, schema, data):
    got = rows(db, schema)
    pairs = [tuple(r["pair"]) for r in got]
    assert len(pairs) == len(set(pairs)), "a (ExportBundleId, ExportBundleRow) pair repeats"
    expected = expected_events(data)
    assert set(pairs) == set(expected), "events are missing"
    return got, expected


def test_full_sync_lands_exact_values(postgres, sandbox, write_config, tmp_path):
    server = sandbox(bundles=BUNDLES, events_per_bundle=EVENTS)
    pipeline(postgres, "fs_full", ["--config", write_config(server.url)], tmp_path)
    got, expected = assert_each_event_once(postgres, "fs_full", server.data)
    for row in got:
        event = expected[tuple(row["pair"])]
        for field in ("UserId", "SessionId", "PageId", "IndvId"):
            assert row[field] == str(event[field])  # exact, above 2**53 too
        assert row["EventStart"] == event["EventStart"]  # milliseconds kept
        assert row["EventTargetText"] == event.get("EventTargetText")  # unicode intact
        assert row["plan"] == event.get("user_plan_str")  # CustomVars queryable as JSON
    assert any(int(r["UserId"]) > 2**53 for r in got)
    assert any(r["EventTargetText"] and "👩‍💻" in r["EventTargetText"] for r in got)


def test_kill_right_after_a_mid_bundle_state_then_resume_appends_each_event_once(
        postgres, sandbox, write_config, tmp_path):
    server = sandbox(bundles=BUNDLES, events_per_bundle=EVENTS)
    config = write_config(server.url, checkpoint_every=25)
    mid_bundle = []

    def after_third_mid_bundle_state(message):
        if message["type"] == "STATE" and "in_progress" in message["value"]["bookmarks"].get(
                "events", {}):
            mid_bundle.append(message)
        return len(mid_bundle) == 3

    state = pipeline(postgres, "fs_append", ["--config", config], tmp_path,
                     kill_when=after_third_mid_bundle_state)
    assert state == mid_bundle[-1]["value"]
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    pipeline(postgres, "fs_append", ["--config", config, "--state", str(state_file)],
             tmp_path)
    assert_each_event_once(postgres, "fs_append", server.data)


def test_kill_anywhere_with_identity_keys_upserts_each_event_once(
        postgres, sandbox, write_config, tmp_path):
    server = sandbox(bundles=BUNDLES, events_per_bundle=EVENTS)
    config = write_config(server.url, checkpoint_every=25)

    def upsert_on_identity(stream):
        select(stream)
        set_md(stream, [], "table-key-properties", ["ExportBundleId", "ExportBundleRow"])

    catalog_file = edited_catalog(tmp_path, config, upsert_on_identity)
    seen = []

    def after_137_records(message):
        seen.append(message["type"])
        return seen.count("RECORD") == 137  # between checkpoints: the tail comes again

    args = ["--config", config, "--catalog", catalog_file]
    state = pipeline(postgres, "fs_upsert", args, tmp_path, kill_when=after_137_records)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    pipeline(postgres, "fs_upsert", args + ["--state", str(state_file)], tmp_path)
    assert_each_event_once(postgres, "fs_upsert", server.data)


@pytest.mark.parametrize("hard_delete", [True, False], ids=["hard delete", "soft delete"])
def test_full_table_streams_loaded_twice_hold_exactly_the_current_rows(
        postgres, sandbox, write_config, tmp_path, hard_delete):
    server = sandbox(bundles=2, events_per_bundle=20)
    config = write_config(server.url, api_base_url=server.url)
    names = ["users", "segments", "block_rules", "recording_features"]
    args = ["--config", config, "--catalog", catalog_selecting(tmp_path, config, names)]
    schema = "fs_full_table_" + ("hard" if hard_delete else "soft")
    db = {**postgres, "hard_delete": hard_delete}
    pipeline(db, schema, args, tmp_path)
    gone = server.account.users()[0]["id"]
    server.account.remove_user(gone)  # FullStory deleted a user between the runs
    server.account.add_version("blocking")  # and someone changed the blocking rules
    pipeline(db, schema, args, tmp_path)
    live = "" if hard_delete else ' where "_sdc_deleted_at" is null'
    users = sql_json(postgres, f"select json_agg(id order by id) from {schema}.users{live}")
    assert users == sorted(u["id"] for u in server.account.users()) and gone not in users
    segments = sql_json(postgres, f"select json_agg(id) from {schema}.segments{live}")
    assert sorted(segments) == sorted(s["id"] for s in server.account.segments())
    rules = sql_json(postgres, f"""select json_agg(json_build_object(
        'ips', "blockedIps", 'lastUpdated', "metadata"->>'lastUpdated'))
        from {schema}.block_rules{live}""")
    current = server.account.current("blocking")
    assert rules == [{"ips": current["blockedIps"],
                      "lastUpdated": current["metadata"]["lastUpdated"]}]
    features = sql_json(postgres, f"""select json_agg(platform order by platform)
        from {schema}.recording_features{live}""")
    assert features == ["mobile", "web"]  # one current row per platform, after two loads
    total = sql_json(postgres, f"select count(*) from {schema}.users")
    assert total == (len(users) if hard_delete else len(users) + 1)  # soft: marked deleted


def test_individuals_upsert_so_the_latest_window_wins(postgres, sandbox, write_config,
                                                      tmp_path):
    server = sandbox(bundles=3, events_per_bundle=60)
    config = write_config(server.url, api_base_url=server.url, end_date="2026-01-04T00:00:00Z")
    args = ["--config", config, "--catalog", catalog_selecting(tmp_path, config, ["individuals"])]
    pipeline(postgres, "fs_people", args, tmp_path)
    got = sql_json(postgres, """select json_object_agg("IndvId"::text, json_build_object(
        'stop', to_char("ExportWindowStop", 'YYYY-MM-DD'), 'events', "NumEvents",
        'plan', "CustomVars"->>'user_plan_str')) from fs_people.individuals""")
    latest = {}
    first = int(server.data.start.timestamp())
    for begin in range(first, first + 3 * 86400, 86400):
        for row in server.data.window_individuals(begin, begin + 86400):
            latest[str(row["IndvId"])] = {
                "stop": f"2026-01-0{(begin - first) // 86400 + 2}",
                "events": row["NumEvents"], "plan": row.get("user_plan_str")}
    assert got == latest  # one row per person, exact 64-bit ids, the latest window's


def test_sessions_and_both_platforms_load_with_their_keys(postgres, sandbox, write_config,
                                                           tmp_path):
    """Sessions upsert on (userId, sessionId) with exact int64 ids, a second run adds only
    the sessions created since the first; each platform's settings are their own rows."""
    from test_sessions import event_sessions

    server = sandbox(bundles=3, events_per_bundle=150)
    names = ["sessions", "domain_settings", "recording_features_history"]
    state = None
    for end in ("2026-01-02T12:00:00Z", "2026-01-04T00:00:00Z"):
        config = write_config(server.url, api_base_url=server.url, end_date=end,
                              sessions_per_user=1000)
        args = ["--config", config, "--catalog", catalog_selecting(tmp_path, config, names)]
        if state is not None:
            path = tmp_path / "state.json"
            path.write_text(json.dumps(state))
            args += ["--state", str(path)]
        state = pipeline(postgres, "fs_sessions", args, tmp_path)
    got = sql_json(postgres, """select json_agg(json_build_array("userId"::text,
        "sessionId"::text, to_char("createdTime" at time zone 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS'))) from fs_sessions.sessions""")
    expected = event_sessions(server.data, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z")
    assert sorted(got) == sorted([str(u), str(s), row["createdTime"][:19]]
                                 for (u, s), row in expected.items())
    assert len(got) == len(expected) > 20
    platforms = sql_json(postgres, "select json_agg(platform order by platform) "
                                   "from fs_sessions.domain_settings")
    assert platforms == ["mobile", "web"]
    versions = sql_json(postgres, """select json_object_agg(platform, n) from (select
        platform, count(*) n from fs_sessions.recording_features_history group by 1) c""")
    assert versions == {p: len(server.account.history("features", p))
                        for p in ("web", "mobile")}
