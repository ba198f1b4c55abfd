"""FullStory's REST endpoints on api.fullstory.com: the key's owner, users, segments,
settings.

    GET /me                                         -> {"email", "orgId", "role"}
    GET /v2/users?include_schema=true[&is_identified=true]
                                 -> {"results": [...], "total_records": "N", "next_page_token"}
    GET /segments/v1?limit=100                      -> {"segments": [...], "nextPaginationToken"}
    GET /settings/recording/v1/{kind}[?platform=web|mobile]
                                 -> one bare object (the current settings)
    GET /settings/recording/v1/{kind}/history?limit=100[&platform=web|mobile]
                                 -> {"versions": [...], token}
    GET /sessions/v2?uid=…&limit=N                  -> {"sessions": [...]} (no paging)

FullStory spells the page token differently per endpoint and per document, so one pager
reads every spelling it has published and stops only on a missing or empty token.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from tap_fullstory.errors import UnexpectedAnswer

SETTING = "api_base_url"
NEXT_TOKENS = ("next_page_token", "nextPaginationToken", "next_pagination_token")
PAGE_LIMIT = 100  # the most /segments/v1 and the history endpoints answer per page
MAX_EMPTY_PAGES = 5  # empty pages in a row that still name a next page: a pager gone wrong


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint: its path, where its records sit in the answer (None: the answer is
    one record), the query parameter that carries the page token (None: not paged), the
    parameters every call sends, and `flags`: (setting, parameter) pairs, the parameter sent
    as true when the config's boolean setting is on. `platforms`: the values of its
    `platform` parameter, each a separate variant with its own records (none: no such
    parameter)."""

    path: str
    records: str = None
    token_param: str = None
    params: dict = field(default_factory=dict)
    flags: tuple = ()
    platforms: tuple = ()

    def query(self, config=None, platform=None):
        """The parameters of every call, with the flags `config` turns on, for `platform`."""
        params = dict(self.params)
        if platform is not None:
            params["platform"] = platform
        for setting, parameter in self.flags:
            if config is not None and getattr(config, setting):
                params[parameter] = "true"
        return params


class Page(NamedTuple):
    """One page of records, and the number of records the listing announces (the
    answer's `total_records`, None where an endpoint gives none)."""

    records: list
    total: int = None


# Anonymous and identified users unless is_identified; `schema` only with include_schema
# (FullStory's OpenAPI, ListUsers). No page size: FullStory answers 10 a page.
USERS = Endpoint("/v2/users", "results", "page_token", {"include_schema": "true"},
                 (("identified_users_only", "is_identified"),))
USERS_PER_PAGE = 10
SEGMENTS = Endpoint("/segments/v1", "segments", "paginationToken", {"limit": PAGE_LIMIT})
ME = "/me"
# The identified users whose sessions are listed: uid is what /sessions/v2 is asked by.
IDENTIFIED_USERS = Endpoint("/v2/users", "results", "page_token", {"is_identified": "true"})
# A user's newest `limit` sessions (default 20); FullStory documents no paging and no
# upper bound for `limit` (developer.fullstory.com, server/sessions/list-sessions).
SESSIONS = Endpoint("/sessions/v2", "sessions")
# Domain settings and recording features exist per platform, each with its own history
# (developer.fullstory.com get-domain-settings, get-rec-features, get-rec-features-history).
WEB_AND_MOBILE = ("web", "mobile")


def settings(kind, platforms=()):
    """The current recording settings of `kind` (blocking, domain, geo, privacy, features,
    targeting), one object per platform."""
    return Endpoint(f"/settings/recording/v1/{kind}", platforms=platforms)


def settings_history(kind, platforms=()):
    """Every version of the recording settings of `kind`, newest first, per platform."""
    return Endpoint(f"/settings/recording/v1/{kind}/history", "versions", "paginationToken",
                    {"limit": PAGE_LIMIT}, platforms=platforms)


def next_token(answer):
    """The next page's token in any published spelling, or None on the last page."""
    for name in NEXT_TOKENS:
        token = answer.get(name)
        if token not in (None, ""):
            return str(token)
    return None


def whoami(transport, base_url):
    """GET /me: the key's {"email", "orgId", "role"} (email blank for a legacy org key)."""
    return transport.json("key check", base_url + ME, SETTING, call="me")


def total_records(answer):
    """The answer's `total_records` (a string in FullStory's OpenAPI) as an int, or None."""
    value = answer.get("total_records")
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def pages(transport, base_url, endpoint, what, hints=None, config=None, platform=None):
    """Yield each Page of `endpoint` (its records a list of objects), first page first;
    `config` turns on the endpoint's flags; `platform` picks one of its platforms."""
    token, seen, empty = None, set(), 0
    while True:
        params = endpoint.query(config, platform)
        if token is not None:
            params[endpoint.token_param] = token
        answer = transport.json(what, base_url + endpoint.path, SETTING, params=params or None,
                                expect=endpoint.records, hints=hints)
        records = [answer] if endpoint.records is None else answer[endpoint.records]
        if records is None:
            records = []
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UnexpectedAnswer(f"FullStory's answer to {what} holds '{endpoint.records}' "
                                   "that is not a list of objects; check that api_base_url "
                                   "points at api.fullstory.com.")
        yield Page(records, total_records(answer))
        token = next_token(answer) if endpoint.token_param else None
        if token is None:
            return
        empty = empty + 1 if not records else 0
        if empty >= MAX_EMPTY_PAGES:
            raise UnexpectedAnswer(f"FullStory answered {what} with {empty} empty pages in a "
                                   "row, each naming a next page; stopping rather than "
                                   "reading pages for ever. Check api_base_url and any "
                                   "proxy in between, then run again.")
        if token in seen:
            raise UnexpectedAnswer(f"FullStory answered {what} with a page token it had "
                                   "already given; stopping rather than reading pages for "
                                   "ever.")
        seen.add(token)


def sessions_of(transport, base_url, uid, limit, what):
    """GET /sessions/v2 for the user with `uid`: the list of session objects FullStory
    answers, newest `limit` at most."""
    params = {"uid": uid, "limit": limit}
    answer = transport.json(what, base_url + SESSIONS.path, SETTING, params=params,
                            expect=SESSIONS.records, call="sessions")
    sessions = answer[SESSIONS.records]
    if sessions is None:
        return []
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise UnexpectedAnswer(f"FullStory's answer to {what} holds 'sessions' that is not a "
                               "list of objects; check that api_base_url points at "
                               "api.fullstory.com.")
    return sessions
