"""The streams, declared: what each is, which API reads it, its key and replication.

Discovery, sync, `--about` and the README's stream table all come from STREAMS; a new
endpoint is one row here plus a schema file in schemas/. STREAMS is also the fixed order
in which a run syncs what is selected: the account's small streams first, the two large
file-based ones last, so a long backfill of events never holds the rest back.
"""

import json
from dataclasses import dataclass
from importlib import resources

from tap_fullstory import account_api
from tap_fullstory.access import Needs

EVENT_FIELDS = ("ExportBundleId", "ExportBundleStop", "ExportBundleRow")
WINDOW_FIELDS = ("ExportWindowId", "ExportWindowStop", None)
STANDARD, ARCHITECT = Needs("Standard"), Needs("Architect")
SEGMENT_EXPORT = Needs("Architect", "Segment Export")  # a paid add-on: Enterprise or Advanced


@dataclass(frozen=True)
class Stream:
    name: str
    kind: str            # "file" (units spooled and decoded), "paged" (REST pages) or
                         # "fanout" (one request per identified user)
    api: object          # the FullStory API that reads it (by source, for events)
    key: tuple
    replication: str     # "INCREMENTAL" or "FULL_TABLE"
    replication_key: str
    row: str             # what one record is
    permission: object   # what the API key needs, a Needs (by source, for events)
    endpoint: account_api.Endpoint = None  # paged streams
    unit_fields: tuple = None  # file streams: the unit's (id, stop, row) fields, row optional
    export_type: str = None    # file streams read through Segment Export: its export type
    start_field: str = None    # the field start_date filters on

    def access(self, source):
        """(the API, the permission it needs) for this stream when events come from
        `source`; only events depend on it."""
        api, permission = self.api, self.permission
        if isinstance(api, dict):
            api, permission = api[source], permission[source]
        return api, permission

    @property
    def catch_all(self):
        """The object field holding every key the schema does not declare."""
        return "CustomVars" if self.kind == "file" else "other_fields"

    @property
    def platforms(self):
        """The platforms the stream's rows come from, each row naming its own (none: the
        endpoint has no platform variants)."""
        return self.endpoint.platforms if self.endpoint is not None else ()

    @property
    def history(self):
        return self.kind == "paged" and self.replication == "INCREMENTAL"

    def schema(self):
        """The stream's JSON schema, as shipped in tap_fullstory/schemas/."""
        text = resources.files("tap_fullstory").joinpath(f"schemas/{self.name}.json")
        return json.loads(text.read_text("utf-8"))


def _paged(name, endpoint, key, replication, row, permission):
    """A stream read from one of account_api's endpoints (its path, shown as its API)."""
    replication_key = "lastUpdated" if replication == "INCREMENTAL" else None
    return Stream(name, "paged", f"GET {endpoint.path}", key, replication, replication_key,
                  row, permission, endpoint=endpoint)


def _current(name, kind, row, permission=STANDARD, platforms=()):
    return _paged(name, account_api.settings(kind, platforms), ("platform",) * bool(platforms),
                  "FULL_TABLE", row, permission)


def _history(name, kind, row, permission=STANDARD, platforms=()):
    return _paged(name, account_api.settings_history(kind, platforms),
                  ("platform",) * bool(platforms) + ("lastUpdated",), "INCREMENTAL", row,
                  permission)


BOTH = account_api.WEB_AND_MOBILE


STREAMS = (
    _paged("users", account_api.USERS, ("id",), "FULL_TABLE",
           "a user FullStory knows, anonymous or identified (identified_users_only: only "
           "those identified with FS.identify)", ARCHITECT),
    _paged("segments", account_api.SEGMENTS, ("id",), "FULL_TABLE",
           "a segment, built-in (such as everyone) or saved", STANDARD),
    _current("block_rules", "blocking", "the current IP, user-agent and app blocking rules"),
    _current("domain_settings", "domain", "the current domain settings of one platform "
             "(web, mobile)", platforms=BOTH),
    _current("geo_settings", "geo", "the current geo settings (where sessions are recorded)"),
    _current("privacy_settings", "privacy", "the current privacy settings", ARCHITECT),
    _current("recording_features", "features", "the current recording features of one "
             "platform (web, mobile)", platforms=BOTH),
    _current("target_rules", "targeting", "the current session targeting rules (mobile)"),
    _history("block_rules_history", "blocking", "a version of the blocking rules"),
    _history("domain_settings_history", "domain", "a version of one platform's domain "
             "settings", platforms=BOTH),
    _history("geo_settings_history", "geo", "a version of the geo settings"),
    _history("privacy_settings_history", "privacy", "a version of the privacy settings",
             ARCHITECT),
    _history("recording_features_history", "features",
             "a version of one platform's recording features", platforms=BOTH),
    _history("target_rule_history", "targeting",
             "a version of the session targeting rules (mobile)"),
    Stream("sessions", "fanout", "GET /sessions/v2 per user of GET /v2/users?is_identified=true",
           ("userId", "sessionId"), "INCREMENTAL", "createdTime",
           "a session of an identified user, with its replay link (each user's newest "
           "sessions_per_user)", ARCHITECT, endpoint=account_api.SESSIONS),
    Stream("individuals", "file", "Segment Export TYPE_INDIVIDUAL windows", ("IndvId",),
           "INCREMENTAL", "ExportWindowStop",
           "a person active in a window, with their custom user properties and lifetime "
           "aggregates", SEGMENT_EXPORT,
           unit_fields=WINDOW_FIELDS, export_type="TYPE_INDIVIDUAL"),
    Stream("events", "file",
           {"data_export": "Data Export bundles",
            "segment_export": "Segment Export TYPE_EVENT windows"}, (),
           "INCREMENTAL", "ExportBundleStop", "a captured event",
           {"data_export": Needs("Architect", "Data Export"),
            "segment_export": SEGMENT_EXPORT},
           unit_fields=EVENT_FIELDS, export_type="TYPE_EVENT", start_field="EventStart"),
)
BY_NAME = {stream.name: stream for stream in STREAMS}
