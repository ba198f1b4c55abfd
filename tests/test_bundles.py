import pytest

from tap_fullstory.bundles import Bundle, list_bundles
from tap_fullstory.errors import FatalAPIError

DAY = 86400


class FakeLister:
    """Answers LIST like FullStory: the first 20 bundles whose Stop is after `start`."""

    def __init__(self, count):
        self.exports = [{"Id": 1000 + i, "Start": i * DAY, "Stop": (i + 1) * DAY}
                        for i in range(count)]
        self.starts = []

    def list_exports(self, start):
        self.starts.append(start)
        return [e for e in self.exports if float(e["Stop"]) > start][:20]


@pytest.mark.parametrize("count, calls", [(0, 1), (5, 1), (20, 2), (41, 3), (60, 4)])
def test_pages_until_a_short_page(count, calls):
    lister = FakeLister(count)
    bundles = list(list_bundles(lister, 0))
    assert [b.id for b in bundles] == [1000 + i for i in range(count)]
    assert len(lister.starts) == calls
    assert lister.starts[1:] == [20 * DAY * k for k in range(1, calls)]


def test_starts_after_the_given_stop():
    bundles = list(list_bundles(FakeLister(10), 3 * DAY))
    assert bundles[0] == Bundle(id=1003, start=3 * DAY, stop=4 * DAY)


def test_unordered_pages_are_emitted_oldest_first():
    lister = FakeLister(5)
    lister.exports.reverse()
    assert [b.stop for b in list_bundles(lister, 0)] == [DAY * i for i in range(1, 6)]


def test_malformed_entry_is_a_clear_error():
    lister = FakeLister(0)
    lister.exports = [{"Id": "x", "Start": 0, "Stop": 1}]
    with pytest.raises(FatalAPIError, match="without integer Id/Start/Stop"):
        list(list_bundles(lister, 0))


def test_numbers_sent_as_strings_or_floats_are_read():
    lister = FakeLister(0)
    lister.exports = [{"Id": "1767225600048", "Start": 0.0, "Stop": "86400"}]
    assert list(list_bundles(lister, 0)) == [Bundle(id=1767225600048, start=0, stop=86400)]
