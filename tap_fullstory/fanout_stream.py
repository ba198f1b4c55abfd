"""The sessions stream: one GET /sessions/v2 per identified user (a fan-out).

FullStory lists a user's newest `limit` sessions, with no paging and no date filter
(developer.fullstory.com, list-sessions-v2), by uid or by email, so every run asks each
identified user (GET /v2/users?is_identified=true) once, by uid: an email can belong to
several users, and asking by it would bring one user's sessions with another's.

A run is a sweep over the users, which covers the sessions created in [since, until):
`since` is where the previous sweep ended (start_date at first), `until` the moment this
sweep began (end_date if earlier). A session created before `until` exists when its user
is asked, so one sweep finds it (unless the user had more than sessions_per_user sessions
since), and one created during the sweep is left to the next: across sweeps every session
comes once. The users are asked in the order of their ids, sorted here (FullStory
documents no order for /v2/users), so the state can say where a sweep stands with one id:

    {"createdTime": "<until of the last finished sweep>",
     "sweep": {"until": "...", "after_user": "<id of the last user whose sessions are out>"}}

A STATE follows every user, so a stop or a kill goes on after the last user whose sessions
are out, whatever order FullStory lists the users in by then. The listing and the requests
run on a background thread (transport waits sleep), one user ahead, so a stop is prompt
even while FullStory is slow or asks the tap to wait.

Nothing here says when FullStory lists a session that has just begun, so a sweep ends
SETTLE before it starts: a session created in the last SETTLE is left to the next run.
"""

import functools
import logging
import re
import time
from datetime import datetime, timedelta, timezone

from tap_fullstory import account_api
from tap_fullstory import catalog as catalogs
from tap_fullstory.config import parse_timestamp
from tap_fullstory.errors import ConfigError, NotFound, UnexpectedAnswer
from tap_fullstory.feed import Prefetcher
from tap_fullstory.progress import target_share
from tap_fullstory.shape import INTEGER_TEXT, RecordShaper
from tap_fullstory.state import bad_state, stream_bookmark
from tap_fullstory.timestamps import format_time

LOGGER = logging.getLogger(__name__)
SWEEP = "sweep"
INT64 = (-(2**63), 2**63 - 1)
UNIX_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
SETTLE = timedelta(hours=1)
MAX_GONE_IN_A_ROW = 5  # more users answering 404 in a row than this is a wrong URL, not deletions


def user_order(user_id):
    """The order users are asked in: numeric ids by value, any id by its text."""
    return (len(user_id), user_id)


def exact_integer(value):
    """An int64 id sent as a number or as its decimal text, exactly; None otherwise."""
    if type(value) is str and INTEGER_TEXT.fullmatch(value) and str(int(value)) == value:
        value = int(value)
    if type(value) is int and INT64[0] <= value <= INT64[1]:
        return value
    return None


def created_moment(value):
    """A session's createdTime (unix seconds, as text or a number) as an aware datetime;
    None when it is not one."""
    if type(value) is str:
        value = float(value) if UNIX_SECONDS.fullmatch(value) else None
    if type(value) not in (int, float) or value != value or not 0 <= value < 253402300800:
        return None
    return datetime.fromtimestamp(value, timezone.utc)


def session_row(session):
    """(createdTime as a datetime, the row) of one /sessions/v2 session, its ids exact
    integers and createdTime a timestamp; or a ValueError saying what is wrong."""
    row = dict(session)
    for name in ("userId", "sessionId"):
        number = exact_integer(session.get(name))
        if number is None:
            raise ValueError(f"its {name} {session.get(name)!r:.40} is not an int64 id")
        row[name] = number
    moment = created_moment(session.get("createdTime"))
    if moment is None:
        raise ValueError(f"its createdTime {session.get('createdTime')!r:.40} is not unix "
                         "seconds")
    row["createdTime"] = format_time(moment)
    return moment, row


class FanOutStreamSync:
    """The sessions of every identified user, one request each, in id order."""

    def __init__(self, stream, entry, transport, config, writer, keeper):
        self.stream, self.name = stream, stream.name
        self.transport, self.config = transport, config
        self.writer, self.keeper = writer, keeper
        catalogs.require_fields(entry, stream)
        fields = catalogs.emitted_fields(entry)
        schema = entry.schema.to_dict()
        self.key_properties = catalogs.key_properties(entry)
        self.shaper = RecordShaper(schema, fields, stream.catch_all, keys=self.key_properties)
        self.schema = catalogs.emitted_schema(schema, fields)
        bookmark = stream_bookmark(keeper.value(), self.name)
        self.done_until = self._moment(bookmark.get(stream.replication_key),
                                       stream.replication_key)
        sweep = bookmark.get(SWEEP)
        if sweep is not None and not isinstance(sweep, dict):
            raise bad_state(f"bookmark {SWEEP} of '{self.name}' must be an object")
        sweep = sweep or {}
        self.until = self._moment(sweep.get("until"), f"{SWEEP}.until")
        self.after_user = sweep.get("after_user")
        if self.after_user is not None and not isinstance(self.after_user, str):
            raise bad_state(f"bookmark {SWEEP}.after_user of '{self.name}' must be a user id "
                            "(a string)")
        self.emitted = self.asked = self.full = self.gone = 0

    def _moment(self, text, what):
        if text is None:
            return None
        try:
            return parse_timestamp(text)
        except ConfigError:
            raise bad_state(f"bookmark {what} of '{self.name}' must be an RFC 3339 "
                            "timestamp") from None

    def since(self):
        """The earliest createdTime this sweep emits."""
        start = self.config.start_date
        return start if self.done_until is None else max(start, self.done_until)

    def state(self):
        """The STATE value for exactly what has been handed to the writer."""
        bookmark = {}
        if self.done_until is not None:
            bookmark[self.stream.replication_key] = format_time(self.done_until)
        if self.until is not None:
            sweep = {"until": format_time(self.until)}
            if self.after_user is not None:
                sweep["after_user"] = self.after_user
            bookmark[SWEEP] = sweep
        return self.keeper.update(self.name, bookmark)

    def run(self):
        started, waited = time.monotonic(), self.writer.waited
        self.writer.write_schema(self.name, self.schema, self.key_properties,
                                 [self.stream.replication_key])
        self.writer.start_records(self.name)
        if self.until is None:  # a new sweep
            now = datetime.now(timezone.utc).replace(microsecond=0) - SETTLE
            end = self.config.end_date
            self.until = now if end is None else min(now, end)
        since = self.since()
        if since >= self.until:
            LOGGER.info("%s: nothing to ask for: sessions created before %s are out "
                        "(end_date or the bookmark).", self.name, format_time(self.until))
        else:
            self._sweep(since)
        self.done_until, self.until, self.after_user = max(since, self.until), None, None
        self.writer.write_state(self.state())
        self.shaper.report(LOGGER)
        if self.full:
            LOGGER.warning(
                "%s: %d user(s) answered all %d sessions asked for, each of them created "
                "since %s: their sessions before those are out of reach of /sessions/v2, "
                "which has no paging. Raise sessions_per_user to reach further back.",
                self.name, self.full, self.config.sessions_per_user, format_time(since))
        if self.gone:
            LOGGER.warning("%s: %d user(s) answered 404 (deleted since the listing, or being "
                           "deleted): they have no sessions to sync.", self.name, self.gone)
        seconds = time.monotonic() - started
        LOGGER.info("%s: %s record(s) from %s user(s) in %.1f s%s.", self.name,
                    f"{self.emitted:,}", f"{self.asked:,}", seconds,
                    target_share(self.writer.waited - waited, seconds))

    def _sweep(self, since):
        users, listing_calls = self._identified_users()
        ordered = sorted(users, key=user_order)
        if self.after_user is not None:
            mark = user_order(self.after_user)
            to_ask = [user for user in ordered if user_order(user) > mark]
        else:
            to_ask = ordered
        resumed = f"; {len(ordered) - len(to_ask):,} were asked before the stop" \
            if len(to_ask) < len(ordered) else ""
        LOGGER.info("%s: %s identified user(s) in %s listing request(s)%s: %s request(s) to "
                    "/sessions/v2 follow, one per user, each for the newest %d sessions, to "
                    "emit those created from %s to before %s.", self.name, f"{len(ordered):,}",
                    f"{listing_calls:,}", resumed, f"{len(to_ask):,}",
                    self.config.sessions_per_user, format_time(since),
                    format_time(self.until))

        def jobs():  # each user is asked on the thread, one ahead of what is emitted
            for user_id in to_ask:
                yield functools.partial(self._ask, user_id, users[user_id])

        gone_in_a_row = 0
        with Prefetcher(jobs, ahead=1, name="sessions") as answers:
            for user_id, sessions in answers:
                self.asked += 1
                if sessions is None:
                    self.gone += 1
                    gone_in_a_row += 1
                    if gone_in_a_row > MAX_GONE_IN_A_ROW:
                        raise UnexpectedAnswer(
                            f"FullStory answered 404 for the sessions of {gone_in_a_row} "
                            "users in a row: that is a wrong address, not users deleted "
                            "since the listing. Check that api_base_url points at "
                            "api.fullstory.com.")
                else:
                    gone_in_a_row = 0
                    self._emit_sessions_of(user_id, sessions, since)
                self.after_user = user_id
                self.writer.write_state(self.state())

    def _identified_users(self):
        """({user id: its uid}, the listing's request count), the pages read on a thread."""
        what = f"{self.name} (identified users)"

        def jobs():
            for page in account_api.pages(self.transport, self.config.api_base_url,
                                          account_api.IDENTIFIED_USERS, what):
                yield functools.partial(list, page.records)

        users, calls, without_uid = {}, 0, 0
        with Prefetcher(jobs, ahead=1, name="identified users") as listing:
            for records in listing:
                calls += 1
                for user in records:
                    user_id, uid = user.get("id"), user.get("uid")
                    if not isinstance(user_id, str) or not user_id:
                        raise UnexpectedAnswer(
                            f"FullStory's answer to {what} holds a user whose id "
                            f"{user_id!r:.40} is not an id; check that api_base_url points "
                            "at api.fullstory.com.")
                    if isinstance(uid, str) and uid:
                        users[user_id] = uid
                    else:
                        without_uid += 1
        if without_uid:
            LOGGER.warning("%s: %d identified user(s) have no uid, which /sessions/v2 is "
                           "asked by; their sessions are not read.", self.name, without_uid)
        return users, calls

    def _ask(self, user_id, uid):
        """(user_id, the sessions FullStory answers for it, or None if it answers 404)."""
        try:
            return user_id, account_api.sessions_of(
                self.transport, self.config.api_base_url, uid,
                self.config.sessions_per_user, f"{self.name} of user {user_id}")
        except NotFound:
            return user_id, None

    def _emit_sessions_of(self, user_id, sessions, since):
        what = f"{self.name} of user {user_id}"
        rows = {}
        for number, session in enumerate(sessions):
            try:
                moment, row = session_row(session)
            except ValueError as exc:
                raise UnexpectedAnswer(f"FullStory's answer to {what} holds a session "
                                       f"(number {number}) that cannot be synced: {exc}. "
                                       "Check that api_base_url points at api.fullstory.com."
                                       ) from None
            rows.setdefault((row["userId"], row["sessionId"]), (moment, row))
        limit = self.config.sessions_per_user
        if len(sessions) >= limit and rows and min(m for m, _ in rows.values()) > since:
            self.full += 1
        for moment, row in sorted(rows.values(), key=lambda pair: (pair[0],
                                                                   pair[1]["sessionId"])):
            if since <= moment < self.until:
                self.writer.write_record(self.shaper.shape(row))
                self.emitted += 1
