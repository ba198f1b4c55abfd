"""FullStory's paged REST endpoints on api.fullstory.com: users, segments, settings.

    GET /v2/users                                   -> {"results": [...], "next_page_token"}
    GET /segments/v1?limit=100                      -> {"segments": [...], "nextPaginationToken"}
    GET /settings/recording/v1/{kind}               -> one bare object (the current settings)
    GET /settings/recording/v1/{kind}/history?limit=100 -> {"versions": [...], token}

FullStory spells the page token differently per endpoint and per document, so one pager
reads every spelling it has published and stops only on a missing or empty token.
"""

from dataclasses import dataclass, field

from tap_fullstory.errors import UnexpectedAnswer

SETTING = "api_base_url"
NEXT_TOKENS = ("next_page_token", "nextPaginationToken", "next_pagination_token")
PAGE_LIMIT = 100  # the most /segments/v1 and the history endpoints answer per page


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint: its path, where its records sit in the answer (None: the answer is
    one record), and the query parameter that carries the page token (None: not paged)."""

    path: str
    records: str = None
    token_param: str = None
    params: dict = field(default_factory=dict)


USERS = Endpoint("/v2/users", "results", "page_token")
SEGMENTS = Endpoint("/segments/v1", "segments", "paginationToken", {"limit": PAGE_LIMIT})


def settings(kind):
    """The current recording settings of `kind` (blocking, domain, privacy, features)."""
    return Endpoint(f"/settings/recording/v1/{kind}")


def settings_history(kind):
    """Every version of the recording settings of `kind`, newest first."""
    return Endpoint(f"/settings/recording/v1/{kind}/history", "versions", "paginationToken",
                    {"limit": PAGE_LIMIT})


def next_token(answer):
    """The next page's token in any published spelling, or None on the last page."""
    for name in NEXT_TOKENS:
        token = answer.get(name)
        if token not in (None, ""):
            return str(token)
    return None


def pages(transport, base_url, endpoint, what, hints=None):
    """Yield each page's records (a list of objects) of `endpoint`, first page first."""
    token, seen = None, set()
    while True:
        params = dict(endpoint.params)
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
        yield records
        token = next_token(answer) if endpoint.token_param else None
        if token is None:
            return
        if token in seen:
            raise UnexpectedAnswer(f"FullStory answered {what} with a page token it had "
                                   "already given; stopping rather than reading pages for "
                                   "ever.")
        seen.add(token)
