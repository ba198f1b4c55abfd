import io
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
import requests
import responses

from tap_fullstory.client import (
    GET_PATH,
    LIST_PATH,
    FullStoryClient,
    RetriesExhausted,
    retry_after_seconds,
)
from tap_fullstory.config import parse_config
from tap_fullstory.errors import FatalAPIError
from tap_fullstory.pacing import DownloadPacer

BASE_URL = "https://export.example.test"
LIST_URL = BASE_URL + LIST_PATH
GET_URL = BASE_URL + GET_PATH


def make_client(**settings):
    config = parse_config({"api_key": "k-secret", "start_date": "2026-01-01T00:00:00Z",
                           "base_url": BASE_URL, "user_agent": "tests/1.0",
                           "max_downloads_per_minute": 60000, "retry_backoff_seconds": 0.001,
                           **settings})
    return FullStoryClient(config)


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
def test_list_sends_key_agent_timeout_and_start():
    responses.get(LIST_URL, json={"exports": [{"Id": 1, "Start": 0, "Stop": 10}]})
    assert make_client(request_timeout=42).list_exports(1234) == [
        {"Id": 1, "Start": 0, "Stop": 10}]
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic k-secret"
    assert request.headers["User-Agent"] == "tests/1.0"
    assert request.params == {"start": "1234"}
    assert request.req_kwargs["timeout"] == 42


@responses.activate
def test_429_waits_and_never_counts_as_a_failure():
    for _ in range(4):
        responses.get(LIST_URL, status=429, headers={"Retry-After": "0"})
    responses.get(LIST_URL, json={"exports": []})
    assert make_client(max_retries=1).list_exports(0) == []
    assert len(responses.calls) == 5


@responses.activate
def test_5xx_is_retried_then_succeeds():
    responses.get(LIST_URL, status=503)
    responses.get(LIST_URL, status=500)
    responses.get(LIST_URL, json={"exports": []})
    assert make_client(max_retries=2).list_exports(0) == []
    assert len(responses.calls) == 3


@responses.activate
def test_5xx_gives_up_after_max_retries():
    responses.get(LIST_URL, status=502)
    with pytest.raises(RetriesExhausted, match="^Gave up on list after 3 tries: FullStory "
                       "answered 502 Bad Gateway. Check that export.example.test is "
                       "reachable, then run again from the last STATE.$"):
        make_client(max_retries=2).list_exports(0)
    assert len(responses.calls) == 3


@responses.activate
def test_connection_error_is_retried():
    responses.get(LIST_URL, body=requests.ConnectionError("connection refused"))
    responses.get(LIST_URL, json={"exports": []})
    assert make_client().list_exports(0) == []


@pytest.mark.parametrize("status, message", [
    (401, "rejected the API key \\(401\\): check api_key"),
    (403, "Data Export add-on"),
    (404, "404 Not Found for list: check base_url"),
])
@responses.activate
def test_permanent_errors_fail_at_once(status, message):
    responses.get(LIST_URL, status=status)
    with pytest.raises(FatalAPIError, match=message) as raised:
        make_client().list_exports(0)
    assert len(responses.calls) == 1
    assert "k-secret" not in str(raised.value)


@responses.activate
def test_list_without_exports_array_is_an_error():
    responses.get(LIST_URL, json={"bundles": []})
    with pytest.raises(FatalAPIError, match="no 'exports' array"):
        make_client().list_exports(0)


@responses.activate
def test_download_writes_the_body_and_restarts_it_on_retry():
    responses.get(GET_URL, status=500)
    responses.get(GET_URL, body=b"[1,2,3]", content_type="application/json")
    handle = io.BytesIO(b"left over from a broken try")
    assert make_client().download(17, handle) == 7
    assert handle.getvalue() == b"[1,2,3]"
    assert responses.calls[-1].request.params == {"id": "17"}


@responses.activate
def test_download_404_names_the_bundle():
    responses.get(GET_URL, status=404)
    with pytest.raises(FatalAPIError, match="bundle 99"):
        make_client().download(99, io.BytesIO())


@responses.activate
def test_connection_refused_gives_up_with_the_cause():
    responses.get(LIST_URL, body=requests.ConnectionError(
        "HTTPConnectionPool(host='x', port=1): Max retries exceeded (Caused by "
        "NewConnectionError('<conn>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))"))
    with pytest.raises(RetriesExhausted, match="after 2 tries: Connection refused. Check"):
        make_client(max_retries=1).list_exports(0)


@responses.activate
def test_timeouts_are_retried_and_named():
    responses.get(GET_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(RetriesExhausted, match="bundle 5 after 3 tries: no answer within "
                                               "7 s \\(request_timeout\\)"):
        make_client(max_retries=2, request_timeout=7).download(5, io.BytesIO())
    assert len(responses.calls) == 3


@responses.activate
def test_downloads_are_paced_and_lists_are_not():
    clock = [100.0]
    waits = []
    pacer = DownloadPacer(2, clock=lambda: clock[0], sleep=waits.append)
    config = parse_config({"api_key": "k", "start_date": "2026-01-01T00:00:00Z",
                           "base_url": BASE_URL})
    client = FullStoryClient(config, pacer=pacer)
    responses.get(GET_URL, body=b"[]")
    responses.get(LIST_URL, json={"exports": []})
    client.download(1, io.BytesIO())
    client.list_exports(0)
    clock[0] += 10
    client.download(2, io.BytesIO())
    assert waits == [20.0]
