"""Fault injection for the sandbox: the failures FullStory and networks produce."""

import threading
from dataclasses import dataclass, field, fields

PROXY_PAGE = b"<html><head><title>502</title></head><body>Internal proxy error</body></html>"

SPEC_HELP = ("comma-separated faults: 5xx-every=K (every K-th request answers 503), "
             "403-every=K (every K-th request answers 403, as for a key without Data "
             "Export), missing-bundle=ID (that bundle's GET answers 404), "
             "reset-download=K (the K-th download is cut half-way by a connection reset), "
             "truncate-download=K (the K-th download ends half-way, looking complete), "
             "truncate-bundle=ID (every download of that bundle ends half-way), "
             "list-429-every=K (every K-th list call answers 429), get-429-every=K (every K-th "
             "bundle request answers 429 with Retry-After: 1), slow=SECONDS (every "
             "answer waits first), bad-json-bundle=ID (that bundle's body is an HTML page, "
             "every time), null-bundle=ID (that bundle's body is `null`, every time), "
             "stall-download=K (the K-th download sends half its body, then nothing), "
             "429-forever=1 (every download answers 429 with Retry-After: 0), "
             "html-list=1 (list answers a proxy's HTML page with status 200), "
             "fail-operation=K (the K-th Segment export operation ends FAILED), "
             "bad-window=K (the file of the K-th Segment export is an HTML page), "
             "forbidden-path=PREFIX (requests whose path starts with PREFIX answer 403 "
             "permission_denied; may be given more than once), api-429-every=K (every K-th "
             "account API request, users, segments or settings, answers 429 with "
             "Retry-After: 1), create-429-every=K (every K-th request to create a Segment "
             "export answers 429 with Retry-After: 1), unknown-segment=STATUS (creating an "
             "export of a segment the account lacks answers 404, the default, or 400), "
             "refuse-download=N (the first N downloads of Segment export files answer 403 "
             "AccessDenied, as storage does for a lapsed signature or a blocked proxy)")

NAMES = {"5xx-every": "error_every", "403-every": "forbidden_every",
         "missing-bundle": "missing_bundle", "reset-download": "reset_download",
         "truncate-download": "truncate_download", "truncate-bundle": "truncate_bundle",
         "list-429-every": "list_429_every", "get-429-every": "get_429_every",
         "slow": "slow", "bad-json-bundle": "bad_json_bundle", "null-bundle": "null_bundle",
         "stall-download": "stall_download", "429-forever": "always_429",
         "html-list": "html_list", "fail-operation": "fail_operation",
         "bad-window": "bad_window", "forbidden-path": "forbidden_path",
         "api-429-every": "api_429_every", "create-429-every": "create_429_every",
         "unknown-segment": "unknown_segment", "refuse-download": "refuse_download"}


@dataclass
class Faults:
    error_every: int = 0
    forbidden_every: int = 0
    missing_bundle: int = 0
    reset_download: int = 0
    truncate_download: int = 0
    truncate_bundle: int = 0
    list_429_every: int = 0
    get_429_every: int = 0
    slow: float = 0.0
    bad_json_bundle: int = 0
    null_bundle: int = 0
    stall_download: int = 0
    always_429: int = 0
    html_list: int = 0
    fail_operation: int = 0
    bad_window: int = 0
    forbidden_path: tuple = ()  # path prefixes (a single string works too)
    api_429_every: int = 0
    create_429_every: int = 0
    unknown_segment: int = 404
    refuse_download: int = 0
    _counts: dict = field(default_factory=lambda: {"request": 0, "list": 0, "get": 0,
                                                   "download": 0, "api": 0, "create": 0,
                                                   "signed": 0})
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
            if kind is tuple:
                setattr(faults, attr, (*getattr(faults, attr), value))
                continue
            try:
                setattr(faults, attr, float(value) if kind is float else int(value))
            except ValueError:
                raise ValueError(f"fault {item!r} needs a number") from None
        return faults

    def count(self, what):
        """Count one more `what` ('request', 'list', 'get', 'download', 'api'); its number."""
        with self._lock:
            self._counts[what] += 1
            return self._counts[what]

    def status_now(self, number):
        """The injected error status for the `number`-th request, or None."""
        for status, every in ((403, self.forbidden_every), (503, self.error_every)):
            if every and number % every == 0:
                return status
        return None

    def forbids(self, path):
        prefixes = self.forbidden_path
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        return any(prefix and path.startswith(prefix) for prefix in prefixes)

    def list_429_now(self, number):
        return bool(self.list_429_every) and number % self.list_429_every == 0

    def get_429_now(self, number):
        return bool(self.get_429_every) and number % self.get_429_every == 0

    def api_429_now(self, number):
        return bool(self.api_429_every) and number % self.api_429_every == 0

    def create_429_now(self, number):
        return bool(self.create_429_every) and number % self.create_429_every == 0
