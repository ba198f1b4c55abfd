"""Work done ahead on a background thread: downloads while the main thread emits.

A Prefetcher runs jobs (each makes one item: a downloaded Spool, a page of records, a plan)
in order on a daemon thread, at most `ahead` items beyond the one the consumer holds, and
hands them over in order; a job's error arrives after the items before it. The main thread
waits for items only through STOP, so a stop request ends the wait at once, whatever the
job is doing (a slow download, a 429 wait): the network never blocks the main thread.

Ownership: the thread running a job owns its item until it is queued; the queue owns it
until the consumer takes it; then the consumer does. Whoever owns an item when the
Prefetcher closes closes it (if it has `close`), exactly once.
"""

import queue
import threading

from tap_fullstory.stopping import STOP

_DONE = object()
SLOT_TICK = 0.1  # seconds between looks at `closed` while waiting for a free slot


class _Failure:
    def __init__(self, exc):
        self.exc = exc


def _close(item):
    close = getattr(item, "close", None)
    if close is not None:
        close()


class Prefetcher:
    """Iterate to get each job's item, in order; use as a context manager."""

    def __init__(self, jobs, ahead=1, name="prefetch"):
        """`jobs` is a callable returning an iterable of callables, called on the thread
        (so planning, such as listing bundles, happens there too)."""
        self._jobs = jobs
        self._items = queue.Queue()
        self._slots = threading.Semaphore(ahead + 1)  # + the item the consumer holds
        self._held = False
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __iter__(self):
        return self

    def __next__(self):
        if self._held:  # the consumer is done with the item it took last
            self._held = False
            self._slots.release()
        item = STOP.get(self._items)
        if item is _DONE:
            self._items.put(_DONE)  # later calls end too
            raise StopIteration
        if isinstance(item, _Failure):
            self._items.put(item)
            raise item.exc
        self._held = True
        return item

    def _run(self):
        try:
            for job in self._jobs():
                if not self._take_slot():
                    return
                item = job()
                if not self._hand_over(item):
                    return
            self._hand_over(_DONE)
        except BaseException as exc:  # handed to the consumer, in order
            self._hand_over(_Failure(exc))

    def _take_slot(self):
        while not self._slots.acquire(timeout=SLOT_TICK):
            if self._closed:
                return False
        return not self._closed

    def _hand_over(self, item):
        with self._lock:
            if self._closed:
                _close(item)
                return False
            self._items.put(item)
            return True

    def close(self):
        """Stop taking jobs, and close every item not yet handed to the consumer."""
        with self._lock:
            self._closed = True
            while True:
                try:
                    item = self._items.get_nowait()
                except queue.Empty:
                    break
                _close(item)


def in_background(job, name="background"):
    """Run `job` on a daemon thread; its result, its error, or Stopped if a stop is asked
    while it runs (the job's thread then ends with the process, owning what it made)."""
    with Prefetcher(lambda: [job], ahead=0, name=name) as one:
        return next(one)
