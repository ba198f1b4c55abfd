import json

from singer import metadata

from tap_fullstory.discover import discover, load_schema

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


def entry():
    catalog = json.loads(json.dumps(discover().to_dict()))  # as --discover prints it
    assert [s["tap_stream_id"] for s in catalog["streams"]] == ["events"]
    return catalog["streams"][0]


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


def test_stream_metadata_follows_singer_conventions():
    stream = entry()
    assert stream["key_properties"] == []
    assert stream["replication_key"] == "ExportBundleStop"
    breadcrumbs = [m["breadcrumb"] for m in stream["metadata"]]
    assert breadcrumbs.count([]) == 1
    mdata = metadata.to_map(stream["metadata"])
    assert mdata[()] == {"table-key-properties": [],
                         "forced-replication-method": "INCREMENTAL",
                         "valid-replication-keys": ["ExportBundleStop"],
                         "inclusion": "available"}
    fields = set(stream["schema"]["properties"])
    assert {b[1] for b in breadcrumbs if b} == fields
    assert len(breadcrumbs) == len(fields) + 1
    automatic = {b[1] for b in breadcrumbs
                 if b and mdata[tuple(b)]["inclusion"] == "automatic"}
    assert automatic == {"ExportBundleStop"}
    assert all(mdata[tuple(b)]["inclusion"] in ("automatic", "available") for b in breadcrumbs)


def test_schema_file_is_the_catalog_schema():
    assert entry()["schema"]["properties"] == load_schema()["properties"]
