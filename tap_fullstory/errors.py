"""Errors grouped by what the caller must do about them.

Every error carries a one-line message that says what failed and what to do next.
None of them ever includes the API key.
"""


class TapError(Exception):
    """Root of every error the tap reports to the user as one CRITICAL line."""

    exit_code = 1


class ConfigError(TapError):
    """The user must fix the config, state or catalog they passed."""


class FatalAPIError(TapError):
    """FullStory refused the request in a way retrying cannot fix (401, 403, 404)."""

    def __init__(self, message, response=None):
        super().__init__(message)
        self.response = response


class RetriableAPIError(TapError):
    """A transient failure (5xx, 429, a broken body); retrying may succeed."""

    def __init__(self, message, response=None, retry_after=None):
        super().__init__(message)
        self.response = response
        self.retry_after = retry_after


class BundleFormatError(RetriableAPIError):
    """A downloaded bundle is not a complete JSON array of event objects."""
