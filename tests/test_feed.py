import signal
import threading

import pytest

from tap_fullstory.feed import Prefetcher, in_background
from tap_fullstory.stopping import STOP, Stopped


class Item:
    """Stands for a Spool: counts how many are open and how often each is closed."""

    open_now = 0
    lock = threading.Lock()

    def __init__(self, number):
        self.number, self.closes = number, 0
        with Item.lock:
            Item.open_now += 1

    def close(self):
        self.closes += 1
        with Item.lock:
            Item.open_now -= 1


@pytest.fixture(autouse=True)
def fresh():
    Item.open_now = 0
    yield
    STOP.signum = None


def jobs_making(made, count, fail_on=None, gate=None):
    def job(number):
        if gate is not None:
            gate.wait()
        if number == fail_on:
            raise ValueError(f"job {number} failed")
        item = Item(number)
        made.append(item)
        return item
    return lambda: (lambda n=n: job(n) for n in range(count))


def test_items_come_in_order_at_most_one_ahead():
    made, seen = [], []
    with Prefetcher(jobs_making(made, 30), ahead=1) as feed:
        for item in feed:
            assert Item.open_now <= 2  # the one held and the one made ahead
            seen.append(item.number)
            item.close()
    assert seen == list(range(30))
    assert all(item.closes == 1 for item in made)


def test_an_error_arrives_after_the_items_before_it():
    made, seen = [], []
    with pytest.raises(ValueError, match="job 3 failed"):
        with Prefetcher(jobs_making(made, 5, fail_on=3)) as feed:
            for item in feed:
                seen.append(item.number)
                item.close()
    assert seen == [0, 1, 2]


def test_leaving_early_closes_every_item_exactly_once():
    made = []
    with Prefetcher(jobs_making(made, 10)) as feed:
        for item in feed:
            item.close()
            if item.number == 4:
                break
    assert Item.open_now == 0
    assert all(item.closes == 1 for item in made)


def test_an_item_finished_after_close_is_closed_by_its_maker():
    made, gate = [], threading.Event()
    feed = Prefetcher(jobs_making(made, 1, gate=gate), ahead=1).__enter__()
    feed.close()   # while the job is still running
    gate.set()
    feed._thread.join(timeout=10)
    assert [item.closes for item in made] == [1]


def test_a_stop_request_ends_the_wait_for_the_next_item():
    gate = threading.Event()  # the job never finishes on its own: a download that hangs
    with Prefetcher(jobs_making([], 1, gate=gate)) as feed:
        STOP.signum = signal.SIGTERM
        with pytest.raises(Stopped) as stopped:
            next(feed)
    assert stopped.value.exit_code == 143
    gate.set()


def test_in_background_returns_the_result_or_raises_the_error():
    assert in_background(lambda: 42) == 42
    with pytest.raises(KeyError):
        in_background(lambda: {}["missing"])
