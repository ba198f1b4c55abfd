"""Fault injection for the sandbox: the failures FullStory and networks produce."""

import threading
from dataclasses import dataclass, field, fields

SPEC_HELP = ("comma-separated faults: 5xx-every=K (every K-th request answers 503), "
             "403-every=K (every K-th request answers 403, as for a key without Data "
             "Export), missing-bundle=ID (that bundle's GET answers 404), "
             "reset-download=K (the K-th download is cut half-way by a connection reset), "
             "truncate-download=K (the K-th download ends half-way, looking complete), "
             "truncate-bundle=ID (every download of that bundle ends half-way), "
             "list-429-every=K (every K-th list call answers 429), slow=SECONDS (every "
             "answer waits first), bad-json-bundle=ID (that bundle's body is never JSON)")

NAMES = {"5xx-every": "error_every", "403-every": "forbidden_every",
         "missing-bundle": "missing_bundle", "reset-download": "reset_download",
         "truncate-download": "truncate_download", "truncate-bundle": "truncate_bundle",
         "list-429-every": "list_429_every",
         "slow": "slow", "bad-json-bundle": "bad_json_bundle",
         "fail-operation": "fail_operation"}


@dataclass
class Faults:
    error_every: int = 0
    forbidden_every: int = 0
    missing_bundle: int = 0
    reset_download: int = 0
    truncate_download: int = 0
    truncate_bundle: int = 0
    list_429_every: int = 0
    slow: float = 0.0
    bad_json_bundle: int = 0
    fail_operation: int = 0
    _counts: dict = field(default_factory=lambda: {"request": 0, "list": 0, "download": 0})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def parse(cls, spec):
        """Faults from a spec such as '5xx-every=3,reset-download=2'."""
        faults = cls()
        for item in filter(None, (part.strip() for part in (spec or "").split(","))):
            name, _, value = item.partition("=")
            attr = NAMES.get(name)
            if attr is None or not value:
                raise ValueError(f"unknown fault {item!r}; {SPEC_HELP}")
            kind = next(f.type for f in fields(cls) if f.name == attr)
            try:
                setattr(faults, attr, float(value) if kind is float else int(value))
            except ValueError:
                raise ValueError(f"fault {item!r} needs a number") from None
        return faults

    def count(self, what):
        """Count one more `what` ('request', 'list', 'download'); returns its number."""
        with self._lock:
            self._counts[what] += 1
            return self._counts[what]

    def status_now(self, number):
        """The injected error status for the `number`-th request, or None."""
        for status, every in ((403, self.forbidden_every), (503, self.error_every)):
            if every and number % every == 0:
                return status
        return None

    def list_429_now(self, number):
        return bool(self.list_429_every) and number % self.list_429_every == 0
