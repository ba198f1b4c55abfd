import pytest
import responses

from tap_fullstory.config import parse_config
from tap_fullstory.data_export import GET_PATH, LIST_PATH, BundleSource
from tap_fullstory.errors import FatalAPIError, Forbidden, NotFound, UnexpectedAnswer
from tap_fullstory.transport import Transport
from tap_fullstory.units import Unit

BASE = "https://export.example.test"
DAY = 86400


def make_source(**settings):
    config = parse_config({"api_key": "k", "start_date": "2026-01-01T00:00:00Z",
                           "base_url": BASE, "max_downloads_per_minute": 60000, **settings})
    return BundleSource(Transport(config), config)


def exports(first, count):
    return [{"Id": 1000 + i, "Start": i * DAY, "Stop": (i + 1) * DAY}
            for i in range(first, first + count)]


@responses.activate
def test_plan_pages_from_the_last_stop_until_a_short_page():
    responses.get(BASE + LIST_PATH, json={"exports": exports(0, 20)})
    responses.get(BASE + LIST_PATH, json={"exports": exports(20, 3)})
    plan = list(make_source().plan(0))
    assert [b.id for b in plan] == [1000 + i for i in range(23)]
    assert [c.request.params for c in responses.calls] == [{"start": "0"},
                                                          {"start": str(20 * DAY)}]


@responses.activate
def test_end_date_bounds_the_plan_and_the_listing():
    responses.get(BASE + LIST_PATH, json={"exports": exports(0, 20)})
    plan = list(make_source(start_date="1970-01-01T00:00:00Z",
                            end_date="1970-01-04T00:00:00Z").plan(0))
    assert [b.stop // DAY for b in plan] == [1, 2, 3]
    assert len(responses.calls) == 1


@responses.activate
def test_numbers_sent_as_strings_or_floats_are_read():
    responses.get(BASE + LIST_PATH, json={"exports": [
        {"Id": "1767225600048", "Start": 0.0, "Stop": "86400"}]})
    assert list(make_source().plan(0)) == [Unit(id=1767225600048, start=0, stop=86400)]


@responses.activate
def test_malformed_entry_is_a_clear_error():
    responses.get(BASE + LIST_PATH, json={"exports": [{"Id": "x", "Start": 0, "Stop": 1}]})
    with pytest.raises(FatalAPIError, match="without integer Id/Start/Stop"):
        list(make_source().plan(0))


@pytest.mark.parametrize("answer", [{"bundles": []}, {"exports": {"Id": 1}}])
@responses.activate
def test_list_without_an_exports_array_says_what_came_back(answer):
    responses.get(BASE + LIST_PATH, json=answer)
    with pytest.raises(UnexpectedAnswer, match="check|Check that base_url"):
        list(make_source().plan(0))


@responses.activate
def test_403_names_the_data_export_add_on():
    responses.get(BASE + LIST_PATH, status=403)
    with pytest.raises(Forbidden, match="needs the Data Export add-on"):
        list(make_source().plan(0))


class Sink:
    def begin(self, expected, content_type):
        self.body = b""

    def write(self, chunk):
        self.body += chunk


@responses.activate
def test_fetch_downloads_the_bundle_by_id():
    responses.get(BASE + GET_PATH, body=b"[]")
    sink = Sink()
    assert not make_source().fetch(Unit(id=17, start=0, stop=DAY), sink).renumbered
    assert responses.calls[0].request.params == {"id": "17"}


@responses.activate
def test_fetch_404_names_the_bundle():
    responses.get(BASE + GET_PATH, status=404)
    with pytest.raises(NotFound, match="^FullStory answered 404 Not Found for bundle 99: the "
                                       "bundle no longer exists"):
        make_source().fetch(Unit(id=99, start=0, stop=DAY), Sink())
