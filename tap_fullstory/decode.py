"""Decoding a spooled bundle: gzip or plain by its first bytes, then a stream of events.

The body is one JSON array of flat objects, in any whitespace layout. It is parsed
incrementally (ijson's C backend), so memory does not grow with the bundle.
"""

import gzip
import zlib

import ijson

from tap_fullstory.errors import BundleFormatError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
READ_BYTES = 1 << 18


def open_body(path):
    """Open a spooled body for reading its JSON bytes: inflated if gzip, past any BOM."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    body = gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")
    if body.peek(len(UTF8_BOM)).startswith(UTF8_BOM):
        body.read(len(UTF8_BOM))
    return body


def _first_byte(path):
    """The first byte after leading whitespace, or b"" for an empty body."""
    with open_body(path) as body:
        while chunk := body.read(4096):
            if chunk := chunk.lstrip(b" \t\r\n"):
                return chunk[:1]
    return b""


def iter_events(path, bundle_id):
    """Yield the event dicts of the bundle body spooled at `path`, in file order."""
    what = f"Bundle {bundle_id}"
    try:
        first = _first_byte(path)
        if first != b"[":
            shown = "is empty" if not first else f"starts with {first!r}"
            raise BundleFormatError(f"{what} is not a JSON array of events (its body "
                                    f"{shown}).")
        with open_body(path) as body:
            for row, event in enumerate(ijson.items(body, "item", use_float=True,
                                                    buf_size=READ_BYTES)):
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
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BundleFormatError(f"{what} is a broken gzip file ({exc or 'it ends early'}).") \
            from None
