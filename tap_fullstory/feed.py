"""The bundle feed: downloads each bundle while the previous one is emitted.

A background thread runs the downloads, one bundle ahead of the one being parsed and
emitted and never more, so at most two bundle files are on disk. Its errors reach the
consumer in order, after the bundles before them.
"""

import queue
import threading

from tap_fullstory.spool import BundleSpool

SPOOL_FILES = 2  # the bundle being emitted and the one downloading ahead of it
_DONE = object()


class BundleFeed:
    """Iterate to get each bundle's BundleSpool, in order; use as a context manager."""

    def __init__(self, source, bundles, spool_dir=None):
        self._source, self._bundles, self._spool_dir = source, bundles, spool_dir
        self._ready = queue.Queue()
        self._slots = threading.Semaphore(SPOOL_FILES)
        self._closed = threading.Event()
        self._current = None  # the spool being downloaded, so close() can remove it
        self._thread = threading.Thread(target=self._produce, name="bundle-feed",
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __iter__(self):
        while True:
            item = self._ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            try:
                yield item
            finally:
                item.remove()
                self._slots.release()

    def _produce(self):
        try:
            for bundle in self._bundles:
                self._slots.acquire()
                spool = self._current = BundleSpool(bundle, self._spool_dir)
                if self._closed.is_set():
                    spool.remove()
                    return
                spool.download(self._source)
                self._current = None
                self._ready.put(spool)
            self._ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, in order
            self._ready.put(exc)

    def close(self):
        """Stop downloading and remove every file the feed made that is still on disk."""
        self._closed.set()
        current = self._current
        if current is not None:
            current.remove()  # the thread may go on writing to it, unlinked
        self._slots.release()  # let a waiting thread see it is closed
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, BundleSpool):
                item.remove()
