"""FullStory's legacy Data Export API: LIST pages of bundles, GET one bundle's body.

    GET {base_url}/api/v1/export/list?start=<unix s>  -> {"exports": [{Id, Start, Stop}, …]}
    GET {base_url}/api/v1/export/get?id=<Id>          -> a JSON array of events (maybe gzip)

LIST answers at most 20 bundles whose Stop is after `start`, oldest first. GET is limited to
2 downloads a minute, which the transport paces.
"""

import logging
import time

from tap_fullstory.errors import FatalAPIError, UnexpectedAnswer
from tap_fullstory.spool import Provenance
from tap_fullstory.timestamps import format_time
from tap_fullstory.units import BundlePlan, Unit, end_second

LOGGER = logging.getLogger(__name__)

LIST_PATH = "/api/v1/export/list"
GET_PATH = "/api/v1/export/get"
PAGE_SIZE = 20
LAST_SECOND = 253402300800  # 10000-01-01: a Start or Stop beyond is no time at all
SETTING = "base_url"
HINTS = {403: "FullStory refused access (403): the key's account needs the Data Export "
              "add-on, and the key needs Admin or Architect permission."}


def _whole(value):
    """An integer from LIST, also when a server sends it as "123" or 123.0."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(value)


def bundle_from(entry):
    """A LIST entry as a Unit, or a one-line error."""
    try:
        unit = Unit(id=_whole(entry["Id"]), start=_whole(entry["Start"]),
                    stop=_whole(entry["Stop"]))
        if not 0 <= unit.start <= unit.stop < LAST_SECOND:
            raise ValueError(unit)
        return unit
    except (KeyError, TypeError, ValueError):
        raise FatalAPIError(f"FullStory listed a bundle without integer Id/Start/Stop (a Start no "
                            f"later than its Stop, both real times): "
                            f"{str(entry)[:200]}") from None


class DataExportAPI:
    """The two endpoints, on the host in `base_url`."""

    page_size = PAGE_SIZE

    def __init__(self, transport, base_url):
        self.transport = transport
        self.list_url = base_url + LIST_PATH
        self.get_url = base_url + GET_PATH

    def __call__(self, start):
        """One LIST page: the (at most 20) bundles whose Stop is after `start`."""
        answer = self.transport.json("list", self.list_url, SETTING,
                                     params={"start": int(start)}, expect="exports",
                                     hints=HINTS, call="list")
        exports = answer["exports"]
        if exports is None:
            return []
        if not isinstance(exports, list):
            raise UnexpectedAnswer(f"FullStory's list answer holds 'exports' that is not a "
                                   f"list ({type(exports).__name__}); check that {SETTING} "
                                   "points at the Data Export API.")
        page = [bundle_from(entry) for entry in exports]
        LOGGER.debug("Listed %d bundle(s) ending after %s.", len(page), format_time(start))
        return page

    def download(self, bundle, sink):
        """GET one bundle's body into `sink`; returns its size on the wire."""
        hints = {**HINTS, 404: f"FullStory answered 404 Not Found for bundle {bundle.id}: the "
                               "bundle no longer exists."}
        return self.transport.download(f"bundle {bundle.id}", self.get_url, SETTING, sink,
                                       params={"id": bundle.id}, paced=True, hints=hints,
                                       call="bundle")


class BundleSource:
    """The events stream's units from Data Export: bundles, each one JSON array."""

    layout = "array"
    unit_name = "bundle"

    def __init__(self, transport, config, now=time.time):
        self.api = DataExportAPI(transport, config.base_url)
        self.end_date = config.end_date
        self.end = end_second(config.end_date)
        self.host = config.base_url
        self.now = now

    def plan(self, start, whole=False):
        """The bundles with Stop after `start` and Start before end_date, oldest first,
        listed a page at a time as they are reached."""
        return BundlePlan(self.api, start, self.end, self.now())

    def check(self, start):
        """`--test`: one line on what there is to sync from `start` (unix seconds)."""
        count, _, newest = self.plan(start).survey()
        last = f"; the newest ends at {newest.stop_text}" if newest else ""
        until = ("" if self.end_date is None
                 else f" and start before end_date {format_time(self.end_date)}")
        return f"{count} bundle(s) end after start_date {format_time(start)}{until}{last}"

    def describe(self, bundle):
        return f"Bundle {bundle.id}"

    def describe_period(self, bundle):
        """The bundle and the period it covers, for lines about it as a whole."""
        return (f"bundle {bundle.id} ({format_time(bundle.start)} → "
                f"{format_time(bundle.stop)})")

    def prepare(self, bundles, standing=None):
        """Nothing to start ahead: a bundle is ready as soon as it is listed."""

    def fetch(self, bundle, spool, standing=None):
        """Download `bundle` into `spool`. A bundle is one body for ever: its rows keep
        their numbers whatever the state says."""
        self.api.download(bundle, spool)
        return Provenance()
