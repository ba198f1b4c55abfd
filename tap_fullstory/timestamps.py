"""Every timestamp the tap writes, from one formatter.

A moment is unix seconds (a unit's Start or Stop) or an aware datetime (start_date,
end_date, now). Three styles: `STATE` for records and STATE (RFC 3339 UTC to the
microsecond, the form singer-python writes), `API` for the time ranges sent to FullStory
(RFC 3339 to the second), and `HUMAN` for progress lines.
"""

from datetime import datetime, timezone

STATE = "%Y-%m-%dT%H:%M:%S.%fZ"
API = "%Y-%m-%dT%H:%M:%SZ"
HUMAN = "%Y-%m-%d %H:%M"


def format_time(moment, style=STATE):
    """`moment` (unix seconds, or an aware datetime) in UTC, written in `style`."""
    if isinstance(moment, datetime):
        when = moment.astimezone(timezone.utc)
    else:
        when = datetime.fromtimestamp(moment, tz=timezone.utc)
    return when.strftime(style)


def now_text():
    """The current moment, as records' time_extracted is written."""
    return format_time(datetime.now(timezone.utc))
