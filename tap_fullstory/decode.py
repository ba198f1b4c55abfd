"""Decoding a spooled bundle: gzip or plain by its first bytes, then a stream of events.

The body is one JSON array of flat objects, in any whitespace layout. It is read in
blocks, cut into one candidate object per `}` `,` `{` boundary and each piece parsed with
orjson (a cut inside a string or a nested value does not parse, and is joined to the next
piece). Anything unusual hands over to ijson's C parser, which reads any JSON and names
the exact fault. Either way memory does not grow with the bundle.
"""

import gzip
import itertools
import re
import zlib

import ijson
import orjson

from tap_fullstory.errors import BundleFormatError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
READ_BYTES = 1 << 20
MAX_EVENT_BYTES = 1 << 26  # a piece this long without parsing is not a normal event
BOUNDARY = re.compile(rb"\}\s*,\s*\{")
WHITESPACE = b" \t\r\n"


def open_body(path):
    """Open a spooled body for reading its JSON bytes: inflated if gzip, past any BOM."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    body = gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")
    if body.peek(len(UTF8_BOM)).startswith(UTF8_BOM):
        body.read(len(UTF8_BOM))
    return body


def iter_events(path, bundle_id, layout="array", what=None):
    """Yield the event dicts of the body spooled at `path`, in file order.

    `layout` is "array" (a Data Export bundle: one JSON array) or "ndjson" (a Segment
    Export file: one JSON object per line)."""
    what = what or f"Bundle {bundle_id}"
    try:
        if layout == "ndjson":
            with open_body(path) as body:
                yield from _ndjson_events(body, what)
            return
        with open_body(path) as body:
            rows = yield from _split_events(body)
        if rows is not None:  # the fast path stopped at something unusual
            yield from itertools.islice(_parsed_events(path, what), rows, None)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BundleFormatError(f"{what} is a broken gzip file ({exc or 'it ends early'}).") \
            from None


def _ndjson_events(body, what):
    """One event per line; blank lines are skipped."""
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    for number, line in enumerate(body, start=1):
        try:
            event = loads(line)
        except JSONDecodeError:
            if not line.strip():
                continue
            cut = "" if line.endswith(b"\n") else " (it ends early)"
            raise BundleFormatError(f"{what} line {number} is not valid JSON{cut}.") from None
        if type(event) is not dict:
            raise BundleFormatError(f"{what} line {number} is a {type(event).__name__}, "
                                    "not an event object.")
        yield event


def _split_events(body):
    """Yield events cut at object boundaries; return None when done, or the row count at
    which the body stopped looking like a plain array of objects."""
    buffer = body.read(READ_BYTES).lstrip(WHITESPACE)
    if buffer[:1] != b"[":
        return 0
    start = len(buffer) - len(buffer[1:].lstrip(WHITESPACE))
    if buffer[start:start + 1] != b"{":
        return 0  # empty, items that are not objects, or a tiny first block
    rows = 0
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    while True:
        piece_start = start
        for boundary in BOUNDARY.finditer(buffer, start):
            try:
                event = loads(buffer[piece_start:boundary.start() + 1])
            except JSONDecodeError:
                continue  # cut inside a string or a nested value: join the next piece
            yield event
            rows += 1
            piece_start = boundary.end() - 1
        block = body.read(READ_BYTES)
        buffer = buffer[piece_start:] + block
        start = 0
        if not block:
            break
        if len(buffer) > MAX_EVENT_BYTES:
            return rows
    tail = buffer.rstrip(WHITESPACE)
    if not tail.endswith(b"]"):
        return rows
    try:
        event = loads(tail[:-1])
    except JSONDecodeError:
        return rows
    if type(event) is not dict:
        return rows
    yield event
    return None


def _parsed_events(path, what):
    """Every event of the body through ijson, with a precise error for a bad body."""
    try:
        with open_body(path) as body:
            head = body.read(4096).lstrip(WHITESPACE)
            while not head and (more := body.read(4096)):
                head = more.lstrip(WHITESPACE)
        if head[:1] != b"[":
            shown = "is empty" if not head else f"starts with {head[:1]!r}"
            raise BundleFormatError(f"{what} is not a JSON array of events (its body "
                                    f"{shown}).")
        with open_body(path) as body:
            for row, event in enumerate(ijson.items(body, "item", use_float=True)):
                if type(event) is not dict:
                    raise BundleFormatError(f"{what} row {row} is a "
                                            f"{type(event).__name__}, not an event object.")
                yield event
    except ijson.JSONError as exc:
        # yajl's message spans lines and quotes the body; its first line says enough.
        cause = str(exc).splitlines()[0] if str(exc) else "parse error"
        if "premature EOF" in cause:
            raise BundleFormatError(f"{what} ends before its JSON array does.") from None
        raise BundleFormatError(f"{what} is not valid JSON ({cause}).") from None
