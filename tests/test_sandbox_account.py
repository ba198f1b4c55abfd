"""The sandbox's account API and individuals, through real HTTP to an in-process server:
one generated account, the same people in events, individuals and users."""

import copy
import gzip
import json
from pathlib import Path

import jsonschema
import orjson
import pytest
import requests
from ciso8601 import parse_rfc3339

from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.faults import Faults
from tap_fullstory.sandbox.server import SandboxServer

KEY = "account-key"
KINDS = ["blocking", "domain", "geo", "privacy", "features", "targeting"]
DAY = 86400
OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "fullstory-openapi" / \
    "users.sdk.swagger.json"


@pytest.fixture
def serve():
    """serve(**SandboxServer arguments) -> (server, a requests session with the key)."""
    servers = []

    def start(data=None, **kwargs):
        server = SandboxServer(data or SandboxData(bundles=4, events_per_bundle=150),
                               api_key=KEY, rate=(0, 1.0), **kwargs).start()
        servers.append(server)
        session = requests.Session()
        session.headers["Authorization"] = f"Basic {KEY}"
        return server, session

    yield start
    for server in servers:
        server.stop()


def pages(session, url, items_key, token_out, token_in, params=None):
    """Every page of a listing, following its tokens; the answers in order."""
    answers, params = [], dict(params or {})
    while True:
        answer = session.get(url, params=params)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
        token = answers[-1].get(token_out)
        if not token:
            return answers
        params[token_in] = token
        assert len(answers) < 50, "the tokens never end"


def test_users_are_every_person_ten_a_page_and_filter_on_is_identified(serve):
    server, session = serve()
    answers = pages(session, server.url + "/v2/users", "results", "next_page_token",
                    "page_token")
    people = server.data.people()
    assert [len(a["results"]) for a in answers] == [10] * (len(people) // 10) + (
        [len(people) % 10] if len(people) % 10 else [])  # 10 a page, whatever page_size
    assert "next_page_token" not in answers[-1]  # the last page has no token at all
    assert all(a["next_page_token"] for a in answers[:-1])
    users = [u for a in answers for u in a["results"]]
    assert {a["total_records"] for a in answers} == {str(len(users))}
    assert users == server.account.users()
    assert [u["id"] for u in users] == [str(p["UserId"]) for p in people]
    for user, person in zip(users, people, strict=True):
        if person["UserAppKey"]:
            assert (user["uid"], user["display_name"], user["email"]) == (
                person["UserAppKey"], person["UserDisplayName"], person["UserEmail"])
        else:
            assert not {"uid", "display_name", "email"} & set(user)
        assert user["properties"]["plan"] == person["user_plan_str"]
    assert any("uid" not in u for u in users) and any("uid" in u for u in users)
    assert any(isinstance(u["properties"].get("address"), dict) for u in users)
    assert {type(u["type_conflicts"]) for u in users} == {type(None), dict}
    assert all(u["schema"] is None and u["is_being_deleted"] is False for u in users)
    for flag, wanted in (("true", True), ("false", False), ("TRUE", True)):
        some = [u for a in pages(session, server.url + "/v2/users", "results",
                                 "next_page_token", "page_token", {"is_identified": flag})
                for u in a["results"]]
        assert some == [u for u in users if ("uid" in u) == wanted]
    bad = session.get(server.url + "/v2/users", params={"is_identified": "yes"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_argument")
    one = session.get(server.url + "/v2/users/" + users[3]["id"])
    assert one.json() == users[3]
    missing = session.get(server.url + "/v2/users/123")
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message"}


def test_include_schema_fills_schema_with_the_properties_types(serve):
    server, session = serve()
    answers = pages(session, server.url + "/v2/users", "results", "next_page_token",
                    "page_token", {"include_schema": "true"})
    users = [u for a in answers for u in a["results"]]
    assert users == server.account.users(include_schema=True)
    daniel = next(u for u in users if u.get("uid") == "user-1339")
    assert daniel["schema"]["properties"]["plan"] == "str"
    assert daniel["schema"]["properties"]["billing"] == {"mrr": "real"}
    assert daniel["schema"]["properties"]["seats"] == "int"
    one = session.get(server.url + "/v2/users/" + daniel["id"],
                      params={"include_schema": "true"})
    assert one.json() == daniel


def openapi_validator(definition):
    """A validator of FullStory's OpenAPI `definition` (in ../shared/fixtures), strict:
    an answer may hold no key the definition does not name (free-form objects aside)."""
    swagger = json.loads(OPENAPI.read_text())
    definitions = copy.deepcopy(swagger["definitions"])
    for name in ("fullstory.v2.users.ListUsersResponse", "fullstory.v2.users.GetUserResponse",
                 "fullstory.v2.apierror.ErrorResponse"):
        definitions[name]["additionalProperties"] = False
    user = definitions["fullstory.v2.users.GetUserResponse"]["properties"]
    for name in ("schema", "type_conflicts"):
        # Swagger 2 cannot say nullable; the definition's own example has both as null.
        user[name] = {"anyOf": [{"type": "null"}, user[name]]}
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}",
                                       "definitions": definitions})


@pytest.mark.parametrize("params", [{}, {"include_schema": "true"}, {"is_identified": "true"},
                                    {"is_identified": "false", "include_schema": "false"}])
def test_users_answers_validate_against_fullstorys_openapi(serve, params):
    server, session = serve()
    listing = openapi_validator("fullstory.v2.users.ListUsersResponse")
    one = openapi_validator("fullstory.v2.users.GetUserResponse")
    answers = pages(session, server.url + "/v2/users", "results", "next_page_token",
                    "page_token", params)
    for answer in answers:
        listing.validate(answer)
        for user in answer["results"]:
            one.validate(session.get(f"{server.url}/v2/users/{user['id']}",
                                     params=params).json())
    error = openapi_validator("fullstory.v2.apierror.ErrorResponse")
    error.validate(session.get(server.url + "/v2/users/123").json())
    error.validate(session.get(server.url + "/v2/users", params={"is_identified": "1"}).json())


def test_the_openapi_validator_refuses_what_fullstory_would_not_send():
    listing = openapi_validator("fullstory.v2.users.ListUsersResponse")
    good = {"results": [{"id": "1", "is_being_deleted": False}], "total_records": "1"}
    listing.validate(good)
    for bad in ({**good, "total_records": 1},                      # a number, not a string
                {"results": [{"id": "1"}], "total_records": "1"},  # is_being_deleted missing
                {**good, "next_pagination_token": "x"},             # not this API's spelling
                {"results": [{"id": 1, "is_being_deleted": False}], "total_records": "1"}):
        with pytest.raises(jsonschema.ValidationError):
            listing.validate(bad)


@pytest.mark.parametrize("spelling, token_out, token_in", [
    ("documented", "nextPaginationToken", "paginationToken"),
    ("alternate", "next_pagination_token", "pagination_token"),
])
def test_segments_page_with_either_spelling_and_end_on_an_empty_token(serve, spelling,
                                                                       token_out, token_in):
    server, session = serve(token_spelling=spelling)
    other = {"nextPaginationToken", "next_pagination_token"} - {token_out}
    answers = pages(session, server.url + "/segments/v1", "segments", token_out, token_in)
    assert len(answers) >= 2 and all(len(a["segments"]) <= 7 for a in answers)
    assert answers[-1][token_out] == ""  # this listing sends "" on its last page
    assert not any(other & set(a) for a in answers)
    segments = [s for a in answers for s in a["segments"]]
    assert segments == server.account.segments()
    everyone = next(s for s in segments if s["id"] == "everyone")
    assert "created" not in everyone and "creator" not in everyone
    custom = [s for s in segments if "created" in s]
    assert len(custom) >= 12
    assert all(parse_rfc3339(s["created"]) and "@" in s["creator"] for s in custom)
    three = session.get(server.url + "/segments/v1", params={"limit": 3}).json()
    assert len(three["segments"]) == 3
    mine = pages(session, server.url + "/segments/v1", "segments", token_out, token_in,
                 {"creator": custom[0]["creator"]})
    assert [s for a in mine for s in a["segments"]] == [
        s for s in custom if s["creator"] == custom[0]["creator"]]


@pytest.mark.parametrize("spelling", ["documented", "alternate"])
@pytest.mark.parametrize("kind", KINDS)
def test_history_is_newest_first_in_pages_and_its_newest_is_current(serve, kind, spelling):
    server, session = serve(token_spelling=spelling)
    token_out = {"documented": "nextPaginationToken", "alternate": "next_pagination_token"}
    url = f"{server.url}/settings/recording/v1/{kind}/history"
    answers = pages(session, url, "versions", token_out[spelling], "paginationToken")
    assert len(answers) >= 2 and all(len(a["versions"]) <= 7 for a in answers)
    assert set(answers[-1]) == {"versions"}  # this listing omits the token on its last page
    versions = [v for a in answers for v in a["versions"]]
    assert versions == server.account.history(kind) and 8 <= len(versions) <= 13
    stamps = [parse_rfc3339(v["metadata"]["lastUpdated"]) for v in versions]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)
    assert all(set(v["metadata"]) == {"lastUpdated", "created", "lastUpdatedBy", "createdBy"}
               for v in versions)
    current = session.get(f"{server.url}/settings/recording/v1/{kind}")
    assert current.status_code == 200 and current.json() == versions[0]


def test_settings_have_the_documented_fields(serve):
    server, _ = serve()
    fields = {"blocking": {"blockedIps", "blockedUas", "blockedAppIds"},
              "domain": {"onlyRecordKnownDomains", "domains"},
              "geo": {"recordGeoMode", "recordGeoZones"},
              "privacy": {"elementBlocks", "ajaxWatches", "discardIpAddresses",
                          "defaultPrivacyMode", "elementRuleGroups"},
              "features": {"enabled", "consoleWatcher", "ajaxWatcher", "resourceUploading",
                           "recordingShutoff", "clientSideRageClick"},
              "targeting": {"sessionTargetingRules"}}
    history = {kind: server.account.history(kind) for kind in KINDS}
    for kind, versions in history.items():
        assert all(set(v) == fields[kind] | {"metadata"} for v in versions), kind
    stamps = [v["metadata"][k] for vs in history.values() for v in vs
              for k in ("created", "lastUpdated")]
    assert {len(s.split(".")[1]) for s in stamps} == {4, 7}  # ms and µs: "123Z", "123456Z"
    assert any("(" in v["metadata"]["createdBy"] for vs in history.values() for v in vs)
    blocks = [b for v in history["privacy"] for b in v["elementBlocks"]]
    assert set(blocks[0]) == {"selector", "consent", "notes", "type", "scope", "lastUpdated",
                              "label", "targetingConditions", "editable",
                              "exceptionSelectors", "groupId"}
    assert "0001-01-01T00:00:00Z" in {b["lastUpdated"] for b in blocks}
    assert {type(b["targetingConditions"]) for b in blocks} == {dict, type(None)}


def test_features_and_domain_take_a_platform(serve):
    server, session = serve()
    base = server.url + "/settings/recording/v1/"
    for kind in ("features", "domain"):
        web = session.get(base + kind).json()
        assert web == session.get(base + kind, params={"platform": "web"}).json()
        mobile = session.get(base + kind, params={"platform": "mobile"}).json()
        assert mobile == server.account.current(kind, "mobile") and mobile != web
        history = session.get(base + kind + "/history", params={"platform": "mobile"}).json()
        assert history["versions"][0] == mobile
        assert session.get(base + kind, params={"platform": "tv"}).status_code == 400


def test_add_version_makes_a_newer_current_version(serve):
    server, session = serve()
    url = server.url + "/settings/recording/v1/blocking"
    before = pages(session, url + "/history", "versions", "nextPaginationToken",
                   "paginationToken")
    older = [v for a in before for v in a["versions"]]
    added = server.account.add_version("blocking")
    assert session.get(url).json() == added == server.account.current("blocking")
    after = pages(session, url + "/history", "versions", "nextPaginationToken",
                  "paginationToken")
    assert [v for a in after for v in a["versions"]] == [added] + older
    newest = max(parse_rfc3339(v["metadata"]["lastUpdated"]) for v in older)
    assert parse_rfc3339(added["metadata"]["lastUpdated"]) > newest
    assert added["metadata"]["created"] == older[0]["metadata"]["created"]


def test_limit_is_capped_by_the_page_size_and_by_100(serve):
    server, session = serve(page_size=0)
    url = server.url + "/settings/recording/v1/targeting/history"
    everything = session.get(url).json()["versions"]
    assert everything == server.account.history("targeting")  # 20 by default: one page
    assert len(session.get(url, params={"limit": 5}).json()["versions"]) == 5
    assert len(session.get(url, params={"limit": 1000}).json()["versions"]) == len(everything)
    assert session.get(url, params={"limit": "many"}).status_code == 400
    capped, _ = serve(page_size=2)
    answer = session.get(capped.url + "/segments/v1", params={"limit": 50}).json()
    assert len(answer["segments"]) == 2


@pytest.mark.parametrize("path, token", [
    ("/v2/users", "page_token"),
    ("/segments/v1", "paginationToken"),
    ("/segments/v1", "pagination_token"),
    ("/settings/recording/v1/privacy/history", "paginationToken"),
])
def test_a_token_the_server_did_not_issue_answers_400(serve, path, token):
    server, session = serve()
    answer = session.get(server.url + path, params={token: "bm90LWEtdG9rZW4="})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_argument" and answer.json()["message"]


def test_a_token_from_another_listing_answers_400(serve):
    server, session = serve()
    users = session.get(server.url + "/v2/users").json()
    answer = session.get(server.url + "/segments/v1",
                         params={"paginationToken": users["next_page_token"]})
    assert answer.status_code == 400
    geo = session.get(server.url + "/settings/recording/v1/geo/history").json()
    answer = session.get(server.url + "/settings/recording/v1/blocking/history",
                         params={"paginationToken": geo["nextPaginationToken"]})
    assert answer.status_code == 400


def test_bearer_and_a_doubled_slash_work_as_the_older_tap_sends_them(serve):
    server, _ = serve()
    bearer = {"Authorization": f"Bearer {KEY}"}
    # base_url + "/" + "/v2/users" gives "//"; with a trailing slash on base_url, "///"
    for path in ("//v2/users", "///segments/v1", "//settings/recording/v1//geo/history",
                 "//api/v1//export/list"):
        assert requests.get(server.url + path, headers=bearer).status_code == 200, path
    for header in (f"Bearer {KEY}x", "Bearer", KEY, f"Basic {KEY}x"):
        answer = requests.get(server.url + "/v2/users", headers={"Authorization": header})
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized" and answer.json()["message"]


def test_forbidden_path_answers_403_on_that_path_only(serve):
    server, session = serve(faults=Faults.parse("forbidden-path=/v2/users"))
    for path in ("/v2/users", "//v2/users", "/v2/users/" + server.account.users()[0]["id"]):
        answer = session.get(server.url + path)
        assert answer.status_code == 403, path
        assert answer.json()["code"] == "permission_denied" and answer.json()["message"]
    assert session.get(server.url + "/segments/v1").status_code == 200
    assert session.get(server.url + "/api/v1/export/list").status_code == 200
    two = Faults.parse("forbidden-path=/segments/v1,forbidden-path=/settings/")
    assert two.forbids("/segments/v1") and two.forbids("/settings/recording/v1/geo")
    assert not two.forbids("/v2/users")


def test_api_429_every_counts_account_api_requests_only(serve):
    server, session = serve(faults=Faults.parse("api-429-every=3"))
    statuses = []
    for path in ("/v2/users", "/api/v1/export/list", "/segments/v1",
                 "/settings/recording/v1/geo", "/api/v1/export/list",
                 "/settings/recording/v1/geo/history", "/v2/users", "/segments/v1"):
        answer = session.get(server.url + path)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["code"] == "too_many_requests"
    assert statuses == [200, 200, 200, 429, 200, 200, 200, 429]


def export(session, server, body):
    """Create an export, poll it to COMPLETED, download its file (without the key)."""
    created = session.post(server.url + "/segments/v1/exports", json=body)
    assert created.status_code == 200, created.text
    operation = created.json()["operationId"]
    for _ in range(10):
        state = session.get(f"{server.url}/operations/v1/{operation}").json()
        if state["state"] == "COMPLETED":
            break
    assert state["state"] == "COMPLETED"
    search = state["results"]["searchExportId"]
    location = session.get(f"{server.url}/search/v1/exports/{search}/results").json()
    body = requests.get(location["location"])
    assert body.status_code == 200
    return gzip.decompress(body.content), server.segment.operations[operation]["export"]


def test_individuals_export_holds_the_people_with_events_in_the_window(serve):
    server, session = serve()
    data = server.data
    start = int(data.start.timestamp()) + DAY
    stop = start + 2 * DAY
    raw, _ = export(session, server, {
        "segmentId": "everyone", "type": "TYPE_INDIVIDUAL", "format": "FORMAT_NDJSON",
        "timeRange": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-04T00:00:00Z"},
        "segmentTimeRange": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-04T00:00:00Z"}})
    rows = [orjson.loads(line) for line in raw.splitlines()]
    assert rows == data.window_individuals(start, stop)
    events = data.window_events(start, stop)
    every = data.all_events()
    assert [r["IndvId"] for r in rows] == list(dict.fromkeys(e["IndvId"] for e in events))
    people = {p["IndvId"]: p for p in data.people()}
    users = {u["uid"]: u for u in server.account.users(identified=True)}
    for row in rows:
        mine = [e for e in every if e["IndvId"] == row["IndvId"]]  # lifetime aggregates
        person = people[row["IndvId"]]
        assert row["NumEvents"] == len(mine)
        assert row["NumSessions"] == len({e["SessionId"] for e in mine})
        assert row["NumPages"] == len({e["PageId"] for e in mine})
        assert 0 <= row["ActiveSec"] <= row["TotalSec"]
        last = max(mine, key=lambda e: e["EventStart"])
        assert (row["LastEventStart"], row["LastPage"]) == (last["EventStart"], last["PageUrl"])
        assert {(e["UserDisplayName"], e["UserEmail"], e["UserCreated"]) for e in mine} == {
            (row["DisplayName"], row["Email"], row["Created"])}
        for event in mine:
            if event["EventType"] == "uservar":
                assert {k: v for k, v in event.items() if k.startswith("user_")} == {
                    k: v for k, v in row.items() if k.startswith("user_")}
        assert {k: v for k, v in row.items() if k.startswith("user_")} == {
            k: v for k, v in person.items() if k.startswith("user_")}
        if "Uid" not in row:
            assert row["DisplayName"] == row["Email"] == "" and not person["UserAppKey"]
            continue
        user = users[row["Uid"]]
        assert (user["display_name"], user["email"]) == (row["DisplayName"], row["Email"])
        assert {user["id"]} == {str(e["UserId"]) for e in mine}
        assert user["properties"]["plan"] == row["user_plan_str"]
    assert any("Uid" not in r for r in rows) and any("Uid" in r for r in rows)
    assert any(r["NumSessions"] > 1 for r in rows)


def test_documented_person_is_an_individual_and_a_user(serve):
    server, session = serve()
    raw, _ = export(session, server, {
        "segmentId": "everyone", "type": "TYPE_INDIVIDUAL", "format": "FORMAT_JSON",
        "timeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        "segmentTimeRange": {"start": "", "end": ""}})
    daniel = next(r for r in json.loads(raw) if r.get("Uid") == "user-1339")
    assert daniel["DisplayName"] == "Daniel Falko" and daniel["NumEvents"] == 6
    assert daniel["user_plan_str"] == "pro" and daniel["LastPage"].endswith("/update-address")
    user = next(u for u in server.account.users(identified=True) if u["uid"] == "user-1339")
    assert user["display_name"] == "Daniel Falko" and user["properties"]["plan"] == "pro"


def test_snake_case_body_and_empty_times_mean_unbounded_and_now(serve):
    server, session = serve()
    raw, spec = export(session, server, {
        "segment_id": "everyone", "type": "TYPE_INDIVIDUAL", "format": "FORMAT_NDJSON",
        "time_range": {"start": "", "end": ""}, "segment_time_range": {"start": "", "end": ""}})
    assert spec.start == 0 and spec.stop > 1_700_000_000  # the time it was created
    rows = [orjson.loads(line) for line in raw.splitlines()]
    assert rows == server.data.window_individuals(0, spec.stop)
    raw, spec = export(session, server, {
        "segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_JSON",
        "timeRange": {"start": "2026-01-02T00:00:00Z", "end": ""},
        "segmentTimeRange": {"start": "", "end": ""}})
    assert json.loads(raw) == server.data.window_events(spec.start, spec.stop)


def test_without_segment_time_range_a_segment_keeps_the_people_of_its_last_30_days(serve):
    """FullStory: timeRange picks which data of the segment's members is exported; the
    segment's own range (everyone: the last 30 days) picks the members."""
    data = SandboxData(bundles=40, events_per_bundle=12)
    first = int(data.start.timestamp())
    now = first + 40 * DAY  # the sandbox's clock: the last 30 days are days 10 to 39
    server, session = serve(data=data, clock=lambda: now)
    window = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-04T00:00:00Z"}
    begin, end = first + DAY, first + 3 * DAY
    recent = {e["IndvId"] for e in data.window_events(now - 30 * DAY, now)}
    for kind, everyone in (("TYPE_EVENT", data.window_events(begin, end)),
                           ("TYPE_INDIVIDUAL", data.window_individuals(begin, end))):
        body = {"segmentId": "everyone", "type": kind, "format": "FORMAT_JSON",
                "timeRange": window}
        lately, _ = export(session, server, body)
        inside, _ = export(session, server, {**body, "segmentTimeRange": window})
        assert json.loads(inside) == everyone
        assert json.loads(lately) == [row for row in everyone if row["IndvId"] in recent]
        assert 0 < len(json.loads(lately)) < len(everyone)  # someone is missing without it


def test_built_in_segments_filter_people_and_an_unknown_one_is_not_found(serve):
    server, session = serve()
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-03T00:00:00Z"}
    rows = {}
    for segment in ("everyone", "identified", "anonymous"):
        raw, _ = export(session, server, {"segmentId": segment, "type": "TYPE_EVENT",
                                          "format": "FORMAT_JSON", "timeRange": window,
                                          "segmentTimeRange": window})
        rows[segment] = json.loads(raw)
    assert rows["identified"] == [e for e in rows["everyone"] if e["UserAppKey"]]
    assert rows["anonymous"] == [e for e in rows["everyone"] if not e["UserAppKey"]]
    assert rows["identified"] and rows["anonymous"]
    body = {"segmentId": "no-such-segment", "type": "TYPE_EVENT", "format": "FORMAT_JSON",
            "timeRange": window}
    missing = session.post(server.url + "/segments/v1/exports", json=body)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    server, session = serve(faults=Faults.parse("unknown-segment=400"))
    missing = session.post(server.url + "/segments/v1/exports", json=body)
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid_argument")
    assert "no-such-segment" in missing.json()["message"]


@pytest.mark.parametrize("body", [
    {"segmentId": "everyone", "type": "TYPE_PAGE", "format": "FORMAT_NDJSON"},
    {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_XML"},
    {"type": "TYPE_EVENT", "format": "FORMAT_NDJSON"},
    {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON",
     "timeRange": {"start": "yesterday", "end": ""}},
    {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON",
     "timeRange": {"start": "2026-01-03T00:00:00Z", "end": "2026-01-02T00:00:00Z"}},
])
def test_bad_export_bodies_answer_400(serve, body):
    server, session = serve()
    answer = session.post(server.url + "/segments/v1/exports", json=body)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_argument"
    assert server.segment.operations == {}


def test_segment_seconds_time_each_operation_on_its_own_clock(serve):
    now = [100.0]
    server, session = serve(segment_seconds=10, segment_polls=0,
                            segment_clock=lambda: now[0])
    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON",
            "timeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}

    def create():
        return session.post(server.url + "/segments/v1/exports", json=body).json()[
            "operationId"]

    def poll(operation):
        answer = session.get(f"{server.url}/operations/v1/{operation}").json()
        return answer["state"], answer["estimatePctComplete"]

    first = create()
    now[0] = 104.0
    second = create()
    for _ in range(5):  # polling often does not hurry an operation (segment_polls is 0)
        assert poll(first) == ("PENDING", 40)
    now[0] = 110.0
    assert poll(first) == ("COMPLETED", 100)
    assert poll(second) == ("PENDING", 60)
    now[0] = 113.999
    assert poll(second) == ("PENDING", 99)
    now[0] = 114.0
    assert poll(second) == ("COMPLETED", 100)


def test_segment_polls_still_count_polls_without_segment_seconds(serve):
    server, session = serve(segment_polls=3)
    operation = session.post(server.url + "/segments/v1/exports", json={
        "segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON",
        "timeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}).json()
    answers = [session.get(f"{server.url}/operations/v1/{operation['operationId']}").json()
               for _ in range(4)]
    assert [(a["state"], a["estimatePctComplete"]) for a in answers] == [
        ("PENDING", 25), ("PENDING", 50), ("PENDING", 75), ("COMPLETED", 100)]
