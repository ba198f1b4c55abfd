"""HTTP to FullStory: the one module that sends requests.

A requests.Session per thread (bodies download in the background while the main thread
emits), the key as `Authorization: Basic`, the User-Agent, a timeout on every request,
client-side pacing of downloads, retries with exponential backoff for transient faults, and
waits on 429s. The API modules (data_export, segment_export, account_api) know paths and
answers; this one knows HTTP. Its waits sleep, so only background threads call it: the main
thread waits for them through STOP (see stopping.py).
"""

import email.utils
import json
import logging
import re
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import backoff
import requests
import urllib3
from singer import metrics

from tap_fullstory.errors import (
    DownloadCutOff,
    DownloadRefused,
    FatalAPIError,
    Forbidden,
    NotFound,
    RetriableAPIError,
    TapError,
    UnexpectedAnswer,
)
from tap_fullstory.pacing import DownloadPacer
from tap_fullstory.redaction import redact

LOGGER = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 60  # seconds, when a 429 carries no usable Retry-After
MIN_RETRY_AFTER = 1.0     # however small Retry-After is: never a busy loop
CHUNK_BYTES = 1 << 20
MB = 1e6
SHOWN_BYTES = 60          # how much of an unexpected answer an error quotes
ERROR_BODY_BYTES = 1 << 16  # how much of a refusal is read for FullStory's message
SAID_CHARS = 300            # how much of FullStory's message an error quotes
MAX_ANSWER_BYTES = 64 << 20  # an API answer (a page, an operation) is kilobytes
TRANSIENT = (RetriableAPIError, requests.ConnectionError, requests.Timeout,
             urllib3.exceptions.HTTPError)


class RateLimited(RetriableAPIError):
    """A 429: wait `retry_after` seconds, then try again; never counts as a failure."""


class RetriesExhausted(TapError):
    """A transient fault that outlasted max_retries."""


class RateLimitExhausted(TapError):
    """429s without a let-up for longer than max_rate_limit_wait."""


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
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return f"no answer within {timeout:g} s (request_timeout)"
    if isinstance(exc, (urllib3.exceptions.ProtocolError,
                        requests.exceptions.ChunkedEncodingError)):
        return "the connection broke in the middle of the body"
    text = str(exc)
    reason = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if reason:
        return reason.group(1).strip().rstrip(".")
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection without an answer"
    return type(exc).__name__


def fullstory_words(body):
    """FullStory's own words in an error body: v2 errors are {"message", "code"}
    (FullStory's OpenAPI, apierror.ErrorResponse); 'code: "message"', or "" for any
    other body."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(answer, dict):
        return ""
    words = [answer.get(name) for name in ("code", "message")]
    # Redacted before the message is cut, so no part of the key can show either.
    code, message = (" ".join(redact(w).split()) if isinstance(w, str) else ""
                     for w in words)
    if len(message) > SAID_CHARS:
        message = message[:SAID_CHARS] + "…"
    return ": ".join(part for part in (code, f'"{message}"' if message else "") if part)


def content_length(response):
    """The body's size on the wire from Content-Length, or None."""
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


class SignedUrlFilter(logging.Filter):
    """Drops query strings from urllib3's DEBUG lines: an export's download location carries
    its signature there."""

    def filter(self, record):
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = re.sub(r"\?[^\s\"']*", "?…", message), ()
        return True


class Transport:
    """Sends the requests the API modules ask for, as the config says."""

    def __init__(self, config, pacer=None):
        self.config = config
        self._headers = {"Authorization": f"Basic {config.api_key}",
                         "User-Agent": config.user_agent}
        self._local = threading.local()
        self.rate_limits = Counter()  # 429s answered, by call ("export_create", "list", …)
        self.pacer = pacer or DownloadPacer(config.max_downloads_per_minute)
        rate_limited = backoff.on_exception(
            backoff.runtime, RateLimited, value=lambda exc: exc.retry_after, jitter=None,
            max_time=config.max_rate_limit_wait, on_backoff=self._log_rate_limit,
            logger=None)
        retried = backoff.on_exception(
            backoff.expo, TRANSIENT, max_tries=config.max_retries + 1,
            factor=config.retry_backoff_seconds, jitter=backoff.full_jitter,
            giveup=lambda exc: isinstance(exc, RateLimited), on_backoff=self._log_retry,
            logger=None)
        self._call = retried(rate_limited(self._call_once))

    def session(self, auth=True):
        """This thread's Session: with the key, or without it for signed URLs."""
        name = "session" if auth else "anonymous"
        session = getattr(self._local, name, None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self._headers["User-Agent"]
            if auth:
                session.headers["Authorization"] = self._headers["Authorization"]
            setattr(self._local, name, session)
        return session

    def json(self, what, url, setting, params=None, method="GET", body=None, expect=None,
             hints=None, call=None, tries=None):
        """One call with retries; its answer, which must be a JSON object (holding the key
        `expect`, if given). `setting` names the config setting that holds the host; `call`
        is the call's stable name, for metric tags and the rate-limit counter (`what` is
        for people). `tries`, a list, gets one entry per try that failed in a way that
        may have reached FullStory (a timeout, a 5xx) and was tried again."""
        request = Request(what, url, setting, params, method, body, expect, hints,
                          call=call)
        request.tries = tries
        return self._run(request)

    def download(self, what, url, setting, sink, params=None, auth=True, paced=False,
                 hints=None, call=None):
        """GET a body into `sink` exactly as it comes over the wire (never inflated), with
        retries; returns its size. `sink.begin(expected_size)` starts each try afresh and
        `sink.write(bytes)` takes each chunk."""
        request = Request(what, url, setting, params, "GET", None, None, hints, sink=sink,
                          auth=auth, paced=paced, call=call)
        return self._run(request)

    def _run(self, request):
        try:
            return self._call(request)
        except RateLimited as exc:
            raise RateLimitExhausted(
                f"FullStory kept answering 429 (rate limited) to {request.what} for more than "
                f"{self.config.max_rate_limit_wait:g} s (max_rate_limit_wait); another "
                "client may be using the same key's limit. Run again later from the last "
                "STATE.") from exc
        except UnexpectedAnswer:
            raise
        except TRANSIENT as exc:
            host = urlsplit(request.url).netloc
            advice = (f"{host} answered but kept failing; run again later"
                      if isinstance(exc, RetriableAPIError) else
                      f"Check that {host} is reachable, then run again")
            raise RetriesExhausted(
                f"Gave up on {request.what} after {self.config.max_retries + 1} tries: "
                f"{describe_failure(exc, self.config.request_timeout)}. "
                f"{advice} from the last STATE.") from None

    def _log_retry(self, details):
        request = details["args"][0]
        if request.tries is not None:
            request.tries.append(describe_failure(details["exception"],
                                                  self.config.request_timeout))
        LOGGER.warning("%s failed (try %d of %d): %s. Retrying in %.1f s.", request.what,
                       details["tries"], self.config.max_retries + 1,
                       describe_failure(details["exception"], self.config.request_timeout),
                       details["wait"])

    def _log_rate_limit(self, details):
        exc, request = details["exception"], details["args"][0]
        self.rate_limits[request.call] += 1
        asked = exc.asked
        why = "as Retry-After asks" if asked >= MIN_RETRY_AFTER else \
            f"(Retry-After asked {asked:g} s; never less than {MIN_RETRY_AFTER:g} s)"
        LOGGER.info("FullStory rate limit (429) on %s: waiting %.1f s %s.", request.what,
                    details["wait"], why)

    def _call_once(self, request):
        if request.paced:
            self.pacer.wait(request.what)
        LOGGER.debug("%s %s %s", request.method,
                     request.url if request.auth else urlsplit(request.url).path,
                     request.params or "")
        session = self.session(request.auth)
        with metrics.http_request_timer(request.call) as timer:
            try:
                # A body is kept as it comes and only gzip is inflated (by its magic
                # bytes), so gzip is the one encoding a download may come in.
                headers = {"Accept-Encoding": "gzip"} if request.sink is not None else None
                response = session.request(request.method, request.url,
                                           params=request.params, json=request.body,
                                           headers=headers, stream=True,
                                           timeout=self.config.request_timeout)
            finally:
                if request.paced:
                    self.pacer.mark()
            timer.tags[metrics.Tag.http_status_code] = response.status_code
        with response:
            self._raise_for_status(request, response)
            if request.sink is None:
                return self._answer(request, response)
            return self._save(request, response)

    def _answer(self, request, response):
        # Read up to a cap, never whole: a proxy or a broken server may send without end.
        raw = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True) or b""
        if len(raw) > MAX_ANSWER_BYTES:
            raise UnexpectedAnswer(
                f"FullStory's answer to {request.what} is larger than "
                f"{MAX_ANSWER_BYTES >> 20} MiB, far beyond any answer the API documents; "
                f"check that {request.setting} ({self._base(request.url)}) points at "
                "FullStory, or the proxy in between.")
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested beyond what can be read
            answer = None
        if not isinstance(answer, dict) or (request.expect and request.expect not in answer):
            raise UnexpectedAnswer(self._unexpected(request, response, raw))
        return answer

    def _save(self, request, response):
        sink, expected = request.sink, content_length(response)
        limits = DownloadLimits(request, self.config)
        limits.check_announced(expected)
        sink.begin(expected, response.headers.get("Content-Type"))
        size = 0
        while True:
            # read1: whatever has arrived, after at most one wait of request_timeout, so
            # the limits are checked however slowly the body comes.
            chunk = response.raw.read1(CHUNK_BYTES, decode_content=False)
            if not chunk:
                return size
            size += len(chunk)
            limits.check(size)
            sink.write(chunk)

    def _unexpected(self, request, response, raw):
        kind = response.headers.get("Content-Type") or "no Content-Type"
        # Redacted before it is cut, so no part of the key can show either.
        head = redact(raw[:4 * SHOWN_BYTES].decode("utf-8", "replace"))
        head = re.sub(r"\s+", " ", head).strip()
        shown, more = head[:SHOWN_BYTES], "…" if len(head) > SHOWN_BYTES else ""
        wanted = f"a JSON object with '{request.expect}'" if request.expect else "a JSON object"
        return (f"FullStory's answer to {request.what} is not what the API promises "
                f"({wanted}): {response.status_code}, {kind}, {len(raw)} bytes: "
                f"{shown!r}{more}. Check that {request.setting} "
                f"({self._base(request.url)}) points at FullStory, or the proxy in between.")

    @staticmethod
    def _base(url):
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def _raise_for_status(self, request, response):
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            asked = retry_after_seconds(response)
            wait = max(MIN_RETRY_AFTER, asked)
            error = RateLimited(f"{request.what}: rate limited (429)", response, wait)
            error.asked = asked
            raise error
        hints = request.hints or {}
        if status >= 500 or status == 408:
            reason = f"FullStory answered {status} {response.reason or ''}".rstrip()
            raise RetriableAPIError(reason, response)
        said = fullstory_words(self._error_body(response))
        status_said = f"{status} {said}" if said else str(status)
        if not request.auth and status in (401, 403):
            raise DownloadRefused(
                f"The storage behind the signed location of {request.what} refused the "
                f"download ({status_said}).", response, said)
        if status == 401:
            raise FatalAPIError(f"FullStory rejected the API key ({status_said}): check "
                                "api_key in the config.", response, said)
        quoted = f" FullStory said {said}." if said else ""
        if status == 403:
            default = (f"FullStory refused access (403) to {request.what}: the key lacks the "
                       "permission it needs.")
            raise Forbidden((hints.get(403) or default) + quoted, response, said)
        if status == 404:
            default = (f"FullStory answered 404 Not Found for {request.what}: check "
                       f"{request.setting}.")
            raise NotFound((hints.get(404) or default) + quoted, response, said)
        advice = hints.get(status) or (f"Check {request.setting} "
                                       f"({self._base(request.url)}) and the settings this "
                                       "request uses, then run again from the last STATE")
        raise FatalAPIError(f"FullStory refused {request.what} ({status_said}). {advice}.",
                            response, said)

    @staticmethod
    def _error_body(response):
        """The first bytes of a refusal's body (never all of it: it may not end)."""
        try:
            return response.raw.read(ERROR_BODY_BYTES, decode_content=True) or b""
        except (OSError, urllib3.exceptions.HTTPError, requests.RequestException):
            return b""


class DownloadLimits:
    """How large and how slow one try of a download may be (max_download_mb,
    min_download_kb_per_second): past either, the body is cut off with DownloadCutOff.
    The pace is measured over spans of twice request_timeout, so a body that came fast
    and then trickles is cut off as soon as one that trickled from the start."""

    def __init__(self, request, config, clock=time.monotonic):
        self.what, self.clock = request.what, clock
        self.max_bytes = config.max_download_mb * MB
        self.min_rate = config.min_download_kb_per_second * 1000
        self.span = 2 * config.request_timeout
        self.mark_time, self.mark_size = clock(), 0

    def check_announced(self, expected):
        """Refuse a body whose Content-Length is already past the size limit."""
        if expected and expected > self.max_bytes:
            raise DownloadCutOff(self._too_large(f"announces {expected / MB:,.1f} MB"))

    def check(self, size):
        """`size` bytes have come so far: raise DownloadCutOff past a limit."""
        if size > self.max_bytes:
            raise DownloadCutOff(self._too_large(f"went on past {self.max_bytes / MB:,.1f} MB"))
        if not self.min_rate:
            return
        now = self.clock()
        elapsed = now - self.mark_time
        if elapsed < self.span:
            return
        rate = (size - self.mark_size) / elapsed
        if rate < self.min_rate:
            raise DownloadCutOff(
                f"The {self.what} brought {rate / 1000:,.2f} kB/s over the last "
                f"{elapsed:,.0f} s ({size / MB:,.1f} MB so far), slower than "
                f"min_download_kb_per_second ({self.min_rate / 1000:g}); the link or the "
                "server in between is stalling the body. Lower min_download_kb_per_second "
                "(0 turns the check off) if this link really is that slow, then run again "
                "from the last STATE.")
        self.mark_time, self.mark_size = now, size

    def _too_large(self, how):
        return (f"The {self.what} {how}, more than max_download_mb "
                f"({self.max_bytes / MB:g}); a body that never ends, or a bundle larger "
                "than the setting allows. Raise max_download_mb if your bundles are that "
                "large, then run again from the last STATE.")


class Request:
    """One request as the API modules describe it."""

    __slots__ = ("what", "url", "setting", "params", "method", "body", "expect", "hints",
                 "sink", "auth", "paced", "call", "tries")

    def __init__(self, what, url, setting, params, method, body, expect, hints, sink=None,
                 auth=True, paced=False, call=None):
        self.what, self.url, self.setting, self.params = what, url, setting, params
        self.method, self.body, self.expect, self.hints = method, body, expect, hints
        self.sink, self.auth, self.paced = sink, auth, paced
        self.call = call or what
        self.tries = None
