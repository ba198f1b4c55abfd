"""Stopping cleanly on SIGINT and SIGTERM.

A signal raises Interrupted at once, except while a Singer line is being written or a
bundle's rows are being emitted: there it is noted, and raised as soon as the line is
complete or the current row is done, so the last STATE out is true and no line is cut.
A second signal raises at once.
"""

import signal
from contextlib import contextmanager


class Interrupted(BaseException):
    """The tap was asked to stop by a signal; exits with 128 + the signal number."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
        self.name = signal.Signals(signum).name


class StopSignals:
    def __init__(self):
        self.received = None
        self._depth = 0

    def install(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        repeated = self.received is not None
        self.received = signum
        if self._depth == 0 or repeated:
            raise Interrupted(signum)

    @contextmanager
    def deferred(self):
        """Hold a signal back until the block ends, then raise it."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.received is not None:
            raise Interrupted(self.received)

    def check(self):
        """Raise a held-back signal now (called between rows)."""
        if self.received is not None:
            raise Interrupted(self.received)


STOP = StopSignals()
