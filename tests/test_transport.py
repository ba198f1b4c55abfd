import gzip
from datetime import datetime, timezone
from email.utils import format_datetime

import backoff
import pytest
import requests
import responses

from tap_fullstory import transport as transport_module
from tap_fullstory.config import parse_config
from tap_fullstory.errors import (
    DownloadCutOff,
    DownloadRefused,
    FatalAPIError,
    Forbidden,
    NotFound,
    UnexpectedAnswer,
)
from tap_fullstory.pacing import DownloadPacer
from tap_fullstory.transport import (
    MIN_RETRY_AFTER,
    RateLimitExhausted,
    RetriesExhausted,
    Transport,
    retry_after_seconds,
)

URL = "https://export.example.test/api/v1/export/list"
BODY_URL = "https://export.example.test/api/v1/export/get"


def make_transport(pacer=None, **settings):
    config = parse_config({"api_key": "k-secret", "start_date": "2026-01-01T00:00:00Z",
                           "user_agent": "tests/1.0", "max_downloads_per_minute": 60000,
                           "retry_backoff_seconds": 0.001, **settings})
    return Transport(config, pacer=pacer)


def get_json(transport, **kwargs):
    return transport.json("list", URL, "base_url", **kwargs)


class Sink:
    """What a Spool does for the transport: restart on each try, take each chunk."""

    def __init__(self):
        self.body, self.begun = b"", []

    def begin(self, expected, content_type):
        self.body = b""
        self.begun.append((expected, content_type))

    def write(self, chunk):
        self.body += chunk


class FakeTime:
    """One clock for the pacer and for backoff's sleeps, so waits cost nothing."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(backoff._sync.time, "sleep", fake.sleep)
    return fake


def response_with(headers, status=429):
    with responses.RequestsMock() as mock:
        mock.get("https://h.test/", status=status, headers=headers)
        return requests.get("https://h.test/")


@pytest.mark.parametrize("headers, seconds", [
    ({"Retry-After": "7"}, 7), ({"Retry-After": " 2.5 "}, 2.5), ({"Retry-After": "-3"}, 0),
    ({}, 60), ({"Retry-After": "soon"}, 60),
])
def test_retry_after_seconds(headers, seconds):
    response = response_with(headers)
    assert not response  # a 429 Response is falsy: the function must not test truth
    assert retry_after_seconds(response) == seconds


def test_retry_after_http_date():
    when = datetime(2026, 1, 1, 0, 0, 30, tzinfo=timezone.utc)
    response = response_with({"Retry-After": format_datetime(when, usegmt=True)})
    assert retry_after_seconds(response, now=when.timestamp() - 30) == 30


def test_retry_after_without_response_uses_default():
    assert retry_after_seconds(None, default=5) == 5


@responses.activate
def test_sends_key_agent_timeout_and_params():
    responses.get(URL, json={"exports": []})
    assert get_json(make_transport(request_timeout=42), params={"start": 1234}) == {
        "exports": []}
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic k-secret"
    assert request.headers["User-Agent"] == "tests/1.0"
    assert request.params == {"start": "1234"}
    assert request.req_kwargs["timeout"] == 42


@responses.activate
def test_429_waits_at_least_a_second_however_small_retry_after_is(fake_time):
    for _ in range(4):
        responses.get(URL, status=429, headers={"Retry-After": "0"})
    responses.get(URL, json={"exports": []})
    assert get_json(make_transport(max_retries=1)) == {"exports": []}
    assert len(responses.calls) == 5  # 429s never count against max_retries
    assert fake_time.slept == [MIN_RETRY_AFTER] * 4


@responses.activate
def test_a_download_after_a_429_also_waits_its_pacing_interval(fake_time):
    pacer = DownloadPacer(2, clock=lambda: fake_time.now, sleep=fake_time.sleep)
    responses.get(BODY_URL, status=429, headers={"Retry-After": "0"})
    responses.get(BODY_URL, body=b"[]")
    started = []
    real_wait = pacer.wait
    pacer.wait = lambda what: (real_wait(what), started.append(fake_time.now))
    make_transport(pacer=pacer).download("bundle 1", BODY_URL, "base_url", Sink(),
                                         paced=True)
    assert len(started) == 2 and started[1] - started[0] >= 30  # 2 a minute


@responses.activate
def test_429s_without_a_let_up_end_after_max_rate_limit_wait():
    responses.get(URL, status=429, headers={"Retry-After": "0"})
    with pytest.raises(RateLimitExhausted, match="^FullStory kept answering 429 \\(rate "
                       "limited\\) to list for more than 1 s \\(max_rate_limit_wait\\)"):
        get_json(make_transport(max_rate_limit_wait=1))
    assert 2 <= len(responses.calls) <= 3  # a second apart, never a busy loop


@responses.activate
def test_5xx_is_retried_then_succeeds():
    responses.get(URL, status=503)
    responses.get(URL, status=500)
    responses.get(URL, json={"exports": []})
    assert get_json(make_transport(max_retries=2)) == {"exports": []}
    assert len(responses.calls) == 3


@responses.activate
def test_5xx_gives_up_after_max_retries():
    responses.get(URL, status=502)
    with pytest.raises(RetriesExhausted, match="^Gave up on list after 3 tries: FullStory "
                       "answered 502 Bad Gateway. export.example.test answered but kept "
                       "failing; run again later from the last STATE.$"):
        get_json(make_transport(max_retries=2))
    assert len(responses.calls) == 3


@responses.activate
def test_connection_error_is_retried():
    responses.get(URL, body=requests.ConnectionError("connection refused"))
    responses.get(URL, json={"exports": []})
    assert get_json(make_transport()) == {"exports": []}


@pytest.mark.parametrize("status, error, message", [
    (401, FatalAPIError, "rejected the API key \\(401\\): check api_key"),
    (403, Forbidden, "refused access \\(403\\) to list: the key lacks the permission"),
    (404, NotFound, "404 Not Found for list: check base_url"),
    (400, FatalAPIError, r"FullStory refused list \(400\). Check base_url \(https://export"),
])
@responses.activate
def test_permanent_errors_fail_at_once(status, error, message):
    responses.get(URL, status=status)
    with pytest.raises(error, match=message) as raised:
        get_json(make_transport())
    assert len(responses.calls) == 1
    assert "k-secret" not in str(raised.value)


@responses.activate
def test_hints_name_what_to_check():
    responses.get(URL, status=403)
    with pytest.raises(Forbidden, match="^needs the Data Export add-on$"):  # no body
        get_json(make_transport(), hints={403: "needs the Data Export add-on"})


@pytest.mark.parametrize("status, body, error, line", [
    (400, {"code": "invalid_argument", "message": "segmentId is required"}, FatalAPIError,
     'FullStory refused list (400 invalid_argument: "segmentId is required"). Check '
     "base_url (https://export.example.test) and the settings this request uses, then run "
     "again from the last STATE."),
    (422, {"message": "bad\n  range", "code": "invalid_argument"}, FatalAPIError,
     'FullStory refused list (422 invalid_argument: "bad range").'),
    (401, {"code": "unauthorized", "message": "key k-secret revoked"}, FatalAPIError,
     'FullStory rejected the API key (401 unauthorized: "key <api_key> revoked"): check '
     "api_key in the config."),
    (403, {"code": "permission_denied", "message": "insufficient permissions"}, Forbidden,
     'FullStory refused access (403) to list: the key lacks the permission it needs. '
     'FullStory said permission_denied: "insufficient permissions".'),
    (404, {"code": "not_found"}, NotFound,
     "FullStory answered 404 Not Found for list: check base_url. FullStory said not_found."),
    (400, ["not", "an", "object"], FatalAPIError, "FullStory refused list (400). Check"),
    (400, {"code": 7, "message": None}, FatalAPIError, "FullStory refused list (400). Check"),
], ids=["400", "422 whitespace folded", "401 key redacted", "403", "404 code only",
        "a list", "odd types"])
@responses.activate
def test_a_refusal_quotes_fullstorys_message_and_code(status, body, error, line):
    responses.get(URL, status=status, json=body)
    with pytest.raises(error) as raised:
        get_json(make_transport())
    assert str(raised.value).startswith(line)
    assert "k-secret" not in str(raised.value) and "\n" not in str(raised.value)


@responses.activate
def test_a_long_or_endless_refusal_is_read_only_in_part():
    message = "x" * 100_000
    responses.get(URL, status=400, json={"code": "invalid_argument", "message": message})
    with pytest.raises(FatalAPIError) as raised:
        get_json(make_transport())
    assert len(str(raised.value)) < 500  # a body past 64 KiB is not JSON to us: no quote


@responses.activate
def test_a_signed_location_that_refuses_is_not_a_missing_permission():
    responses.get(BODY_URL, status=403, body=b"<Error><Code>AccessDenied</Code></Error>")
    with pytest.raises(DownloadRefused) as raised:
        make_transport().download("export download (window x)", BODY_URL, "api_base_url",
                                  Sink(), auth=False)
    assert not isinstance(raised.value, Forbidden)
    assert "refused the download (403)" in str(raised.value)
    assert "permission" not in str(raised.value)


@pytest.mark.parametrize("body, content_type, shown", [
    (b"<html><body>Proxy error: upstream k-secret down</body></html>", "text/html",
     "200, text/html, 61 bytes: '<html><body>Proxy error: upstream <api_key> down</body></htm'…"),
    (b'{"bundles": []}', "application/json", "200, application/json, 15 bytes: "
                                             "'{\"bundles\": []}'"),
    (b"[1, 2]", "application/json", "200, application/json, 6 bytes: '[1, 2]'"),
], ids=["a proxy's html page", "json without the key", "json that is not an object"])
@responses.activate
def test_an_answer_that_is_not_what_the_api_promises_says_what_came_back(
        body, content_type, shown):
    responses.get(URL, body=body, content_type=content_type)
    with pytest.raises(UnexpectedAnswer) as raised:
        get_json(make_transport(), expect="exports")
    message = str(raised.value)
    assert message == (f"FullStory's answer to list is not what the API promises (a JSON "
                       f"object with 'exports'): {shown}. Check that base_url "
                       "(https://export.example.test) points at FullStory, or the proxy in "
                       "between.")
    assert len(responses.calls) == 1


@responses.activate
def test_download_restarts_the_sink_on_each_try():
    responses.get(BODY_URL, status=500)
    responses.get(BODY_URL, body=b"[1,2,3]", content_type="application/json")
    sink = Sink()
    assert make_transport().download("bundle 17", BODY_URL, "base_url", sink,
                                     params={"id": 17}) == 7
    assert sink.body == b"[1,2,3]"
    assert [kind for _, kind in sink.begun] == ["application/json"]
    assert responses.calls[-1].request.params == {"id": "17"}


@responses.activate
def test_download_keeps_a_gzip_content_encoding_as_it_came():
    raw = gzip.compress(b'[{"a": 1}]' * 1000)
    responses.get(BODY_URL, body=raw, headers={"Content-Encoding": "gzip"},
                  content_type="application/json")
    sink = Sink()
    assert make_transport().download("bundle 1", BODY_URL, "base_url", sink) == len(raw)
    assert sink.body == raw  # not inflated: the spool holds the compressed size



@responses.activate
def test_download_without_the_key_for_signed_urls():
    responses.get("https://storage.test/x?sig=1", body=b"{}")
    make_transport().download("export", "https://storage.test/x?sig=1", "api_base_url",
                              Sink(), auth=False)
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_connection_refused_gives_up_with_the_cause():
    responses.get(URL, body=requests.ConnectionError(
        "HTTPConnectionPool(host='x', port=1): Max retries exceeded (Caused by "
        "NewConnectionError('<conn>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))"))
    with pytest.raises(RetriesExhausted, match="after 2 tries: Connection refused. Check"):
        get_json(make_transport(max_retries=1))


@responses.activate
def test_timeouts_are_retried_and_named():
    responses.get(BODY_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(RetriesExhausted, match="bundle 5 after 3 tries: no answer within "
                                               "7 s \\(request_timeout\\)"):
        make_transport(max_retries=2, request_timeout=7).download("bundle 5", BODY_URL,
                                                                  "base_url", Sink())
    assert len(responses.calls) == 3


@responses.activate
def test_downloads_are_paced_and_other_calls_are_not():
    clock = [100.0]
    waits = []
    pacer = DownloadPacer(2, clock=lambda: clock[0], sleep=waits.append)
    transport = make_transport(pacer=pacer)
    responses.get(BODY_URL, body=b"[]")
    responses.get(URL, json={"exports": []})
    transport.download("bundle 1", BODY_URL, "base_url", Sink(), paced=True)
    get_json(transport)
    clock[0] += 10
    transport.download("bundle 2", BODY_URL, "base_url", Sink(), paced=True)
    assert waits == [20.0]


@responses.activate
def test_downloads_ask_only_for_the_gzip_encoding_they_can_read():
    responses.get(BODY_URL, body=b"[]")
    make_transport().download("bundle 1", BODY_URL, "base_url", Sink())
    assert responses.calls[0].request.headers["Accept-Encoding"] == "gzip"


@responses.activate
def test_an_answer_larger_than_the_cap_is_one_line_never_read_whole(monkeypatch):
    monkeypatch.setattr(transport_module, "MAX_ANSWER_BYTES", 1000)
    responses.get(URL, body=b'{"exports": [' + b'{"Id": 1},' * 500 + b'{"Id": 2}]}')
    with pytest.raises(UnexpectedAnswer, match="is larger than 0 MiB"):
        make_transport().json("list", URL, "base_url", expect="exports")


@responses.activate
def test_an_answer_nested_beyond_reading_is_one_line():
    responses.get(URL, body=b'{"exports": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(UnexpectedAnswer, match="is not what the API promises"):
        make_transport().json("list", URL, "base_url", expect="exports")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def limits_of(clock, **settings):
    config = make_transport(**settings).config
    request = transport_module.Request("bundle 7", BODY_URL, "base_url", None, "GET", None,
                                       None, None)
    return transport_module.DownloadLimits(request, config, clock=clock)


def test_download_limits_cut_a_body_past_max_download_mb_announced_or_found():
    limits = limits_of(Clock(), max_download_mb=1)
    limits.check_announced(None)
    limits.check_announced(1_000_000)
    limits.check(1_000_000)
    with pytest.raises(DownloadCutOff, match=r"bundle 7 announces 1.0 MB.*max_download_mb"):
        limits.check_announced(1_000_001)
    with pytest.raises(DownloadCutOff, match=r"bundle 7 went on past 1.0 MB"):
        limits.check(1_000_001)


def test_download_limits_measure_the_pace_over_spans_of_twice_request_timeout():
    clock = Clock()
    limits = limits_of(clock, request_timeout=10, min_download_kb_per_second=1)
    clock.now += 19.9
    limits.check(10)  # slow, but the span is not over yet
    clock.now += 0.1
    limits.check(20_000)  # 20 kB in 20 s: exactly the floor
    clock.now += 20
    with pytest.raises(DownloadCutOff, match=r"min_download_kb_per_second \(1\)"):
        limits.check(20_000 + 19_999)  # the next span brought a byte too few


def test_download_limits_cut_a_fast_body_that_then_trickles():
    clock = Clock()
    limits = limits_of(clock, request_timeout=1, min_download_kb_per_second=10)
    clock.now += 2
    limits.check(50_000_000)  # fast
    clock.now += 2
    with pytest.raises(DownloadCutOff, match=r"0.00 kB/s over the last 2 s \(50.0 MB so far\)"):
        limits.check(50_000_001)


def test_download_limits_with_no_pace_floor_never_cut_for_pace():
    clock = Clock()
    limits = limits_of(clock, request_timeout=1, min_download_kb_per_second=0)
    for size in range(1, 100):
        clock.now += 1000
        limits.check(size)


def test_a_download_past_max_download_mb_is_not_retried():
    transport = make_transport(max_download_mb=1, max_retries=3)
    with responses.RequestsMock() as mock:
        mock.get(BODY_URL, body=b"x" * 1_500_000)
        with pytest.raises(DownloadCutOff, match="max_download_mb"):
            transport.download("bundle 7", BODY_URL, "base_url", Sink())
        assert len(mock.calls) == 1
