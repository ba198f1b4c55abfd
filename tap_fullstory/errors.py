"""Errors grouped by what the caller must do about them.

Every error carries a one-line message that says what failed and what to do next.
None of them ever includes the API key.
"""


class TapError(Exception):
    """Root of every error the tap reports to the user as one CRITICAL line."""

    exit_code = 1


class ConfigError(TapError):
    """The user must fix the config, state or catalog they passed."""


class SpoolError(TapError):
    """spool_dir is missing, not writable or full."""


class FatalAPIError(TapError):
    """FullStory refused the request in a way retrying cannot fix (401, 403, 404, …)."""

    def __init__(self, message, response=None):
        super().__init__(message)
        self.response = response


class Forbidden(FatalAPIError):
    """403: the key lacks a permission or the account an add-on."""


class NotFound(FatalAPIError):
    """404: no such path, bundle, operation or export."""


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
