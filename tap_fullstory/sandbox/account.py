"""The generated FullStory account behind every API the sandbox serves.

Its people appear in the events (data.py), the TYPE_INDIVIDUAL exports and /v2/users; its
segments and recording settings (with their version history) in the account API.
One person is one IndvId everywhere: events carry IndvId, UserId and UserAppKey; an
individual row has that IndvId and Uid = UserAppKey; a user has id = str(UserId) and
uid = UserAppKey. Every person is a user: /v2/users lists anonymous and identified users
alike (FullStory's OpenAPI, ListUsers' `is_identified`); an anonymous user has no uid,
display_name or email. Names, emails and custom properties are the same in all three.
The sessions /sessions/v2 lists for a user are the sessions of that person's events: same
UserId, SessionId and SessionStart. Everything is derived from the data's seed.
"""

import copy
import random
import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import ciso8601

from tap_fullstory.sandbox.settings import GENERATORS, PLATFORMS

DOC_INDV_ID = 5766471436111872123
DOC_USER_ID = 7277135327093248123          # int64 ids above 2**53, as FullStory's are
DOC_EMAIL = "daniel.falko@example.com"
IDENTITY = ("IndvId", "UserId", "UserCreated", "UserAppKey", "UserDisplayName", "UserEmail")
POOL_SIZE = 40
ORG = "o-SANDBOX-na1"
APP = "https://app.fullstory.com/ui/" + ORG

FIRST = ["Zoë", "Ana", "Chidi", "Ólafur", "Mei", "Priya", "Jürgen", "Aiko", "Seán", "Fatima",
         "Lars", "Noa", "Bob"]
LAST = ["Ærøskøbing", "O'Brien", "Okafor", "Nakamura", "Schmidt", "Núñez", "García",
        "Kowalski", 'D"Angelo', "李", "Ng"]
PLANS = {"free": 0, "pro": 49.5, "team": 250, "enterprise": 1234.75}
TAGS = ["vip", "naïve", "beta-tester", "café ☕", "eu"]
CITIES = [("Philadelphia", "US"), ("Zürich", "CH"), ("São Paulo", "BR"), ("東京", "JP"),
          ("Ålesund", "NO")]
PROPERTY_PATHS = {"user_mrr_real": ("billing", "mrr"),
                  "user_trial_end_date": ("billing", "trial_end"),
                  "user_city_str": ("address", "city"),
                  "user_country_str": ("address", "country")}
CREATORS = ["jane@example.com", "raul.nunez@example.com", "ops-bot@example.com"]
ADMINS = CREATORS + ["Jane (jane@example.com)", "Zoë Ærøskøbing (zoe@example.com)"]
BUILT_IN_SEGMENTS = [("everyone", "Everyone"), ("identified", "Identified users"),
                     ("anonymous", "Anonymous users")]
CUSTOM_SEGMENTS = ["Rage clickers", "Checkout abandoners", "Pricing page visitors",
                   "Mobile app users", "Enterprise accounts", "Signed up this week",
                   "Errors on checkout", "Beta testers", "Café ☕ lovers",
                   "Visited /blog/été", 'High "MRR"', "Trials ending soon"]
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def rfc3339(moment):
    """Millisecond RFC 3339 UTC, the way FullStory writes timestamps."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rfc3339_micro(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def documented_person():
    """Daniel Falko, of the address-change session in FullStory's documentation."""
    return {"IndvId": DOC_INDV_ID, "UserId": DOC_USER_ID,
            "UserCreated": "2025-06-01T12:00:00.000Z", "UserAppKey": "user-1339",
            "UserDisplayName": "Daniel Falko", "UserEmail": DOC_EMAIL,
            "user_plan_str": "pro", "user_seats_int": 3, "user_mrr_real": 49.5,
            "user_beta_bool": False, "user_tags_strs": ["vip"],
            "user_city_str": "Philadelphia", "user_country_str": "US"}


@lru_cache(maxsize=16)
def people_pool(seed, start):
    """The account's people: the documented person first, then generated ones, every third
    anonymous (empty identity strings). Each is a dict of the identity fields events carry
    plus its custom `user_*` properties; treat them as read-only."""
    rng = random.Random(f"{seed}:people")
    people = [documented_person()]
    used = {DOC_INDV_ID, DOC_USER_ID, "user-1339"}
    for number in range(1, POOL_SIZE):
        anonymous = number % 3 == 0
        first, last = rng.choice(FIRST), rng.choice(LAST)
        person = {"IndvId": _unique(used, lambda: rng.randrange(2**53 + 1, 2**63 - 1)),
                  "UserId": _unique(used, lambda: rng.randrange(2**53 + 1, 2**63 - 1)),
                  "UserCreated": rfc3339(start - timedelta(days=rng.randrange(1, 400),
                                                           milliseconds=rng.randrange(86_400_000))),
                  "UserAppKey": "", "UserDisplayName": "", "UserEmail": ""}
        if not anonymous:
            person["UserAppKey"] = _unique(used, lambda: f"user-{rng.randrange(10**5)}")
            person["UserDisplayName"] = f"{first} {last}"
            person["UserEmail"] = f"{_ascii(first)}.{number:02d}@example.com"
        person.update(_properties(rng, start))
        people.append(person)
    return tuple(people)


def _unique(used, draw):
    value = draw()
    while value in used:
        value = draw()
    used.add(value)
    return value


def _ascii(name):
    return name.encode("ascii", "ignore").decode().lower() or "user"


def _properties(rng, start):
    plan = rng.choice(list(PLANS))
    props = {"user_plan_str": plan, "user_seats_int": rng.choice([1, 2, 3, 5, 12, 250]),
             "user_mrr_real": PLANS[plan], "user_beta_bool": rng.random() < 0.4,
             "user_tags_strs": rng.sample(TAGS, rng.randrange(0, 3))}
    if plan in ("free", "pro"):  # a trial ends only on the smaller plans
        props["user_trial_end_date"] = rfc3339(start + timedelta(days=rng.randrange(5, 60)))
    if rng.random() < 0.8:
        props["user_city_str"], props["user_country_str"] = rng.choice(CITIES)
    return props


def identity(person):
    """The identity fields every event of `person` carries."""
    return {key: person[key] for key in IDENTITY}


def custom_properties(person):
    """The `user_*` keys of a person or event (lists copied: values are flat)."""
    return {key: list(value) if isinstance(value, list) else value
            for key, value in person.items() if key.startswith("user_")}


def user_properties(person, typed=False):
    """/v2/users `properties`: the person's custom properties by plain name, some nested
    (user_plan_str -> plan, user_city_str -> address.city, user_mrr_real -> billing.mrr).
    typed: each value is (its type suffix, value) instead, for the user's `schema`."""
    nested = {}
    for key, value in custom_properties(person).items():
        path = PROPERTY_PATHS.get(key) or (key[len("user_"):].rsplit("_", 1)[0],)
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = (key.rsplit("_", 1)[1], value) if typed else value
    return nested


class SandboxAccount:
    """Users, segments and recording settings of the account a SandboxData's people
    belong to. Lists and objects returned are copies."""

    def __init__(self, data):
        exports = data.exports()
        first = datetime.fromtimestamp(exports[0]["Start"] if exports else 0, timezone.utc)
        last = datetime.fromtimestamp(exports[-1]["Stop"] if exports else 0, timezone.utc)
        seed = getattr(data, "seed", 1)
        self._data = data
        self._sessions = None
        people = data.people()
        self._users = [_user(p, n) for n, p in enumerate(people)]
        self._segments = _segments(random.Random(f"{seed}:segments"), first)
        self._versions = {}  # (kind, platform) -> [(moment, object)], oldest first
        self._rngs = {}
        kinds = [(kind, platform) for kind, platforms in PLATFORMS.items()
                 for platform in platforms]
        for number, (kind, platform) in enumerate(kinds):
            rng = random.Random(f"{seed}:settings:{kind}:{platform}")
            self._rngs[kind, platform] = rng
            self._versions[kind, platform] = _history(
                rng, kind, platform, first - timedelta(days=60), last,
                ADMINS[number % len(ADMINS)])
        self._lock = threading.Lock()

    def users(self, identified=None, include_schema=False):
        """The users, as /v2/users lists them: every one, or only the identified (True) or
        anonymous (False); `schema` filled only when asked for (include_schema)."""
        return [_as_listed(u, include_schema) for u in self._users
                if identified is None or ("uid" in u) == identified]

    def user(self, user_id, include_schema=False):
        return next((_as_listed(u, include_schema) for u in self._users if u["id"] == user_id),
                    None)

    def segments(self):
        return copy.deepcopy(self._segments)

    def segment(self, segment_id):
        """The segment with `segment_id`, or None."""
        return next((copy.deepcopy(s) for s in self._segments if s["id"] == segment_id), None)

    def sessions(self, uid=None, email=None):
        """The sessions of the identified user with `uid`, or `email` (the union when both
        are given, as FullStory documents), newest first: each (SessionStart as unix
        milliseconds, UserId, SessionId) of that person's events."""
        with self._lock:
            if self._sessions is None:
                self._sessions = _sessions_by_person(self._data.all_events())
            found = set()
            for (person_uid, person_email), sessions in self._sessions.items():
                if (uid and person_uid == uid) or (email and person_email == email):
                    found.update(sessions)
        return sorted(found, reverse=True)

    def remove_user(self, user_id):
        """Delete a user, as FullStory does on request (tests of FULL_TABLE syncs)."""
        with self._lock:
            self._users = [u for u in self._users if u["id"] != user_id]

    def current(self, kind, platform="web"):
        """The newest version of a setting (what its current endpoint answers)."""
        with self._lock:
            return copy.deepcopy(self._versions[_key(kind, platform)][-1][1])

    def history(self, kind, platform="web"):
        """Every version of a setting, newest first."""
        with self._lock:
            return [copy.deepcopy(v) for _, v in reversed(self._versions[_key(kind, platform)])]

    def add_version(self, kind, platform="web", same_moment=False):
        """A newer version of a setting (lastUpdated after every other), now current. With
        `same_moment`, saved in the same instant as the last one: FullStory documents no
        order of versions and nothing that makes lastUpdated unique (the settings history
        reference), so the tap must be right when two versions share it."""
        key = _key(kind, platform)
        with self._lock:
            versions, rng = self._versions[key], self._rngs[key]
            moment, previous = versions[-1]
            if not same_moment:
                moment += timedelta(hours=rng.randrange(1, 72),
                                    microseconds=rng.randrange(10**6))
            created, creator = previous["metadata"]["created"], previous["metadata"]["createdBy"]
            versions.append((moment, _version(rng, kind, platform, previous, moment, created,
                                              creator)))
            return copy.deepcopy(versions[-1][1])


def _sessions_by_person(events):
    """{(uid, email): {(start ms, UserId, SessionId)}} of the identified people in `events`."""
    sessions = {}
    for event in events:
        if event["UserAppKey"]:
            start = ciso8601.parse_rfc3339(event["SessionStart"])
            sessions.setdefault((event["UserAppKey"], event["UserEmail"]), set()).add(
                (int(start.timestamp() * 1000), event["UserId"], event["SessionId"]))
    return sessions


def _key(kind, platform):
    platforms = PLATFORMS[kind]  # KeyError for an unknown kind
    return kind, platform if platform in platforms else platforms[0]


def _user(person, number):
    """The /v2/users User of a person (GetUserResponse in FullStory's OpenAPI): id is
    str(UserId); an identified person's uid, display_name and email are its UserAppKey,
    name and email. `schema` holds the types of its properties ({"properties": {name:
    type}}, the OpenAPI's varsapi.Schema), `type_conflicts` the fields seen with more than
    one type, in the same wrapping."""
    user_id = str(person["UserId"])
    user = {"id": user_id}
    if person["UserAppKey"]:
        user.update({"uid": person["UserAppKey"], "display_name": person["UserDisplayName"],
                     "email": person["UserEmail"]})
    user.update({"is_being_deleted": False, "properties": user_properties(person),
                 "schema": {"properties": _types(user_properties(person, typed=True))},
                 "type_conflicts": {"properties": {"seats": ["int", "str"]}}
                 if number % 5 == 4 else None,
                 "app_url": f"{APP}/user/{user_id}"})
    return user


def _types(typed):
    """{name: type} (nested as the properties are) from {name: (type, value)}."""
    return {name: _types(value) if isinstance(value, dict) else value[0]
            for name, value in typed.items()}


def _as_listed(user, include_schema):
    """A copy of `user`; its schema null unless asked for, as the OpenAPI's example shows."""
    user = copy.deepcopy(user)
    if not include_schema:
        user["schema"] = None
    return user


def _segments(rng, first):
    segments = [{"id": sid, "name": name, "url": f"{APP}/segments/{sid}/people/0"}
                for sid, name in BUILT_IN_SEGMENTS]
    moment = first - timedelta(days=300)
    for name in CUSTOM_SEGMENTS:
        sid = "".join(rng.choice(ALPHABET) for _ in range(12))
        moment += timedelta(days=rng.randrange(1, 25), seconds=rng.randrange(86400),
                            milliseconds=rng.randrange(1000))
        created = rfc3339(moment) if rng.random() < 0.5 else moment.strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        segments.append({"id": sid, "name": name, "creator": rng.choice(CREATORS),
                         "created": created, "url": f"{APP}/segments/{sid}/people/0"})
    return segments


def _history(rng, kind, platform, low, high, creator):
    """8 to 13 versions between `low` and `high`, lastUpdated strictly increasing (at least
    a second apart, so still increasing when written to the millisecond)."""
    span = (high - low).total_seconds()
    moments = sorted(low + timedelta(seconds=rng.random() * span, microseconds=rng.randrange(10**6))
                     for _ in range(rng.randrange(8, 14)))
    for i in range(1, len(moments)):
        moments[i] = max(moments[i], moments[i - 1] + timedelta(seconds=1))
    stamp = rfc3339_micro if rng.random() < 0.5 else rfc3339
    created = stamp(moments[0])
    versions, previous = [], None
    for moment in moments:
        previous = _version(rng, kind, platform, previous, moment, created, creator)
        versions.append((moment, previous))
    return versions


def _version(rng, kind, platform, previous, moment, created, creator):
    stamp = rfc3339_micro if rng.random() < 0.5 else rfc3339
    body = {k: v for k, v in copy.deepcopy(previous or {}).items() if k != "metadata"}
    body = GENERATORS[kind](rng, body or None, platform, stamp(moment))
    body["metadata"] = {"lastUpdated": stamp(moment), "created": created,
                        "lastUpdatedBy": rng.choice(ADMINS), "createdBy": creator}
    return body
