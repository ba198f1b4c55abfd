"""HTTP to FullStory's legacy Data Export API: auth, timeouts, pacing, retries, 429 waits."""

import email.utils
import logging
import re
import threading
import time
from urllib.parse import urlsplit

import backoff
import requests
from singer import metrics

from tap_fullstory.errors import FatalAPIError, RetriableAPIError, TapError
from tap_fullstory.pacing import DownloadPacer

LOGGER = logging.getLogger(__name__)

LIST_PATH = "/api/v1/export/list"
GET_PATH = "/api/v1/export/get"
DEFAULT_RETRY_AFTER = 60  # seconds, when a 429 carries no usable Retry-After
CHUNK_BYTES = 1 << 20
TRANSIENT = (RetriableAPIError, requests.ConnectionError, requests.Timeout,
             requests.exceptions.ChunkedEncodingError,
             requests.exceptions.ContentDecodingError)

FATAL_HINTS = {
    401: "FullStory rejected the API key (401): check api_key in the config.",
    403: "FullStory refused access (403): the key's account needs the Data Export "
         "add-on, and the key needs Admin or Architect permission.",
}


class RateLimited(RetriableAPIError):
    """A 429: wait `retry_after` seconds, then try again; never counts as a failure."""


class RetriesExhausted(TapError):
    """A transient fault that outlasted max_retries."""


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
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def describe_failure(exc, timeout):
    """A short, key-free phrase for why a request failed."""
    if isinstance(exc, TapError):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s (request_timeout)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke in the middle of the body"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "the gzip-encoded body was corrupt"
    text = str(exc)
    reason = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if reason:
        return reason.group(1).strip().rstrip(".")
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection without an answer"
    return type(exc).__name__


def _log_rate_limit(details):
    LOGGER.info("FullStory rate limit (429) on %s: waiting %.1f s as Retry-After asks.",
                details["args"][0], details["wait"])


class FullStoryClient:
    """Calls LIST and GET with the key, timeouts, pacing and retries a config asks for."""

    def __init__(self, config, pacer=None):
        self.config = config
        self._headers = {"Authorization": f"Basic {config.api_key}",
                         "User-Agent": config.user_agent}
        self._local = threading.local()  # a Session per thread: the feed downloads ahead
        self.list_url = config.base_url + LIST_PATH
        self.get_url = config.base_url + GET_PATH
        self.pacer = pacer or DownloadPacer(config.max_downloads_per_minute)
        rate_limited = backoff.on_exception(
            backoff.runtime, RateLimited, value=lambda exc: exc.retry_after,
            jitter=None, on_backoff=_log_rate_limit, logger=None)
        retried = backoff.on_exception(
            backoff.expo, TRANSIENT, max_tries=config.max_retries + 1,
            factor=config.retry_backoff_seconds, jitter=backoff.full_jitter,
            on_backoff=self._log_retry,
            logger=None)
        self._call = retried(rate_limited(self._call_once))

    @property
    def session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self._headers)
        return session

    @property
    def anonymous_session(self):
        """A Session without the key, for URLs that carry their own signature."""
        session = getattr(self._local, "anonymous", None)
        if session is None:
            session = self._local.anonymous = requests.Session()
            session.headers["User-Agent"] = self._headers["User-Agent"]
        return session

    def list_exports(self, start):
        """One LIST page: the (at most 20) bundles whose Stop is after `start`."""
        body = self.request("list", self.list_url, params={"start": int(start)})
        exports = body.get("exports") if isinstance(body, dict) else None
        if not isinstance(exports, list):
            raise FatalAPIError("FullStory's list answer has no 'exports' array; check "
                                "base_url points at the Data Export API.")
        return exports

    def download(self, bundle_id, handle):
        """GET one bundle's body into the open binary file `handle`; returns its size."""
        return self.request(f"bundle {bundle_id}", self.get_url, params={"id": bundle_id},
                            handle=handle, paced=True)

    def request(self, what, url, params=None, handle=None, method="GET", body=None,
                auth=True, paced=False):
        """One call with retries: the JSON answer, or the body's size written to `handle`."""
        try:
            return self._call(what, url, params, handle, method, body, auth, paced)
        except TRANSIENT as exc:
            raise RetriesExhausted(
                f"Gave up on {what} after {self.config.max_retries + 1} tries: "
                f"{describe_failure(exc, self.config.request_timeout)}. Check that "
                f"{urlsplit(url).netloc} is reachable, then run again from the last "
                "STATE.") from None

    def _log_retry(self, details):
        LOGGER.warning("%s failed (try %d of %d): %s. Retrying in %.1f s.",
                       details["args"][0], details["tries"], self.config.max_retries + 1,
                       describe_failure(details["exception"], self.config.request_timeout),
                       details["wait"])

    def _call_once(self, what, url, params, handle, method, body, auth, paced):
        if paced:
            self.pacer.wait(what)
        LOGGER.debug("%s %s %s", method, url if auth else urlsplit(url).path, params or "")
        session = self.session if auth else self.anonymous_session
        with metrics.http_request_timer(what.split()[0]) as timer:
            try:
                response = session.request(method, url, params=params, json=body,
                                           stream=handle is not None,
                                           timeout=self.config.request_timeout)
            finally:
                if paced:
                    self.pacer.mark()
            timer.tags[metrics.Tag.http_status_code] = response.status_code
        with response:
            self._raise_for_status(what, response)
            if handle is None:
                try:
                    return response.json()
                except ValueError:
                    raise RetriableAPIError(f"FullStory's answer to {what} is not JSON",
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
            hint = ("the bundle no longer exists; run again to list bundles afresh"
                    if what.startswith("bundle") else "check base_url")
            raise FatalAPIError(f"FullStory answered 404 Not Found for {what}: {hint}.",
                                response)
        reason = f"FullStory answered {status} {response.reason or ''}".rstrip()
        if status >= 500 or status == 408:
            raise RetriableAPIError(reason, response)
        raise FatalAPIError(f"{reason} for {what}; check the config.", response)
