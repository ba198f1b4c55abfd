"""The sandbox's Segment Export state: operations that complete after a few polls, and the
results they make, which can be expired as FullStory expires them after some days."""

import threading


class SegmentExports:
    """The Segment Export operations and results a sandbox has made."""

    def __init__(self, polls=2):
        self.polls = polls  # PENDING answers before an operation completes
        self.operations = {}  # id -> {"window", "polls_left", "fail", "search"}
        self.results = {}  # searchExportId -> (start, stop), while not expired
        self.authorized_downloads = 0  # downloads that wrongly carried the API key
        self._lock = threading.Lock()

    def create(self, start, stop, fail_number=0):
        """A new operation exporting [start, stop); the `fail_number`-th one will fail."""
        with self._lock:
            number = len(self.operations) + 1
            operation = f"op-{number}"
            self.operations[operation] = {"window": (start, stop), "polls_left": self.polls,
                                          "fail": number == fail_number,
                                          "search": f"se-{number}"}
            return operation

    def poll(self, operation):
        with self._lock:
            op = self.operations.get(operation)
            if op is None:
                return None
            if op["polls_left"] > 0:
                op["polls_left"] -= 1
                done = 100 * (self.polls - op["polls_left"]) // (self.polls + 1)
                return {"id": operation, "state": "PENDING", "estimatePctComplete": done}
            if op["fail"]:
                return {"id": operation, "state": "FAILED", "estimatePctComplete": 100,
                        "errorDetails": "sandbox: the export job ran out of memory"}
            self.results.setdefault(op["search"], op["window"])
            return {"id": operation, "state": "COMPLETED", "estimatePctComplete": 100,
                    "results": {"searchExportId": op["search"]}}

    def expire_all(self):
        """Forget every finished export, as FullStory does after some days."""
        with self._lock:
            self.results.clear()
