"""HTTP to FullStory's legacy Data Export API: auth, timeouts, retries, 429 waits."""

import email.utils
import time

import backoff
import requests
import singer
from singer import metrics

from tap_fullstory.errors import FatalAPIError, RetriableAPIError

LOGGER = singer.get_logger()

LIST_PATH = "/api/v1/export/list"
GET_PATH = "/api/v1/export/get"
DEFAULT_RETRY_AFTER = 60  # seconds, when a 429 carries no usable Retry-After
CHUNK_BYTES = 1 << 20

FATAL_HINTS = {
    401: "FullStory rejected the API key (401): check api_key in the config.",
    403: "FullStory refused access (403): the key's account needs the Data Export "
         "add-on, and the key needs Admin or Architect permission.",
}


class RateLimited(RetriableAPIError):
    """A 429: wait `retry_after` seconds, then try again; never counts as a failure."""


def retry_after_seconds(response, default=DEFAULT_RETRY_AFTER, now=None):
    """Seconds to wait from a response's Retry-After (delta-seconds or HTTP-date)."""
    if response is None:  # a Response is falsy for 4xx/5xx, so test identity, not truth
        return default
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when is None:
        return default
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _log_rate_limit(details):
    LOGGER.info("FullStory rate limit (429) on %s: waiting %.1f s as Retry-After asks.",
                details["args"][1], details["wait"])


def _log_retry(details):
    LOGGER.warning("%s failed (try %d): %s. Retrying in %.1f s.",
                   details["args"][1], details["tries"], details["exception"],
                   details["wait"])


class FullStoryClient:
    """Calls LIST and GET with the key, timeouts and retries a config asks for."""

    def __init__(self, config, session=None, backoff_factor=1.0):
        self.config = config
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Basic {config.api_key}",
                                     "User-Agent": config.user_agent})
        self.list_url = config.base_url + LIST_PATH
        self.get_url = config.base_url + GET_PATH
        transient = (RetriableAPIError, requests.ConnectionError, requests.Timeout,
                     requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)
        rate_limited = backoff.on_exception(
            backoff.runtime, RateLimited, value=lambda exc: exc.retry_after,
            jitter=None, on_backoff=_log_rate_limit, logger=None)
        retried = backoff.on_exception(
            backoff.expo, transient, max_tries=config.max_retries + 1,
            factor=backoff_factor, jitter=backoff.full_jitter, on_backoff=_log_retry,
            logger=None)
        self._call = retried(rate_limited(self._call_once))

    def list_exports(self, start):
        """One LIST page: the (at most 20) bundles whose Stop is after `start`."""
        body = self._call("GET", "list", self.list_url, {"start": int(start)}, None)
        exports = body.get("exports") if isinstance(body, dict) else None
        if not isinstance(exports, list):
            raise FatalAPIError("FullStory's list answer has no 'exports' array; check "
                                "base_url points at the Data Export API.")
        return exports

    def download(self, bundle_id, handle):
        """GET one bundle's body into the open binary file `handle`; returns its size."""
        return self._call("GET", f"bundle {bundle_id}", self.get_url, {"id": bundle_id},
                          handle)

    def _call_once(self, method, what, url, params, handle):
        timeout = self.config.request_timeout
        with metrics.http_request_timer(what.split()[0]) as timer:
            response = self.session.request(method, url, params=params, timeout=timeout,
                                            stream=handle is not None)
            timer.tags[metrics.Tag.http_status_code] = response.status_code
        with response:
            self._raise_for_status(what, response)
            if handle is None:
                try:
                    return response.json()
                except ValueError:
                    raise RetriableAPIError(f"FullStory's answer to {what} is not JSON.",
                                            response) from None
            handle.seek(0)
            handle.truncate()
            size = 0
            for chunk in response.iter_content(CHUNK_BYTES):
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            return size

    @staticmethod
    def _raise_for_status(what, response):
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            raise RateLimited(f"{what}: rate limited (429)", response,
                              retry_after_seconds(response))
        if status in FATAL_HINTS:
            raise FatalAPIError(FATAL_HINTS[status], response)
        if status == 404:
            hint = ("the bundle id no longer exists" if what.startswith("bundle")
                    else "check base_url")
            raise FatalAPIError(f"FullStory answered 404 Not Found for {what}: {hint}.",
                                response)
        if status >= 500 or status == 408:
            raise RetriableAPIError(f"{what}: FullStory answered {status} "
                                    f"{response.reason or ''}".rstrip(), response)
        raise FatalAPIError(f"FullStory answered {status} {response.reason or ''} for "
                            f"{what}; check the config.", response)
