"""The config spec, and turning a config file's dict into a validated TapConfig.

One table (SETTINGS) drives validation, `--about` and the README's settings table.
"""

import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import ciso8601

from tap_fullstory import __version__, redaction
from tap_fullstory.errors import ConfigError
from tap_fullstory.json_file import read_json_file

DEFAULT_BASE_URL = "https://export.fullstory.com"
DEFAULT_API_BASE_URL = "https://api.fullstory.com"
SOURCES = ("data_export", "segment_export")
FAIL_OR_SKIP = ("fail", "skip")
LOGGER = logging.getLogger(__name__)
DEFAULT_USER_AGENT = f"tap-fullstory/{__version__}"


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "string", "integer", "number", "boolean", "date-time"
    description: str
    required: bool = False
    secret: bool = False
    default: object = None
    minimum: float = None
    maximum: float = None
    choices: tuple = None


SETTINGS = (
    Setting("api_key", "string", "FullStory API key (Settings > Integrations & API Keys). "
            "What it needs depends on the streams (see --about's streams): data_export events "
            "need the Data Export add-on; people and privacy need an Architect or Admin key. "
            "Sent as `Authorization: Basic <key>`.",
            required=True, secret=True),
    Setting("start_date", "date-time", "RFC 3339 timestamp. No event whose EventStart is "
            "earlier is emitted; the first run lists bundles that end after it.",
            required=True),
    Setting("source", "string", "Which FullStory API to read: data_export (the legacy "
            "bundle endpoints) or segment_export (the Segment Export API that replaces them).",
            default="data_export", choices=SOURCES),
    Setting("end_date", "date-time", "RFC 3339 timestamp: no event whose EventStart is at "
            "or after it is emitted. A run reads the bundles and windows that overlap "
            "[start_date, end_date) (start_date < Stop and Start < end_date) and splits a unit "
            "that straddles a boundary by EventStart, so adjacent ranges neither overlap nor "
            "leave a gap (individuals, which have no EventStart: the windows whose Stop is "
            "in (start_date, end_date]). Unset: everything FullStory offers (segment_export: "
            "up to now minus settle_hours).", default=None),
    Setting("segment_id", "string", "segment_export only: the segment to export.",
            default="everyone"),
    Setting("export_window_hours", "integer", "segment_export only: hours per export window "
            "(windows are aligned to multiples of this size).", default=24, minimum=1,
            maximum=24),
    Setting("settle_hours", "integer", "segment_export only: a window is exported only once "
            "its end is this many hours in the past (FullStory settles values within ~24 h).",
            default=24, minimum=0),
    Setting("max_exports_in_flight", "integer", "segment_export only: exports started ahead "
            "at FullStory, the one being waited for included; windows are still emitted in "
            "order. A 429 on creating one lowers it for the rest of the run.", default=3,
            minimum=1, maximum=20),
    Setting("identified_users_only", "boolean", "users: list only the users identified "
            "with FS.identify (is_identified=true). FullStory lists every user, anonymous "
            "ones too, 10 a request; on an account with millions of anonymous visitors that "
            "is a long read for rows that carry no uid, email or name.", default=False),
    Setting("sessions_per_user", "integer", "sessions: how many of each identified user's "
            "newest sessions to ask /sessions/v2 for (its `limit`; FullStory's default is "
            "20). It has no paging: a user's older sessions are out of reach, and a run says "
            "how many users reached this limit.", default=20, minimum=1),
    Setting("user_agent", "string", "User-Agent header sent with every request.",
            default=DEFAULT_USER_AGENT),
    Setting("request_timeout", "number", "Seconds to wait for FullStory to connect or send "
            "the next bytes. \"\", 0 and \"0\" mean the default.", default=300, minimum=0),
    Setting("max_download_mb", "number", "Largest body one download may have, in MB as it "
            "comes over the wire (compressed). A body announced or found larger is cut off "
            "with one CRITICAL line instead of filling spool_dir: raise it if your bundles "
            "really are larger.", default=20000, minimum=1),
    Setting("min_download_kb_per_second", "number", "Slowest a download may go: a body "
            "that brings fewer kB per second than this over any span of twice "
            "request_timeout is cut off with one CRITICAL line (request_timeout alone only "
            "bounds the gap between two bytes, so a body that trickles would hold the run "
            "for ever). 0 turns the check off.", default=10, minimum=0),
    Setting("base_url", "string", "The Data Export host: the tap appends /api/v1/export/list "
            "and /api/v1/export/get. Must be https unless it points at a loopback address "
            "(the sandbox, tests).", default=DEFAULT_BASE_URL),
    Setting("api_base_url", "string", "The api.fullstory.com host, where Segment Export "
            "(/segments/v1/exports, /operations/v1/{id}, /search/v1/exports/{id}/results) "
            "is read. Must be https unless it points at a loopback address.",
            default=DEFAULT_API_BASE_URL),
    Setting("checkpoint_every", "integer", "Rows emitted between STATE checkpoints inside a "
            "bundle. After a hard kill, at most this many rows minus one are sent again.",
            default=10000, minimum=1),
    Setting("max_retries", "integer", "Tries after the first for a 5xx answer, a connection "
            "error, a timeout or a download cut off midway, with exponential backoff and jitter.",
            default=5, minimum=0),
    Setting("retry_backoff_seconds", "number", "First retry delay; each later retry waits up "
            "to twice as long (exponential backoff with full jitter). Also the first wait "
            "between polls of a Segment export operation; later polls go when the export's "
            "estimatePctComplete says it will be done (doubling up to 60 s without one).",
            default=1, minimum=0),
    Setting("max_rate_limit_wait", "number", "Seconds a request may go on being answered "
            "429 (rate limited) without getting through before the run ends with one "
            "CRITICAL line. Each 429 waits its Retry-After, at least 1 s.", default=3600,
            minimum=1),
    Setting("on_bad_bundle", "string", "What to do with a bundle or window that is still not "
            "a JSON array of event objects after max_retries downloads, or a listed bundle "
            "that answers 404: fail (one CRITICAL line) or skip (one ERROR line naming it; "
            "the state lists it under skipped, so it can be fetched again later).",
            default="fail", choices=FAIL_OR_SKIP),
    Setting("on_forbidden", "string", "What to do when FullStory answers 403 to a selected "
            "stream's endpoint (the key lacks the permission the stream needs): fail (one "
            "CRITICAL line naming the stream and the permission) or skip (a WARNING naming "
            "it, and the other streams sync).", default="fail", choices=FAIL_OR_SKIP),
    Setting("max_downloads_per_minute", "number", "Bundle downloads started per minute at "
            "most, spaced evenly. FullStory allows 2; raise it only for the sandbox or a "
            "proxy with its own limit.", default=2, minimum=0.01),
    Setting("spool_dir", "string", "Directory for the temporary bundle files (a bundle is "
            "downloaded to disk as it came over the wire, compressed, then parsed; at most "
            "two at a time). The files have no name, so the kernel frees them however a run "
            "ends. Defaults to the system temporary directory.", default=None),
)


@dataclass(frozen=True)
class TapConfig:
    api_key: str
    start_date: datetime
    source: str = "data_export"
    end_date: datetime = None
    segment_id: str = "everyone"
    export_window_hours: int = 24
    settle_hours: int = 24
    max_exports_in_flight: int = 3
    identified_users_only: bool = False
    sessions_per_user: int = 20
    user_agent: str = DEFAULT_USER_AGENT
    request_timeout: float = 300
    max_download_mb: float = 20000
    min_download_kb_per_second: float = 10
    base_url: str = DEFAULT_BASE_URL
    api_base_url: str = DEFAULT_API_BASE_URL
    checkpoint_every: int = 10000
    max_retries: int = 5
    retry_backoff_seconds: float = 1
    max_rate_limit_wait: float = 3600
    on_bad_bundle: str = "fail"
    on_forbidden: str = "fail"
    max_downloads_per_minute: float = 2
    spool_dir: str = None

    def __repr__(self):
        # Keeps the key out of any traceback or debug log that prints the config.
        return (f"TapConfig(start_date={self.start_date.isoformat()}, base_url={self.base_url}, "
                f"api_base_url={self.api_base_url})")


def load_config_file(path):
    """Read a config file into a dict, with one-line errors for every way it can be bad."""
    data = read_json_file(f"Config file {path}", path, "; pass the path of a JSON file like "
                          "sample_config.json.", ": fix the syntax.", column=True)
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a JSON object of settings, "
                          f"not a {type(data).__name__}.")
    return data


def parse_timestamp(value, what="start_date"):
    """Parse an RFC 3339 timestamp into an aware datetime, or raise ConfigError."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} must be an RFC 3339 timestamp such as "
                          "2024-01-01T00:00:00Z.")
    try:
        return ciso8601.parse_rfc3339(value.strip())
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not an RFC 3339 timestamp; write it like "
                          "2024-01-01T00:00:00Z.") from None


def _number(setting, raw):
    if isinstance(raw, bool):
        raise ConfigError(f"{setting.name} must be a number, not {json.dumps(raw)}.")
    if setting.name == "request_timeout" and raw in ("", 0, "0"):
        return setting.default
    try:
        value = float(raw) if setting.kind == "number" else int(str(raw).strip())
    except (TypeError, ValueError):
        kind = "a number" if setting.kind == "number" else "a whole number"
        raise ConfigError(f"{setting.name} must be {kind}, not {json.dumps(raw)}.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{setting.name} must be a finite number, not {raw}.")
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{setting.name} must be at least {setting.minimum}, not {raw}.")
    if setting.maximum is not None and value > setting.maximum:
        raise ConfigError(f"{setting.name} must be at most {setting.maximum}, not {raw}.")
    return value


def _boolean(setting, raw):
    """true or false, as JSON or as the strings Meltano and environment variables give."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ConfigError(f"{setting.name} must be true or false, not {json.dumps(raw)}.")


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_url(name, raw, default):
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{name} must be a URL such as {default}.")
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} {url!r} is not an http(s) URL; use {default} or your "
                          "proxy's address.")
    if parts.scheme != "https" and not _is_loopback(parts.hostname):
        raise ConfigError(f"{name} {url!r} must use https (plain http is only allowed "
                          "for loopback addresses such as the sandbox).")
    return url


def parse_config(data):
    """Validate a config dict against SETTINGS and return a TapConfig."""
    redaction.register(data.get("api_key"))  # first: no line after this can show it
    values = {}
    for setting in SETTINGS:
        raw = data.get(setting.name)
        missing = raw is None or (isinstance(raw, str) and not raw.strip())
        if setting.required and missing:
            raise ConfigError(f"Config is missing {setting.name}: {setting.description}")
        if missing and setting.name != "request_timeout":
            continue
        if setting.kind == "date-time":
            values[setting.name] = parse_timestamp(raw, setting.name)
        elif setting.kind in ("integer", "number"):
            values[setting.name] = _number(setting, "" if raw is None else raw)
        elif setting.kind == "boolean":
            values[setting.name] = _boolean(setting, raw)
        elif setting.name in ("base_url", "api_base_url"):
            values[setting.name] = _host_url(setting.name, raw, setting.default)
        elif not isinstance(raw, str):
            raise ConfigError(f"{setting.name} must be a string, not {json.dumps(raw)}.")
        else:
            values[setting.name] = raw.strip()
        if setting.choices and values[setting.name] not in setting.choices:
            raise ConfigError(f"{setting.name} {raw!r} must be one of "
                              f"{', '.join(setting.choices)}.")
    if (values.get("source") == "segment_export" and "base_url" in values
            and "api_base_url" not in values):
        # Configs written before api_base_url existed pointed base_url at this host.
        LOGGER.warning("base_url is the Data Export host; segment_export reads "
                       "api_base_url. Using base_url %s as api_base_url: set api_base_url "
                       "instead.", values["base_url"])
        values["api_base_url"] = values.pop("base_url")
    if values.get("end_date") and values["end_date"] <= values["start_date"]:
        raise ConfigError("end_date must be later than start_date.")
    key = values["api_key"]
    if not key.isascii() or not key.isprintable() or " " in key:
        # Checked here because requests would echo the header value in its error.
        raise ConfigError("api_key holds spaces or characters that cannot be sent in an "
                          "HTTP header; copy the key again from FullStory's settings.")
    return TapConfig(**values)
