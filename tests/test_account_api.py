"""The paged REST endpoints and their one pager, against `responses`."""

import pytest
import responses

from tap_fullstory import account_api
from tap_fullstory.config import parse_config
from tap_fullstory.errors import Forbidden, UnexpectedAnswer
from tap_fullstory.transport import Transport

API = "https://api.example.test"


def transport():
    config = parse_config({"api_key": "k", "start_date": "2026-01-01T00:00:00Z",
                           "api_base_url": API, "retry_backoff_seconds": 0.001})
    return Transport(config)


def read(endpoint, hints=None):
    return [page.records for page in account_api.pages(transport(), API, endpoint, "test",
                                                         hints)]


@pytest.mark.parametrize("endpoint, records, request_token, answer_token", [
    (account_api.USERS, "results", "page_token", "next_page_token"),
    (account_api.SEGMENTS, "segments", "paginationToken", "nextPaginationToken"),
    (account_api.SEGMENTS, "segments", "paginationToken", "next_pagination_token"),
    (account_api.settings_history("blocking"), "versions", "paginationToken",
     "nextPaginationToken"),
    (account_api.settings_history("privacy"), "versions", "paginationToken",
     "next_pagination_token"),
])
@responses.activate
def test_every_token_spelling_is_followed_to_the_last_page(endpoint, records, request_token,
                                                           answer_token):
    url = API + endpoint.path
    responses.get(url, json={records: [{"n": 1}, {"n": 2}], answer_token: "t1"})
    responses.get(url, json={records: [{"n": 3}], answer_token: "t2"})
    responses.get(url, json={records: [{"n": 4}], answer_token: ""})
    assert read(endpoint) == [[{"n": 1}, {"n": 2}], [{"n": 3}], [{"n": 4}]]
    sent = [call.request.params for call in responses.calls]
    assert [p.get(request_token) for p in sent] == [None, "t1", "t2"]
    assert all(p.get("limit") == str(endpoint.params["limit"]) for p in sent) \
        if "limit" in endpoint.params else all("limit" not in p for p in sent)


@responses.activate
def test_a_missing_or_null_token_ends_the_pages():
    url = API + account_api.USERS.path
    responses.get(url, json={"results": [{"id": "1"}], "next_page_token": "a"})
    responses.get(url, json={"results": [{"id": "2"}], "next_page_token": None})
    assert read(account_api.USERS) == [[{"id": "1"}], [{"id": "2"}]]


@responses.activate
def test_a_current_settings_endpoint_is_one_object():
    responses.get(API + "/settings/recording/v1/blocking",
                  json={"blockedIps": ["10.0.0.*"], "nextPaginationToken": "ignored"})
    assert read(account_api.settings("blocking")) == [
        [{"blockedIps": ["10.0.0.*"], "nextPaginationToken": "ignored"}]]
    assert len(responses.calls) == 1


@responses.activate
def test_a_token_given_twice_is_an_error_not_a_loop():
    url = API + account_api.USERS.path
    responses.get(url, json={"results": [], "next_page_token": "same"})
    with pytest.raises(UnexpectedAnswer, match="a page token it had already given"):
        read(account_api.USERS)
    assert len(responses.calls) == 2


@pytest.mark.parametrize("answer", [{"users": []}, {"results": {"id": "1"}},
                                    {"results": [1, 2]}])
@responses.activate
def test_records_that_are_not_a_list_of_objects_are_named(answer):
    responses.get(API + account_api.USERS.path, json=answer)
    with pytest.raises(UnexpectedAnswer, match="api_base_url"):
        read(account_api.USERS)


@responses.activate
def test_403_carries_the_stream_hint():
    responses.get(API + account_api.USERS.path, status=403)
    with pytest.raises(Forbidden, match="^needs Architect$"):
        read(account_api.USERS, hints={403: "needs Architect"})


@responses.activate
def test_empty_pages_with_fresh_tokens_for_ever_stop_with_one_line():
    url = API + account_api.SEGMENTS.path
    for number in range(account_api.MAX_EMPTY_PAGES + 3):
        responses.get(url, json={"segments": [], "nextPaginationToken": f"t{number}"})
    with pytest.raises(UnexpectedAnswer, match="5 empty pages in a row"):
        read(account_api.SEGMENTS)
    assert len(responses.calls) == account_api.MAX_EMPTY_PAGES


@responses.activate
def test_a_few_empty_pages_between_full_ones_are_read_through():
    url = API + account_api.SEGMENTS.path
    for number in range(account_api.MAX_EMPTY_PAGES - 1):
        responses.get(url, json={"segments": [], "nextPaginationToken": f"e{number}"})
    responses.get(url, json={"segments": [{"id": "s"}], "nextPaginationToken": "x"})
    responses.get(url, json={"segments": [{"id": "t"}]})
    assert [r for page in read(account_api.SEGMENTS) for r in page] == [{"id": "s"},
                                                                         {"id": "t"}]
