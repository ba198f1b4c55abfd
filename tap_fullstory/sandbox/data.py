"""Generated Data Export bundles: realistic, deterministic, served by the sandbox.

Bundle `i` covers [start + i*period, start + (i+1)*period). Its events are generated from
(seed, i) alone, so tests can regenerate exactly what the server sends. Each session is
one of the account's people (account.py), so people recur across sessions and bundles.
"""

import copy
import gzip
import io
import json
import random
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import ciso8601

from tap_fullstory.sandbox.account import (
    DOC_EMAIL,
    DOC_USER_ID,
    custom_properties,
    documented_person,
    identity,
    people_pool,
    rfc3339,
)

__all__ = ["DOC_EMAIL", "DOC_USER_ID", "SandboxData", "documented_session", "individuals",
           "rfc3339"]
DOC_SESSION_ID = 6541880918402351317
NEWER_NAMES = {"PageAgent": "PageUserAgent", "EventTargetSelectorTok": "EventTargetSelector"}

BROWSERS = [("Chrome", "131.0.6778.86", "Desktop", "Windows", "Windows"),
            ("Safari", "18.1", "Mobile", "iOS", "iOS"),
            ("Firefox", "133.0", "Desktop", "Linux", "Linux"),
            ("Edge", "131.0.2903.70", "Desktop", "Windows", "Windows")]
PAGES = ["https://example.com/", "https://example.com/pricing", "https://example.com/cart",
         "https://example.com/search?q=caf%C3%A9&sort=price", "https://example.com/blog/été"]
TEXTS = ["Add to cart", "Buy now 🛒", "Ünïcödé “quotes” — ok", 'Say "hello"\nthen leave',
         "日本語のボタン", "Tab\tand back\\slash", "", "Emoji 👩‍💻 zwj"]
CUSTOM_NAMES = ["Order Completed", "Coupon Applied", "Signup ✅"]


@dataclass(frozen=True)
class SandboxData:
    """The bundles one sandbox serves."""

    bundles: int = 30
    events_per_bundle: int = 200
    start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    period_hours: int = 24
    seed: int = 1
    encoding: str = "mixed"  # or "content-encoding": every body gzip as HTTP content coding

    def exports(self):
        """LIST entries for every bundle, oldest first."""
        period = self.period_hours * 3600
        first = int(self.start.timestamp())
        return [{"Id": (first + i * period) * 100 + self.period_hours * 2,
                 "Start": first + i * period, "Stop": first + (i + 1) * period}
                for i in range(self.bundles)]

    def index_of(self, bundle_id):
        for i, export in enumerate(self.exports()):
            if export["Id"] == bundle_id:
                return i
        return None

    def events(self, index):
        """The events of bundle `index`, as FullStory would export them (by EventStart)."""
        return sorted(self.stream_events(index), key=lambda e: e["EventStart"])

    def stream_events(self, index):
        """The same events as `events`, session by session, without holding them all."""
        rng = random.Random(f"{self.seed}:{index}")
        bundle_start = self.start + timedelta(hours=self.period_hours * index)
        span = self.period_hours * 3600 * 1000
        count = 0
        sessions = [documented_session(bundle_start + timedelta(minutes=90))] if index == 0 \
            else []
        drawn = self._pool()[1:]  # the documented person has only his documented session
        while count < self.events_per_bundle:
            if not sessions:
                offset = rng.randrange(0, max(1, span - 3_600_000))
                sessions.append(_session(rng, bundle_start + timedelta(milliseconds=offset),
                                         rng.choice(drawn)))
            for event in sessions.pop():
                if count == self.events_per_bundle:
                    return
                count += 1
                yield event

    def people(self):
        """The account's people (copies): identity fields as events carry them (IndvId,
        UserId, UserCreated, UserAppKey, UserDisplayName, UserEmail; the strings empty for
        anonymous people) plus their custom `user_*` properties. The first is the person
        of the documented session; sessions are drawn from the others."""
        return copy.deepcopy(list(self._pool()))

    def _pool(self):
        return people_pool(self.seed, self.start)

    def window_events(self, start, stop):
        """The events a Segment Export of [start, stop) (unix seconds) returns, in order,
        with the newer field names that API uses."""
        period = self.period_hours * 3600
        first = int(self.start.timestamp())
        begin_ms, end_ms = start * 1000, stop * 1000
        events = []
        for index in range(max(0, (start - first) // period - 1),
                           min(self.bundles, (stop - first) // period + 1)):
            for event in self.events(index):
                if begin_ms <= event_millis(event) < end_ms:
                    events.append({NEWER_NAMES.get(k, k): v for k, v in event.items()})
        return events

    def window_individuals(self, start, stop):
        """The rows a TYPE_INDIVIDUAL Segment Export of [start, stop) returns, in order: the
        people active in the window, each with lifetime aggregates (see lifetime_rows)."""
        return in_window(lifetime_rows(self), self.window_events(start, stop))

    def all_events(self):
        """Every event the account has, oldest bundle first (newer field names)."""
        exports = self.exports()
        return self.window_events(exports[0]["Start"], exports[-1]["Stop"]) if exports else []

    def open_body(self, index):
        """(binary stream, size, headers) of bundle `index`, for the server."""
        body, headers = self.body(index)
        return io.BytesIO(body), len(body), headers

    def body(self, index):
        """(bytes, headers) of bundle `index`: gzip or plain, in varied JSON layouts."""
        events = self.events(index)
        layout = index % 3
        ascii_only = index % 2 == 1
        if layout == 0:
            text = json.dumps(events, separators=(",", ":"), ensure_ascii=ascii_only)
        elif layout == 1:
            text = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=ascii_only)
                                      for e in events) + "\n]\n"
        else:
            text = json.dumps(events, indent=2, ensure_ascii=ascii_only)
        raw = text.encode("utf-8")
        kind = 2 if self.encoding == "content-encoding" else index % 4
        if kind == 0:    # a gzip file as the payload
            return gzip.compress(raw, mtime=0), {"Content-Type": "application/gzip"}
        if kind == 2:    # gzip as HTTP content coding
            return gzip.compress(raw, mtime=0), {"Content-Type": "application/json",
                                                  "Content-Encoding": "gzip"}
        return raw, {"Content-Type": "application/json"}


def event_millis(event):
    """An event's EventStart in unix milliseconds."""
    return int(ciso8601.parse_rfc3339(event["EventStart"]).timestamp() * 1000)


LAST_FIELDS = {"LastSessionStart": "SessionStart", "LastEventStart": "EventStart",
               "LastPage": "PageUrl", "LastIp": "PageIp", "LastLatLong": "PageLatLong",
               "LastBrowser": "PageBrowser", "LastDevice": "PageDevice",
               "LastPlatform": "PagePlatform", "LastOperatingSystem": "PageOperatingSystem"}
ACTIVE_GAP_MS = 5000  # a longer pause between two events of a session counts as idle


def lifetime_rows(data):
    """{IndvId: TYPE_INDIVIDUAL row} over every event of `data` (a SandboxData or a
    BundleDirectory), computed once per data. FullStory's aggregates (NumSessions,
    TotalSec, …) are lifetime values, not values within the export's timeRange (FullStory
    staff, help-center community post 26260948261399): timeRange only decides which
    individuals appear."""
    rows = _LIFETIME.get(data)
    if rows is None:
        rows = {row["IndvId"]: row for row in individuals(data.all_events(), data.people())}
        _LIFETIME[data] = rows
    return rows


_LIFETIME = weakref.WeakKeyDictionary()


def in_window(rows, events):
    """The rows (copies) of the people active in `events`, in the order they first appear."""
    return [copy.deepcopy(rows[indv]) for indv in dict.fromkeys(e["IndvId"] for e in events)]


def individuals(events, people=()):
    """TYPE_INDIVIDUAL rows: one per person in `events`, in the order they first appear.

    The aggregates cover `events` (lifetime_rows passes every event of the account): sessions,
    pages and events counted, TotalSec the sum of each session's first-to-last event span,
    ActiveSec the same without pauses over 5 s, the Last* fields from the person's latest
    event (absent when that event lacks the field). Uid is absent for anonymous people;
    their DisplayName and Email are "" as in their events. The person's custom `user_*`
    properties come from `people` (by IndvId), else from the events' own values.
    """
    known = {person["IndvId"]: person for person in people}
    seen = {}
    for event in events:
        moment = event_millis(event)
        row = seen.setdefault(event["IndvId"], {"sessions": {}, "pages": set(), "events": 0,
                                                "last": (moment, event), "props": {}})
        row["sessions"].setdefault(event["SessionId"], []).append(moment)
        row["pages"].add(event.get("PageId"))
        row["events"] += 1
        if moment >= row["last"][0]:
            row["last"] = (moment, event)
        if event["IndvId"] not in known:
            row["props"].update(custom_properties(event))
    return [_individual(indv, row, known.get(indv)) for indv, row in seen.items()]


def _individual(indv_id, row, person):
    last = row["last"][1]
    who = person or last
    out = {"IndvId": indv_id, "Created": who["UserCreated"]}
    if who["UserAppKey"]:
        out["Uid"] = who["UserAppKey"]
    total = active = 0
    for moments in row["sessions"].values():
        moments.sort()
        total += moments[-1] - moments[0]
        active += sum(min(b - a, ACTIVE_GAP_MS) for a, b in zip(moments, moments[1:], strict=False))
    out.update({"DisplayName": who["UserDisplayName"], "Email": who["UserEmail"],
                "NumSessions": len(row["sessions"]), "NumPages": len(row["pages"]),
                "NumEvents": row["events"], "TotalSec": total // 1000,
                "ActiveSec": active // 1000})
    out.update({name: last[field] for name, field in LAST_FIELDS.items() if field in last})
    out.update(custom_properties(person) if person else row["props"])
    return out


def _ids(rng):
    return rng.randrange(2**53 + 1, 2**63 - 1)


def _page_fields(rng, url, page_start, mobile):
    browser, version, device, platform, os_name = rng.choice(BROWSERS)
    fields = {
        "PageId": _ids(rng), "PageStart": rfc3339(page_start), "PageUrl": url,
        "PageRefererUrl": rng.choice(["", "https://www.google.com/", "https://t.co/x"]),
        "PageIp": f"203.0.113.{rng.randrange(1, 255)}",
        "PageLatLong": f"{rng.uniform(-60, 60):.4f},{rng.uniform(-170, 170):.4f}",
        "PageBrowser": browser, "PageBrowserVersion": version, "PageDevice": device,
        "PagePlatform": platform, "PageOperatingSystem": os_name,
        "PageDuration": rng.randrange(1000, 600000), "PageActiveDuration": rng.randrange(0, 90000),
        "PageScreenWidth": 1920, "PageScreenHeight": 1080,
        "PageViewportWidth": rng.choice([1280, 1440, 390]), "PageViewportHeight": 800,
        "PageNumInfos": rng.randrange(0, 3), "PageNumWarnings": 0,
        "PageNumErrors": rng.randrange(0, 2), "PageNumEvents": rng.randrange(5, 80),
        "PageNumDerivedEvents": rng.randrange(0, 5), "PageClusterId": rng.randrange(1, 400),
        "PageMaxScrollDepthPercent": rng.randrange(0, 101),
        "PageName": rng.choice(["Home", "Pricing", "Cart", ""]),
    }
    agent = f"Mozilla/5.0 ({os_name}) {browser}/{version}"
    fields["PageUserAgent" if rng.random() < 0.5 else "PageAgent"] = agent
    if mobile:
        fields.update({"AppName": "Example Shop", "AppPackageName": "com.example.shop",
                       "AppDeviceModel": "iPhone15,2", "AppDeviceVendor": "Apple",
                       "AppVersion": "4.2.0", "AppOsVersion": "18.1",
                       "AppViewName": "CheckoutViewController"})
    return fields


def _event(rng, kind, person):
    event = {"EventType": kind}
    if kind == "click":
        event.update({"EventTargetText": rng.choice(TEXTS),
                      "EventModFrustrated": rng.choice([0, 0, 1]),
                      "EventModDead": rng.choice([0, 0, 0, 2]),
                      "EventModSuspicious": rng.choice([0, 0, 0, 0, 1])})
        event["EventTargetSelectorTok" if rng.random() < 0.5 else "EventTargetSelector"] = \
            "div.cart > button#buy[data-x=\"1\"]"
    elif kind == "change":
        event["EventTargetText"] = rng.choice(TEXTS)
    elif kind == "navigate":
        event["EventSubType"] = rng.choice(["navigate", "reload", "back_forward"])
    elif kind == "load":
        event.update({"LoadDomContentTime": rng.randrange(100, 3000),
                      "LoadEventTime": rng.randrange(200, 5000),
                      "LoadFirstPaintTime": rng.randrange(50, 2000),
                      "LoadLargestPaintTime": rng.randrange(100, 4000),
                      "EventFirstInputDelay": rng.randrange(0, 300),
                      "EventCumulativeLayoutShift": round(rng.random() / 10, 4)})
    elif kind == "request":
        event.update({"ReqUrl": "https://api.example.com/v1/cart?id=" + str(rng.randrange(99)),
                      "ReqMethod": rng.choice(["GET", "POST"]),
                      "ReqStatus": rng.choice([200, 201, 404, 500]),
                      "EventDuration": round(rng.uniform(5, 900), 3),
                      "EventSecondaryDuration": rng.choice([0, 12.5, 40])})
    elif kind == "custom":
        event.update({"EventCustomName": rng.choice(CUSTOM_NAMES),
                      "evt_order_id_str": f"ord-{rng.randrange(10**6)}",
                      "evt_order.total_real": rng.choice([4, 6.75, 129.99]),
                      "evt_order.items_strs": ["mug", "café ☕"],
                      "evt_coupon_bool": rng.random() < 0.3,
                      "evt_quantities_ints": [1, 2, 3],
                      "evt_shipped_date": "2026-01-03T10:00:00.000Z"})
    elif kind == "exception":
        event.update({"EventSubType": "uncaught", "EventVarErrorKind": "TypeError",
                      "EventVarFields": "x is undefined\n  at checkout.js:12",
                      "EventWebSourceFileUrl": "https://example.com/static/checkout.js",
                      "EventModError": 1})
    elif kind == "uservar":
        event.update(custom_properties(person))
    elif kind == "pageview":
        event.update({"page_category_str": "checkout", "page_experiment.arm_str": "B",
                      "page_scores_reals": [0.5, 1, 2.25]})
    elif kind == "console_message":
        event.update({"EventSubType": "error", "EventMobileSourceFile": "App.swift:42"})
    return event


KINDS = ["click", "click", "click", "change", "navigate", "load", "request", "custom",
         "exception", "uservar", "pageview", "console_message", "thrash", "highlight"]


def _session(rng, session_start, person):
    """A session of `person`: one to three pages, several events each."""
    mobile = rng.random() < 0.15
    user = identity(person)
    session = {"SessionId": _ids(rng), "SessionStart": rfc3339(session_start)}
    events, moment = [], session_start
    for _ in range(rng.randrange(1, 4)):
        page_start = moment
        page = _page_fields(rng, rng.choice(PAGES), page_start, mobile)
        for _ in range(rng.randrange(2, 9)):
            moment += timedelta(milliseconds=rng.randrange(50, 20000))
            event = {**user, **session, **page, **_event(rng, rng.choice(KINDS), person)}
            event["EventStart"] = rfc3339(moment)
            event["EventPageOffset"] = int((moment - page_start).total_seconds() * 1000)
            event["EventSessionOffset"] = int((moment - session_start).total_seconds() * 1000)
            if rng.random() < 0.1:
                event.pop("PageRefererUrl", None)   # inapplicable fields are absent
            events.append(event)
    return events


def documented_session(start):
    """The address-change session from FullStory's and Stitch's documentation."""
    user = {**identity(documented_person()),
            "SessionId": DOC_SESSION_ID, "SessionStart": rfc3339(start),
            "PageBrowser": "Chrome", "PageDevice": "Desktop", "PagePlatform": "Windows",
            "PageUserAgent": "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
            "PageIp": "198.51.100.7", "PageLatLong": "39.9526,-75.1652"}
    account = {"PageId": 8871234567890123401, "PageStart": rfc3339(start),
               "PageUrl": "https://example.com/my-account", "PageName": "My Account"}
    update = {"PageId": 8871234567890123402,
              "PageStart": rfc3339(start + timedelta(seconds=9)),
              "PageUrl": "https://example.com/update-address", "PageName": "Update Address",
              "PageRefererUrl": "https://example.com/my-account"}
    steps = [
        (0, account, {"EventType": "navigate", "EventSubType": "navigate"}),
        (7_412, account, {"EventType": "click", "EventTargetText": "Update Address",
                          "EventTargetSelector": "button#update-address"}),
        (9_020, update, {"EventType": "navigate", "EventSubType": "navigate"}),
        (15_377, update, {"EventType": "click", "EventTargetText": "Street address",
                          "EventTargetSelector": "input#street"}),
        (31_950, update, {"EventType": "change", "EventTargetText": "1339 Chestnut Street",
                          "EventTargetSelector": "input#street"}),
        (36_204, update, {"EventType": "click", "EventTargetText": "Save Changes",
                          "EventTargetSelector": "button[type=\"submit\"]"}),
    ]
    events = []
    for offset_ms, page, fields in steps:
        moment = start + timedelta(milliseconds=offset_ms)
        page_start = datetime.strptime(page["PageStart"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc)
        events.append({**user, **page, **fields, "EventStart": rfc3339(moment),
                       "EventSessionOffset": offset_ms,
                       "EventPageOffset": int((moment - page_start).total_seconds() * 1000),
                       "user_plan_str": "pro"})
    return events
