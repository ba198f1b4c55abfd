import json

import pytest
from singer import metadata

from tap_fullstory.discover import discover
from tap_fullstory.streams import STREAMS

# Every field FullStory documents, by JSON type; the catalog must match this table.
DOCUMENTED = {
    "integer": "IndvId UserId SessionId PageId EventModFrustrated EventModDead EventModError "
               "EventModSuspicious EventPageOffset EventSessionOffset EventFirstInputDelay "
               "PageDuration PageActiveDuration PageScreenWidth PageScreenHeight "
               "PageViewportWidth PageViewportHeight PageNumInfos PageNumWarnings "
               "PageNumErrors PageNumEvents PageNumDerivedEvents PageClusterId "
               "PageMaxScrollDepthPercent LoadDomContentTime LoadEventTime "
               "LoadFirstPaintTime LoadLargestPaintTime ReqStatus",
    "number": "EventDuration EventSecondaryDuration EventCumulativeLayoutShift",
    "date-time": "UserCreated SessionStart PageStart EventStart",
    "string": "UserAppKey UserDisplayName UserEmail EventType EventSubType EventCustomName "
              "EventTargetText EventTargetSelectorTok EventTargetSelector EventVarErrorKind "
              "EventVarFields EventWebSourceFileUrl EventMobileSourceFile PageUrl "
              "PageRefererUrl PageIp PageName PageLatLong PageAgent PageUserAgent PageBrowser "
              "PageBrowserVersion PageDevice PagePlatform PageOperatingSystem ReqUrl ReqMethod "
              "AppName AppPackageName AppDeviceModel AppDeviceVendor AppVersion AppOsVersion "
              "AppViewName",
}


# The catalog's streams as the README's table states them: key, replication, replication key.
EXPECTED = {
    "users": (["id"], "FULL_TABLE", None),
    "segments": (["id"], "FULL_TABLE", None),
    "block_rules": ([], "FULL_TABLE", None),
    "domain_settings": (["platform"], "FULL_TABLE", None),
    "geo_settings": ([], "FULL_TABLE", None),
    "privacy_settings": ([], "FULL_TABLE", None),
    "recording_features": (["platform"], "FULL_TABLE", None),
    "target_rules": ([], "FULL_TABLE", None),
    "block_rules_history": (["lastUpdated"], "INCREMENTAL", "lastUpdated"),
    "domain_settings_history": (["platform", "lastUpdated"], "INCREMENTAL", "lastUpdated"),
    "geo_settings_history": (["lastUpdated"], "INCREMENTAL", "lastUpdated"),
    "privacy_settings_history": (["lastUpdated"], "INCREMENTAL", "lastUpdated"),
    "recording_features_history": (["platform", "lastUpdated"], "INCREMENTAL",
                                   "lastUpdated"),
    "target_rule_history": (["lastUpdated"], "INCREMENTAL", "lastUpdated"),
    "sessions": (["userId", "sessionId"], "INCREMENTAL", "createdTime"),
    "individuals": (["IndvId"], "INCREMENTAL", "ExportWindowStop"),
    "events": ([], "INCREMENTAL", "ExportBundleStop"),
}


def catalog():
    return json.loads(json.dumps(discover().to_dict()))  # as --discover prints it


def entry(name="events"):
    return next(s for s in catalog()["streams"] if s["tap_stream_id"] == name)


def test_every_stream_is_discovered_in_sync_order():
    assert [s["tap_stream_id"] for s in catalog()["streams"]] == list(EXPECTED)
    assert [s.name for s in STREAMS] == list(EXPECTED)


def test_every_documented_field_is_typed_and_nullable():
    props = entry()["schema"]["properties"]
    for kind, names in DOCUMENTED.items():
        for name in names.split():
            if kind == "date-time":
                assert props[name] == {"type": ["null", "string"], "format": "date-time"}
            else:
                assert props[name] == {"type": ["null", kind]}, name
    documented = {n for names in DOCUMENTED.values() for n in names.split()}
    extra = set(props) - documented
    assert extra == {"CustomVars", "ExportBundleId", "ExportBundleStop", "ExportBundleRow"}


def test_tap_added_fields():
    props = entry()["schema"]["properties"]
    assert props["CustomVars"]["type"] == ["null", "object"]
    assert props["ExportBundleId"]["type"] == ["integer"]
    assert props["ExportBundleRow"]["type"] == ["integer"]
    assert props["ExportBundleStop"]["format"] == "date-time"
    individuals = entry("individuals")["schema"]["properties"]
    assert individuals["ExportWindowStop"] == {
        "type": ["string"], "format": "date-time",
        "description": "End of the export window; the replication key."}
    assert individuals["IndvId"]["type"] == ["null", "integer"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_stream_metadata_follows_singer_conventions(name):
    stream = entry(name)
    key, method, replication_key = EXPECTED[name]
    assert stream["key_properties"] == key
    assert stream.get("replication_key") == replication_key
    assert stream.get("replication_method") == method
    breadcrumbs = [m["breadcrumb"] for m in stream["metadata"]]
    assert breadcrumbs.count([]) == 1
    mdata = metadata.to_map(stream["metadata"])
    root = {"table-key-properties": key, "forced-replication-method": method,
            "inclusion": "available"}
    if replication_key:
        root["valid-replication-keys"] = [replication_key]
    assert mdata[()] == root
    fields = set(stream["schema"]["properties"])
    assert {b[1] for b in breadcrumbs if b} == fields
    assert len(breadcrumbs) == len(fields) + 1
    automatic = {b[1] for b in breadcrumbs
                 if b and mdata[tuple(b)]["inclusion"] == "automatic"}
    assert automatic == set(key) | ({replication_key} if replication_key else set())
    assert all(mdata[tuple(b)]["inclusion"] in ("automatic", "available") for b in breadcrumbs)
    assert automatic <= fields


@pytest.mark.parametrize("stream", STREAMS, ids=[s.name for s in STREAMS])
def test_schema_file_is_the_catalog_schema(stream):
    assert entry(stream.name)["schema"]["properties"] == stream.schema()["properties"]
    catch_all = stream.schema()["properties"][stream.catch_all]
    assert catch_all["type"] == ["null", "object"]
