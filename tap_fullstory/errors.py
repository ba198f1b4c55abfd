"""Errors grouped by what the caller must do about them.

Every error carries a one-line message that says what failed and what to do next.
None of them ever includes the API key: TapError takes it out of every message as it is
made, so the texts the state keeps (a skipped unit's reason) are clean too.
"""

from tap_fullstory.redaction import redact


class TapError(Exception):
    """Root of every error the tap reports to the user as one CRITICAL line."""

    exit_code = 1

    def __init__(self, message="", *args):
        super().__init__(redact(message), *args)


class ConfigError(TapError):
    """The user must fix the config, state or catalog they passed."""


class SpoolError(TapError):
    """spool_dir is missing, not writable or full."""


class FatalAPIError(TapError):
    """FullStory refused the request in a way retrying cannot fix (401, 403, 404, …).
    `said` is FullStory's own words for it, 'code: "message"' (key redacted), or ""."""

    def __init__(self, message, response=None, said=""):
        super().__init__(message)
        self.response = response
        self.said = redact(said)


class Forbidden(FatalAPIError):
    """403: the key lacks a permission or the account an add-on."""


class NotFound(FatalAPIError):
    """404: no such path, bundle, operation or export."""


class DownloadRefused(FatalAPIError):
    """A signed storage location (fetched without the key) answered 401 or 403: a lapsed
    signature or a proxy blocking storage, never a permission the key lacks."""


class SettingRefused(FatalAPIError):
    """FullStory refused a request because of a setting (an unknown segment_id, an
    api_base_url that is not FullStory's): never a bad unit, so never skipped."""


class UnexpectedAnswer(FatalAPIError):
    """An answer that is not what the API promises (a proxy's page, the wrong host)."""


class RetriableAPIError(TapError):
    """A transient failure (5xx, 429, a broken body); retrying may succeed."""

    def __init__(self, message, response=None, retry_after=None):
        super().__init__(message)
        self.response = response
        self.retry_after = retry_after


class BundleFormatError(RetriableAPIError):
    """A downloaded body is not a complete JSON array of event objects (or NDJSON lines)."""


class DownloadCutOff(TapError):
    """A body the tap stopped reading: larger than max_download_mb, or arriving slower
    than min_download_kb_per_second. A setting decides it, never a retry."""
