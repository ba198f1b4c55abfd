"""Clean stops on SIGINT and SIGTERM.

The signal handler only records which signal asked the tap to stop; it never raises. The
main thread checks the request between rows (`STOP.check()`) and waits only through
`STOP.wait()` and `STOP.get()`, which look at it every TICK seconds. So a stop never cuts a
line or lands between a row and its bookkeeping: ordinary code notices it, writes a STATE
covering exactly what went out, and exits with 128 + the signal number.

The one thing that can keep ordinary code from noticing is a write to a target that has
stopped reading. A second signal that finds the tap still inside a write GRACE seconds or
more after the first then ends the process at once, as a kill would: what the target has
read up to its last STATE is still exact, and the rows after it come again. Any other
second signal (a double Ctrl-C, a wrapper forwarding the same stop) is ignored, so it
never turns a clean stop into a kill.
"""

import os
import queue
import signal
import time

TICK = 0.05  # seconds between looks at the stop request while waiting
GRACE = 1.0  # a clean stop writes its last STATE within ms unless stdout is not being read


class Stopped(BaseException):
    """Raised by STOP.check() once a stop was asked; a BaseException so that no
    `except Exception` on the way mistakes it for a failure."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
        self.name = signal.Signals(signum).name


class StopRequests:
    """The one record of whether, and by which signal, the tap was asked to stop."""

    def __init__(self):
        self.signum = None
        self.asked_at = None
        self.writing = False  # set by the message writer while it writes to stdout

    def install(self):
        """Route SIGINT and SIGTERM here; returns self."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._record)
        return self

    def _record(self, signum, frame):
        now = time.monotonic()
        if self.signum is None:
            self.signum, self.asked_at = signum, now
            return
        if not self.writing or now - self.asked_at < GRACE:
            return  # the first stop is on its way
        name = signal.Signals(signum).name
        os.write(2, f"CRITICAL Stopped at once by a second {name}: stdout was not being read, "
                    "so no final STATE could be written; the last STATE the target read "
                    "resumes the sync (rows after it come again, as after a kill).\n"
                 .encode())
        os._exit(128 + signum)

    def check(self):
        """Raise Stopped if a stop was asked."""
        if self.signum is not None:
            raise Stopped(self.signum)

    def wait(self, seconds):
        """Sleep `seconds`, or raise Stopped as soon as a stop is asked."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, TICK))

    def get(self, items):
        """The next item of the queue `items`, or Stopped if a stop is asked first."""
        while True:
            self.check()
            try:
                return items.get(timeout=TICK)
            except queue.Empty:
                pass


STOP = StopRequests()
