"""The sandbox's account API (api.fullstory.com): users, segments, recording settings.

    GET /me                                          {email, orgId, role} of the key
    GET /v2/users?page_token=…&is_identified=…&include_schema=…
                                                     {results, total_records, next_page_token}
    GET /v2/users/{id}?include_schema=…              one User
    GET /segments/v1?limit=&paginationToken=…        {segments, nextPaginationToken}
    GET /settings/recording/v1/{kind}                the current version, one bare object
    GET /settings/recording/v1/{kind}/history?…      {versions (newest first), nextPaginationToken}
    GET /sessions/v2?uid=…|email=…&limit=N           {sessions: newest `limit` (default 20)}

Pages hold `limit` items (default 20, at most 100) and never more than the server's
`page_size`. Users take no page size: 10 a page (FullStory support, help-center community
post 26260948261399), whatever page_size says, and every user, anonymous or identified,
unless `is_identified` is given (FullStory's OpenAPI, ListUsers). Tokens are opaque; one
the server did not issue for that listing answers 400. On the last page users and history
omit the token, segments send "". With token_spelling "alternate" segments and history
answer `next_pagination_token`, as FullStory's older documents show.

FullStory documents no order for /v2/users: with `user_order_seed` set the server lists
users in a shuffled order of that seed (each listing consistent across its pages).
/sessions/v2 answers its ids and createdTime as strings, as FullStory's example does;
`session_ids` "numbers" answers them as JSON numbers, as its schema's int64 types allow
(developer.fullstory.com list-sessions-v2). Domain settings and features have a mobile
variant (get-domain-settings, get-rec-features); an account without mobile apps
(`mobile_apps` False) answers it `no_mobile_status`: FullStory documents no answer for that.
"""

import base64
import hashlib
import random
import threading
from urllib.parse import urlencode

from tap_fullstory.sandbox.account import APP, ORG
from tap_fullstory.sandbox.settings import PLATFORMS

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
USERS_PAGE = 10  # what FullStory answers; /v2/users takes no page size
SPELLINGS = {"documented": "nextPaginationToken", "alternate": "next_pagination_token"}
USER_FILTERS = ("uid", "email", "display_name", "is_identified")
KINDS = "|".join(PLATFORMS)


class PageTokens:
    """Opaque page tokens, each naming one listing and an offset into it."""

    def __init__(self):
        self._issued = {}
        self._lock = threading.Lock()

    def issue(self, scope, offset):
        digest = hashlib.sha256(f"{scope}\n{offset}".encode()).digest()[:15]
        token = base64.urlsafe_b64encode(digest).decode()
        with self._lock:
            self._issued[token] = (scope, offset)
        return token

    def offset(self, scope, token):
        """Where `token` continues `scope` (0 without a token); None if not issued for it."""
        if not token:
            return 0
        with self._lock:
            issued = self._issued.get(token)
        return issued[1] if issued and issued[0] == scope else None


class BadRequest(ValueError):
    """A query the real API would refuse with 400 invalid_argument."""


def _page(request, scope, items, size, names):
    """(items on this page, the next page's token or None) for the token in `names`."""
    token = next((request.query[n] for n in names if request.query.get(n)), "")
    offset = request.server.tokens.offset(scope, token)
    if offset is None:
        raise BadRequest(f"page token {token!r} was not issued for this listing")
    end = offset + size
    return items[offset:end], request.server.tokens.issue(scope, end) if end < len(items) \
        else None


def _size(request):
    text = request.query.get("limit", "")
    try:
        limit = int(text) if text else DEFAULT_LIMIT
    except ValueError:
        raise BadRequest(f"limit {text!r} is not an integer") from None
    if limit < 0:
        raise BadRequest(f"limit {limit} is negative")
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    cap = request.server.page_size
    return min(limit, cap) if cap else limit


def _flag(request, name):
    """A boolean query parameter (true or false, as the OpenAPI's boolean), or None."""
    text = request.query.get(name)
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise BadRequest(f"{name} {text!r} must be true or false")
    return text.lower() == "true"


def _spelling(request):
    return SPELLINGS[request.server.token_spelling]


def answers_bad_requests(handler):
    """Turn a BadRequest raised by `handler` into a 400 answer."""
    def wrapped(request, *args):
        try:
            return handler(request, *args)
        except BadRequest as exc:
            return request.send_error_json(400, "invalid_argument", str(exc))
    wrapped.__doc__ = handler.__doc__
    return wrapped


@answers_bad_requests
def list_users(request):
    """Every user, anonymous and identified; filters uid, email, display_name and
    is_identified; include_schema fills `schema`."""
    wanted = {k: request.query[k] for k in USER_FILTERS if k in request.query}
    users = [u for u in request.server.account.users(_flag(request, "is_identified"),
                                                     _flag(request, "include_schema"))
             if all(u.get(key) == value for key, value in wanted.items()
                    if key != "is_identified")]
    if request.server.user_order_seed is not None:
        random.Random(request.server.user_order_seed).shuffle(users)
    page, token = _page(request, "users?" + urlencode(sorted(wanted.items())), users,
                        USERS_PAGE, ("page_token", "pageToken"))
    answer = {"results": page, "total_records": str(len(users)),
              "app_url": f"{APP}/segments/everyone/people/0"}
    if token:
        answer["next_page_token"] = token
    return request.send_json(200, answer)


@answers_bad_requests
def get_user(request, user_id):
    user = request.server.account.user(user_id, _flag(request, "include_schema"))
    if user is None:
        return request.send_error_json(404, "not_found", f"no user {user_id}")
    return request.send_json(200, user)


@answers_bad_requests
def list_segments(request):
    """Built-in and custom segments; filter `creator` (an email)."""
    creator = request.query.get("creator")
    segments = [s for s in request.server.account.segments()
                if creator is None or s.get("creator") == creator]
    page, token = _page(request, f"segments?creator={creator}", segments, _size(request),
                        ("paginationToken", "pagination_token"))
    return request.send_json(200, {"segments": page, _spelling(request): token or ""})


@answers_bad_requests
def current_setting(request, kind):
    platform = _platform(request, kind)
    if not _has_apps(request, platform):
        return _no_apps(request, platform)
    return request.send_json(200, request.server.account.current(kind, platform))


@answers_bad_requests
def setting_history(request, kind):
    platform = _platform(request, kind)
    if not _has_apps(request, platform):
        return _no_apps(request, platform)
    versions = request.server.account.history(kind, platform)
    page, token = _page(request, f"history/{kind}/{platform}", versions, _size(request),
                        ("paginationToken", "pagination_token"))
    answer = {"versions": page}
    if token:
        answer[_spelling(request)] = token
    return request.send_json(200, answer)


def _platform(request, kind):
    """web or mobile for the settings that have both (default web); others ignore it."""
    platform = request.query.get("platform") or "web"
    if len(PLATFORMS[kind]) > 1 and platform not in PLATFORMS[kind]:
        raise BadRequest(f"platform {platform!r} must be web or mobile")
    return platform if platform in PLATFORMS[kind] else PLATFORMS[kind][0]


def _has_apps(request, platform):
    return platform != "mobile" or request.server.mobile_apps


def _no_apps(request, platform):
    status = request.server.no_mobile_status
    code = {400: "invalid_argument", 403: "permission_denied"}.get(status, "not_found")
    return request.send_error_json(status, code, f"no {platform} app is set up for this org")


@answers_bad_requests
def list_sessions(request):
    """The newest `limit` sessions (default 20; FullStory documents no maximum and no
    paging) of the user with `uid` or `email` (the union of both when both are given), as
    dev/list-sessions-v2 shows them: userId, sessionId, createdTime (unix seconds) and
    fsUrl, the replay link built from the two ids."""
    uid, email = request.query.get("uid"), request.query.get("email")
    if not uid and not email:
        raise BadRequest("uid or email is required")
    text = request.query.get("limit", "")
    try:
        limit = int(text) if text else DEFAULT_LIMIT
    except ValueError:
        raise BadRequest(f"limit {text!r} is not an integer") from None
    if limit < 0:
        raise BadRequest(f"limit {limit} is negative")
    as_sent = str if request.server.session_ids == "strings" else int
    sessions = [{"userId": as_sent(user_id), "sessionId": as_sent(session_id),
                 "createdTime": as_sent(start_ms // 1000),
                 "fsUrl": f"{APP}/discover/session/{user_id}:{session_id}"}
                for start_ms, user_id, session_id in
                request.server.account.sessions(uid, email)[:limit or DEFAULT_LIMIT]]
    return request.send_json(200, {"sessions": sessions})


ROLES = ("ADMIN", "ARCHITECT", "USER", "VIEW_ONLY", "UMBRELLA_MANAGER", "UNKNOWN")
KEY_OWNER = "jane@example.com"


def me(request):
    """Who the key belongs to (developer.fullstory.com server/v1/authentication/me): the
    seat's email (blank for a legacy org key), the org id, and the role of the user who
    made the key, one of ROLES."""
    return request.send_json(200, {"email": request.server.key_owner, "orgId": ORG,
                                   "role": request.server.role})


ROUTES = [("GET", "/me", me, "account"),
          ("GET", "/v2/users", list_users, "account"),
          ("GET", "/v2/users/([^/]+)", get_user, "account"),
          ("GET", "/segments/v1", list_segments, "account"),
          ("GET", f"/settings/recording/v1/({KINDS})", current_setting, "account"),
          ("GET", f"/settings/recording/v1/({KINDS})/history", setting_history, "account"),
          ("GET", "/sessions/v2", list_sessions, "account")]
