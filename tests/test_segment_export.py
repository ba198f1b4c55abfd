"""The Segment Export API module against `responses`: paths, bodies and odd answers."""

import json

import pytest
import responses

from tap_fullstory.config import parse_config
from tap_fullstory.errors import UnexpectedAnswer
from tap_fullstory.segment_export import (
    EXPORTS_PATH,
    OPERATIONS_PATH,
    RESULTS_PATH,
    ExportFailed,
    WindowSource,
)
from tap_fullstory.spool import Standing
from tap_fullstory.transport import Transport
from tap_fullstory.units import Unit

API = "https://api.example.test"
WINDOW = Unit(id=176722560006, start=1767225600, stop=1767247200)
LOCATION = "https://storage.example.test/export.ndjson.gz?sig=abc"


def make_source(export_type="TYPE_EVENT"):
    config = parse_config({"api_key": "k", "start_date": "2026-01-01T00:00:00Z",
                           "source": "segment_export", "api_base_url": API,
                           "export_window_hours": 6, "retry_backoff_seconds": 0.001})
    return WindowSource(Transport(config), config, export_type)


class Sink:
    def begin(self, expected, content_type):
        self.body = b""

    def write(self, chunk):
        self.body += chunk


def serve_export(operation_answers, location=LOCATION):
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-1"})
    for answer in operation_answers:
        responses.get(API + OPERATIONS_PATH + "op-1", json=answer)
    responses.get(API + RESULTS_PATH.format("se-1"), json={"location": location})
    responses.get(LOCATION, body=b'{"EventType": "click"}\n')


DONE = {"state": "COMPLETED", "results": {"searchExportId": "se-1"}}


@pytest.mark.parametrize("export_type", ["TYPE_EVENT", "TYPE_INDIVIDUAL"])
@responses.activate
def test_a_window_is_exported_polled_and_downloaded_without_the_key(export_type):
    serve_export([{"state": "PENDING", "estimatePctComplete": 40}, DONE])
    sink = Sink()
    got = make_source(export_type=export_type).fetch(WINDOW, sink, Standing())
    assert sink.body == b'{"EventType": "click"}\n' and not got.renumbered
    assert json.loads(responses.calls[0].request.body) == {
        "segmentId": "everyone", "type": export_type, "format": "FORMAT_NDJSON",
        "timeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T06:00:00Z"},
        "segmentTimeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T06:00:00Z"}}
    assert got.origin == {"operationId": "op-1", "searchExportId": "se-1"}
    assert "Authorization" not in responses.calls[-1].request.headers
    assert responses.calls[1].request.headers["Authorization"] == "Basic k"


@responses.activate
def test_a_saved_export_is_read_again_and_an_expired_one_made_anew():
    responses.get(API + RESULTS_PATH.format("se-9"), status=404)
    serve_export([DONE])
    standing = Standing(5, {"operationId": "op-9", "searchExportId": "se-9"})
    got = make_source().fetch(WINDOW, Sink(), standing)
    assert got.renumbered and got.origin["searchExportId"] == "se-1"


@pytest.mark.parametrize("expires, asked_again", [
    ("2020-01-01T00:00:00Z", False),   # past results.expires: made again at once
    ("2999-01-01T00:00:00Z", True),    # still kept: its results are asked for
    ("soon", True),                    # unreadable: only FullStory's answer tells
])
@responses.activate
def test_results_expires_says_when_an_export_must_be_made_again(expires, asked_again):
    responses.get(API + RESULTS_PATH.format("se-9"), json={"location": LOCATION})
    serve_export([{**DONE, "results": {**DONE["results"], "expires": "2999-02-02T00:00:00Z"}}])
    standing = Standing(5, {"operationId": "op-9", "searchExportId": "se-9",
                            "expires": expires})
    got = make_source().fetch(WINDOW, Sink(), standing)
    urls = [call.request.url for call in responses.calls]
    assert (API + RESULTS_PATH.format("se-9") in urls) == asked_again
    if asked_again:
        assert got.origin["searchExportId"] == "se-9" and not got.renumbered
    else:
        assert got.renumbered and got.origin == {
            "operationId": "op-1", "searchExportId": "se-1",
            "expires": "2999-02-02T00:00:00Z"}


@responses.activate
def test_a_lapsed_location_is_asked_for_again_once():
    serve_export([DONE])
    responses.replace(responses.GET, LOCATION, status=403)
    responses.get(LOCATION, body=b"{}\n")
    make_source().fetch(WINDOW, Sink(), Standing())
    assert [c.request.url for c in responses.calls].count(LOCATION) == 2


@responses.activate
def test_a_failed_operation_names_the_window_and_the_details():
    serve_export([{"state": "FAILED", "errorDetails": "too big"}])
    with pytest.raises(ExportFailed, match="^FullStory could not export window "
                       "2026-01-01T00:00:00.000000Z to 2026-01-01T06:00:00.000000Z "
                       "\\(operation op-1\\): too big."):
        make_source().fetch(WINDOW, Sink(), Standing())


@pytest.mark.parametrize("answer, message", [
    ([{"state": "COMPLETED"}], "a JSON object with 'state'"),
    ({"id": "op-1"}, "a JSON object with 'state'"),
    ({"state": "COMPLETED", "results": ["se-1"]}, "completed without a searchExportId"),
], ids=["a list", "no state", "results not an object"])
@responses.activate
def test_an_operation_answer_that_is_not_an_object_is_named(answer, message):
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-1"})
    responses.get(API + OPERATIONS_PATH + "op-1", json=answer)
    with pytest.raises(UnexpectedAnswer, match=message):
        make_source().fetch(WINDOW, Sink(), Standing())


@responses.activate
def test_a_create_answer_without_an_operation_is_named():
    responses.post(API + EXPORTS_PATH, json={"id": "x"})
    with pytest.raises(UnexpectedAnswer, match="check|Check that api_base_url"):
        make_source().fetch(WINDOW, Sink(), Standing())


def test_windows_are_planned_up_to_end_date_or_the_settled_past():
    source = make_source()
    source.now = lambda: 1767225600 + 3 * 86400  # three days after 2026-01-01
    windows = source.plan(1767225600)
    survey = windows.survey()
    assert survey.count == 8 and survey.last.stop == 1767225600 + 2 * 86400  # settle 24 h
    assert next(iter(windows)).id == 1767225600 * 100 + 6
    assert len(list(windows)) == 8


def waits(answers, first=0.1, longest=60, started=None, now=None):
    """What poll_waits yields after each answer, on a clock that says `now`."""
    from tap_fullstory.segment_export import poll_waits
    generator = poll_waits(first, longest, started, clock=lambda: now)
    generator.send(None)
    return [generator.send(answer) for answer in answers]


def test_polls_double_while_there_is_no_estimate():
    assert waits([{"state": "PENDING"}] * 5) == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert waits([{}] * 12)[-1] == 60  # never longer than the longest


def test_polls_go_when_the_estimate_says_the_export_is_done():
    # created 30 s ago and 75 % done: done in another 10 s, sooner than the doubling's 12.8
    answers = [{"state": "PENDING"}] * 7 + [{"estimatePctComplete": 75}]
    assert waits(answers, started=100.0, now=130.0)[-1] == 10.0
    # nearly done: the shortest wait, never a busy loop
    assert waits([{"estimatePctComplete": 99.99}], started=0.0, now=10.0) == [0.1]
    # an estimate that says later never waits longer than the doubling would
    assert waits([{"estimatePctComplete": 10}] * 3, started=0.0, now=50.0) == [0.1, 0.2, 0.4]
    # an export created by an earlier run (no start known) doubles as before
    assert waits([{"estimatePctComplete": 50}] * 2) == [0.1, 0.2]


@responses.activate
def test_an_export_made_ahead_that_expired_by_its_turn_is_made_again():
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-1"})
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-2"})
    responses.get(API + OPERATIONS_PATH + "op-1", json={
        "state": "COMPLETED", "results": {"searchExportId": "se-1",
                                          "expires": "2020-01-01T00:00:00Z"}})
    responses.get(API + OPERATIONS_PATH + "op-2", json={
        "state": "COMPLETED", "results": {"searchExportId": "se-2",
                                          "expires": "2999-01-01T00:00:00Z"}})
    responses.get(API + RESULTS_PATH.format("se-2"), json={"location": LOCATION})
    responses.get(LOCATION, body=b"{}\n")
    source = make_source()
    source.prepare([WINDOW], Standing())
    got = source.fetch(WINDOW, Sink(), Standing())
    assert got.origin["operationId"] == "op-2" and got.origin["searchExportId"] == "se-2"
    assert API + RESULTS_PATH.format("se-1") not in [c.request.url for c in responses.calls]
    assert source._ahead == {} and source._created == {}  # nothing kept once fetched


@responses.activate
def test_a_location_that_answers_404_twice_means_a_new_export_not_a_poison_window():
    serve_export([DONE])
    responses.replace(responses.GET, LOCATION, status=404)
    responses.get(LOCATION, status=404)
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-1"})
    responses.get(LOCATION, body=b"{}\n")
    got = make_source().fetch(WINDOW, Sink(), Standing())
    assert got.renumbered
    assert [c.request.url for c in responses.calls].count(API + EXPORTS_PATH) == 2


@pytest.mark.parametrize("location", ["ftp://storage.example.test/x", "file:///etc/passwd",
                                      "storage.example.test/no-scheme", "https://"])
@responses.activate
def test_a_location_that_is_not_an_http_url_is_a_bad_window(location):
    serve_export([DONE], location=location)
    with pytest.raises(ExportFailed, match="not an http\\(s\\) URL"):
        make_source().fetch(WINDOW, Sink(), Standing())


@responses.activate
def test_an_odd_estimate_is_not_a_traceback():
    serve_export([{"state": "PENDING", "estimatePctComplete": [40]},
                  {"state": "PENDING", "estimatePctComplete": {"a": 1}}, DONE])
    assert not make_source().fetch(WINDOW, Sink(), Standing()).renumbered


@responses.activate
def test_a_create_retried_after_a_5xx_counts_the_export_it_may_have_left():
    responses.post(API + EXPORTS_PATH, status=503)  # FullStory may have made this one
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-1"})
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-2"})
    responses.post(API + EXPORTS_PATH, json={"operationId": "op-3"})
    source = make_source()
    later = [Unit(id=WINDOW.id + n * 600, start=WINDOW.start + n * 21600,
                  stop=WINDOW.stop + n * 21600) for n in range(3)]
    source.prepare(later, Standing())
    # three in flight at most: the orphan of the failed try takes the third's place
    assert sorted(source._ahead) == [later[0].id, later[1].id]
    assert source._orphans == {"op-1": 1}
    responses.get(API + OPERATIONS_PATH + "op-1", json=DONE)
    responses.get(API + RESULTS_PATH.format("se-1"), json={"location": LOCATION})
    responses.get(LOCATION, body=b"{}\n")
    source.fetch(later[0], Sink(), Standing())
    assert source._orphans == {}  # done with the export made at the same moment
    source.prepare(later[1:], Standing())
    assert sorted(source._ahead) == [later[1].id, later[2].id]
