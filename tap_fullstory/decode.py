"""Decoding a spooled body: gzip or plain by its first bytes, then a stream of exact events.

A Data Export body is one JSON array of flat objects, in any whitespace layout. It is read
in blocks and cut at each `}` `,` `{`; each piece is parsed with orjson. A cut inside a
string or a nested value leaves orjson short of data, and the piece is joined to the next.
A piece orjson refuses although it is whole (a lone surrogate escape, 1e400) is read alone
by `exact_value` (the stdlib's C scanner with exact number hooks), and the fast path goes
on after it; so is a piece with a long digit run (orjson rounds integers beyond 64 bits to
floats) whose orjson result has a float that big. A value with many cuts inside it is read
exactly too, at cuts spaced ever wider, so nothing is parsed over and over. Only a body
that is not a plain array of objects goes to ijson, which reads any JSON and names the
exact fault; its tokens are built into values here, without recursion, since ijson's own
builder needs memory that grows with the square of the depth.

Every path gives the same values: integers exact whatever their size (those no 64-bit
type holds as WideInt), numbers beyond a double as Decimal (never inf), and lone surrogate
escapes as U+FFFD, counted and logged once per body. Memory does not grow with the body:
an event longer than MAX_EVENT_BYTES, or nested deeper than MAX_DEPTH, is a BundleFormatError
that names its row (or line), as is every other fault; no body ends in a traceback.
"""

import gzip
import io
import itertools
import json
import logging
import math
import re
import sys
import zlib
from contextlib import contextmanager
from decimal import Decimal

import ijson
import orjson

from tap_fullstory.errors import BundleFormatError

LOGGER = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
READ_BYTES = 1 << 18  # blocks that stay in the CPU's cache are parsed faster
MAX_EVENT_BYTES = 1 << 26  # a piece this long without parsing is not a normal event
MAX_DEPTH = 1024  # levels of nesting in one event: as deep as orjson reads
MAX_JOINS = 16  # cuts inside one value tried with orjson before reading it exactly
BOUNDARY = re.compile(rb"\}\s*,\s*\{")
WHITESPACE = b" \t\r\n"
NEVER = 1 << 62  # past any buffer (an int: compared with ints on the hot path)
INT64_MIN, INT64_MAX, UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
ROUNDED = float(1 << 63)  # orjson turns integers beyond 64 bits into floats at least this big
# Digits and "-" become "0": twenty "0"s in a row are twenty digits, or a minus and
# nineteen, and only such integers can be beyond 64 bits, where orjson rounds them.
DIGIT_MASK = bytes(48 if chr(code) in "0123456789-" else code for code in range(256))
LONG_RUN = b"0" * 20
SURROGATE_ESCAPE = re.compile(rb"\\u(?:[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
                              rb"|[dD][c-fC-F][0-9a-fA-F]{2})")
ESCAPE_BYTES = b"\\u0123456789abcdefABCDEF"  # what a \uXXXX escape is made of


class WideInt(int):
    """An integer no 64-bit type holds (outside [-2**63, 2**64)), kept exact: no target
    column can take it, and orjson writes it only through emit's fallback."""

    __slots__ = ()


class Truncated(ValueError):
    """The text ends inside the value: the cut fell inside a string or a nested value."""


class TooDeep(ValueError):
    """The value is nested deeper than MAX_DEPTH, or than Python's recursion limit lets the
    exact reader go (the fallback, which does not recurse, then tells which)."""


class _Overlong(Exception):
    """One event (or line) runs on past MAX_EVENT_BYTES."""


class _Tally:
    lone_surrogates = 0


@contextmanager
def open_body(source):
    """A spooled body's JSON bytes, inflated if gzip, past any BOM. `source` is a path, or a
    callable that opens the body afresh from its first byte (a Spool's `open_reader`)."""
    raw = source() if callable(source) else open(source, "rb")
    try:
        magic = raw.read(2)
        raw.seek(0)
        body = gzip.GzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw
        if body is not raw and body.peek(2)[:2] == GZIP_MAGIC:
            # a gzip file that was also sent with Content-Encoding: gzip
            body = gzip.GzipFile(fileobj=body, mode="rb")
        with body:
            if body.peek(len(UTF8_BOM)).startswith(UTF8_BOM):
                body.read(len(UTF8_BOM))
            yield body
    finally:
        raw.close()


def iter_events(source, bundle_id, layout="array", what=None):
    """Yield the event dicts of the body `source` (a path, or a callable opening it) holds,
    in file order.

    `layout` is "array" (a Data Export bundle: one JSON array) or "ndjson" (a Segment
    Export file: one JSON object per line)."""
    what = what or f"Bundle {bundle_id}"
    tally = _Tally()
    try:
        if layout == "ndjson":
            with open_body(source) as body:
                yield from _ndjson_events(body, what, tally)
            return
        with open_body(source) as body:
            rows = yield from _Splitter(body, tally).events()
        if rows is not None:  # the fast path stopped at something unusual
            tally.lone_surrogates = 0  # ijson reads the body from its start and counts again
            yield from itertools.islice(_parsed_events(source, what, tally), rows, None)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BundleFormatError(f"{what} is a broken gzip file ({exc or 'it ends early'}).") \
            from None
    finally:
        if tally.lone_surrogates:
            LOGGER.warning("%s: %d lone surrogate escape(s) in text replaced by U+FFFD.",
                           what, tally.lone_surrogates)


def mend_surrogates(data):
    """`data` (JSON bytes that do not start inside an escape) with every lone surrogate
    escape, valid JSON but not Unicode, replaced by `\\ufffd`; and how many there were.
    The length stays the same."""
    lone = 0

    def mend(match):
        nonlocal lone
        escape, first = match.group(), match.start()
        before = first
        while before and data[before - 1] == 0x5C:  # backslashes in front of this one
            before -= 1
        if (first - before) % 2:  # an escaped backslash, then the letter u: not an escape
            if len(escape) == 6:
                return escape
            lone += 1  # the low half that follows is a real escape, and alone
            return escape[:6] + b"\\ufffd"
        if len(escape) == 12:  # a high and a low surrogate: one character
            return escape
        lone += 1
        return b"\\ufffd"

    return SURROGATE_ESCAPE.sub(mend, data), lone


def _exact_int(text):
    try:
        value = int(text)
    except ValueError:  # more digits than Python turns from text into an int
        return WideInt(Decimal(text))
    return value if INT64_MIN <= value <= UINT64_MAX else WideInt(value)


def _exact_float(text):
    value = float(text)
    return Decimal(text) if math.isinf(value) else value


def _not_json(name):
    raise ValueError(f"{name} is not JSON")


_EXACT = json.JSONDecoder(parse_int=_exact_int, parse_float=_exact_float,
                          parse_constant=_not_json)


def exact_value(data, tally):
    """The first JSON value in `data` (bytes starting at the value) read exactly, and the
    byte offset where it ends. Raises Truncated if `data` ends inside it, ValueError if it
    is not JSON. Lone surrogate escapes become U+FFFD and are counted in `tally`."""
    mended, lone = mend_surrogates(data)
    text = mended.decode("utf-8")
    try:
        value, end = _EXACT.raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
            raise Truncated(exc.msg) from None
        raise
    except RecursionError:
        raise TooDeep("nested deeper than the exact reader goes") from None
    length = end if text.isascii() else len(text[:end].encode("utf-8"))  # mending kept it
    if lone and length < len(data):  # count the escapes of this value, not of what follows
        lone = mend_surrogates(data[:length])[1]
    tally.lone_surrogates += lone
    return value, length


def _maybe_rounded(value):
    """True if an orjson result has a float as big as an integer beyond 64 bits (or is
    too deep to look through: the exact reader then says what it holds)."""
    kind = type(value)
    if kind is float:
        return not -ROUNDED < value < ROUNDED
    try:
        if kind is dict:
            return any(map(_maybe_rounded, value.values()))
        if kind is list:
            return any(map(_maybe_rounded, value))
    except RecursionError:
        return True
    return False


def _exact_alone(piece, tally):
    """The one JSON value `piece` holds, read by `exact_value`; ValueError if more follows."""
    value, end = exact_value(piece, tally)
    if piece[end:].strip(WHITESPACE):
        raise ValueError("more data after the value")
    return value


def _long_runs(data, offset=0):
    """Where runs of twenty digits, or a minus and nineteen, begin in `data` (plus
    `offset`): a translate and a find, cheaper than any regular expression over them."""
    masked = data.translate(DIGIT_MASK)
    runs, found = [], masked.find(LONG_RUN)
    while found >= 0:
        runs.append(found + offset)
        found = masked.find(LONG_RUN, found + len(LONG_RUN))
    return runs


def _runs_from(runs, start):
    """The runs at or after `start`, and the first of them (NEVER if none)."""
    runs = [run for run in runs if run >= start]
    return runs, (runs[0] if runs else NEVER)


def _size_text(size):
    """A byte count as people say it: "64 MiB", "1000 bytes"."""
    if size >= 1 << 20 and not size % (1 << 20):
        return f"{size >> 20} MiB"
    return f"{size} bytes"


def _too_long(what, unit, number):
    return BundleFormatError(f"{what} {unit} {number} is longer than "
                             f"{_size_text(MAX_EVENT_BYTES)} (the most one event may be).")


def _too_deep(what, unit, number):
    return BundleFormatError(f"{what} {unit} {number} is nested deeper than {MAX_DEPTH} "
                             "levels.")


def _whole_lines(body):
    """The body as (text ending at a newline, False) pairs, then (what follows the last
    newline, True). Raises _Overlong once the text after a newline passes MAX_EVENT_BYTES,
    so a body without newlines is never held whole."""
    pending, size = [], 0  # the blocks since the last newline
    while block := body.read(READ_BYTES):
        cut = block.rfind(b"\n") + 1
        if not cut:
            pending.append(block)
            size += len(block)
            if size > MAX_EVENT_BYTES:
                raise _Overlong
            continue
        if pending:
            if size + block.find(b"\n") > MAX_EVENT_BYTES:
                raise _Overlong
            pending.append(block[:cut])
            yield b"".join(pending), False
        else:
            yield block[:cut], False
        pending, size = [block[cut:]], len(block) - cut
    yield b"".join(pending), True


def _ndjson_events(body, what, tally):
    """One event per line; blank lines are skipped."""
    number = 0  # lines read
    try:
        for data, last in _whole_lines(body):
            number = yield from _ndjson_lines(data, last, number, what, tally)
    except _Overlong:
        raise _too_long(what, "line", number + 1) from None


def _ndjson_lines(data, last, number, what, tally):
    """The events of `data`, whole lines after line `number` (the last may lack its
    newline if `last`); returns the number of the last line read."""
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    runs, run = _runs_from(_long_runs(data), 0)
    lines = data.split(b"\n")
    if not last:
        lines.pop()  # the empty text after the last newline
    long_lines = len(data) > MAX_EVENT_BYTES  # else no line can be too long
    position = 0
    for index, line in enumerate(lines, start=1):
        number += 1
        end = position + len(line)
        if long_lines and len(line) > MAX_EVENT_BYTES:
            raise _too_long(what, "line", number)
        try:
            event = loads(line)
            exact = end > run and _maybe_rounded(event)
        except JSONDecodeError:
            exact = True
        if end > run:
            runs, run = _runs_from(runs, end)
        if exact:
            if not line.strip(WHITESPACE):
                position = end + 1
                continue
            event = _exact_line(line, number, what, tally, last and index == len(lines))
        if type(event) is not dict:
            raise BundleFormatError(f"{what} line {number} is a {type(event).__name__}, "
                                    "not an event object.")
        yield event
        position = end + 1
    return number


def _exact_line(line, number, what, tally, ends_body):
    """Line `number` read exactly: the value, or the BundleFormatError that names it."""
    try:
        return _exact_alone(line, tally)
    except TooDeep:
        return _deep_line(line, number, what, tally)
    except UnicodeDecodeError:
        raise BundleFormatError(f"{what} line {number} is not valid JSON (its text is not "
                                "UTF-8).") from None
    except ValueError:
        if number == 1 and line.lstrip(WHITESPACE)[:1] != b"{":
            shown = line.lstrip(WHITESPACE)[:1]
            raise BundleFormatError(f"{what} is not NDJSON event lines (its body "
                                    f"starts with {shown!r}).") from None
        cut = " (it ends early)" if ends_body else ""
        raise BundleFormatError(f"{what} line {number} is not valid JSON{cut}.") from None


def _deep_line(line, number, what, tally):
    """A line too deep for the exact reader, read without recursion: its value, unless it
    is deeper than MAX_DEPTH or not JSON."""
    try:
        with _no_int_digit_limit():
            tokens = ijson.basic_parse(_MendedReader(io.BytesIO(line), tally), use_float=False)
            (value,) = _built_values(tokens, 0)
    except TooDeep:
        raise _too_deep(what, "line", number) from None
    except (ijson.JSONError, UnicodeDecodeError):
        raise BundleFormatError(f"{what} line {number} is not valid JSON.") from None
    return value


HAND_OVER = -1  # _Splitter._read_pieces: the body is not a plain array of objects
REFILL = -2  # _Splitter._read_pieces: no cut is left in the buffer


class _Splitter:
    """A Data Export body cut at each `},{` into pieces, each read as one event.

    A piece is read by orjson (the fast path); joined to the next piece when the cut fell
    inside a string or a nested value; read by exact_value when orjson refuses it, may have
    rounded a number in it, or has been joined MAX_JOINS times. When the buffer has no cut
    left it is refilled from the piece in hand; the last piece is the tail, before `]`."""

    __slots__ = ("_body", "_tally", "rows", "_buffer", "_start", "_piece", "_runs", "_run",
                 "_exact", "_joins", "_retry", "_more")

    def __init__(self, body, tally):
        self._body, self._tally = body, tally
        self.rows = 0  # events yielded
        self._buffer, self._start = b"", 0  # the text in hand; where cuts are looked for
        self._piece = 0  # where the piece being read begins
        self._runs, self._run = [], NEVER  # where long digit runs begin; the next of them
        self._exact = False  # the piece goes to exact_value
        self._joins = 0  # cuts the piece has been joined across
        self._retry = 0  # exact_value reads the piece again once it is this long
        self._more = True  # the body has blocks left

    def events(self):
        """Yield the events; return None when the body is read to its `]`, or the row at
        which it stopped looking like a plain array of objects (the fallback goes on)."""
        if not self._first_block():
            return 0
        while True:
            found = yield from self._read_pieces()
            if found == HAND_OVER:
                return self.rows
            if found >= 0:  # a value read exactly ended at an earlier cut: look on from it
                self._start = found
                continue
            if not self._more:
                return (yield from self._tail())
            if not self._refilled():
                return self.rows

    def _first_block(self):
        """False unless the body starts as an array whose first item is an object."""
        buffer = self._body.read(READ_BYTES).lstrip(WHITESPACE)
        if buffer[:1] != b"[":
            return False
        start = len(buffer) - len(buffer[1:].lstrip(WHITESPACE))
        if buffer[start:start + 1] != b"{":
            return False  # empty, items that are not objects, or a tiny first block
        self._buffer, self._start = buffer, start
        self._runs, self._run = _runs_from(_long_runs(buffer), start)
        return True

    def _read_pieces(self):
        """Yield the events between the cuts from `_start` on. Returns REFILL, HAND_OVER,
        or where to look for cuts again."""
        buffer, loads, JSONDecodeError = self._buffer, orjson.loads, orjson.JSONDecodeError
        piece, run = self._start, self._run  # the hot path's state, kept in locals
        for boundary in BOUNDARY.finditer(buffer, piece):
            end = boundary.start() + 1
            if not self._exact:  # the fast path
                try:
                    event = loads(buffer[piece:end])
                except JSONDecodeError as exc:
                    if 0 < len(exc.doc) <= exc.pos and self._joined(end - piece):
                        continue
                    self._exact = True  # else whole, but orjson refuses it
                else:
                    if end <= run or not _maybe_rounded(event):
                        yield event
                        self.rows += 1
                        piece, self._joins = boundary.end() - 1, 0
                        if end > run:
                            self._runs, run = _runs_from(self._runs, end)
                        continue
                    self._exact = True
            if end - piece < self._retry:
                continue
            self._piece = piece
            found = yield from self._exact_piece(end)
            if found is not None:
                return found
        self._piece, self._run = piece, run
        return REFILL

    def _joined(self, length):
        """True while the piece, `length` long, is joined to the next one; False once it
        has been joined too often and goes to exact_value, at twice this length."""
        self._joins += 1
        if self._joins <= MAX_JOINS:
            return True
        self._retry = 2 * length
        return False

    def _exact_piece(self, end):
        """Yield the event exact_value reads from the piece, which runs to `end`. Returns
        None while the value runs on past `end`, else what _read_pieces returns."""
        piece, buffer = self._piece, self._buffer
        try:
            event, length = exact_value(buffer[piece:end], self._tally)
        except Truncated:  # it runs on: read it again once the piece has doubled
            self._retry = 2 * (end - piece)
            return None
        except ValueError:
            return HAND_OVER  # not JSON: the fallback names the fault
        if type(event) is not dict:
            return HAND_OVER
        yield event
        self.rows += 1
        self._exact, self._joins, self._retry = False, 0, 0
        value_end = piece + length
        self._runs, self._run = _runs_from(self._runs, value_end)
        cut = BOUNDARY.match(buffer, value_end - 1)  # at `end`, or at an earlier cut
        if cut is not None:
            return cut.end() - 1
        self._piece = value_end
        return REFILL

    def _refilled(self):
        """The piece in hand with the next block after it; False once it is too long to be
        an event (the fallback reads on, and names it if it is)."""
        block = self._body.read(READ_BYTES)
        self._more = bool(block)
        buffer, piece = self._buffer, self._piece
        kept = len(buffer) - piece
        seam = buffer[max(piece, len(buffer) - 19):] + block[:19]  # a run across it
        runs = [run - piece for run in self._runs if run >= piece]
        runs += _long_runs(seam, kept - min(kept, 19)) + _long_runs(block, kept)
        self._runs, self._run = _runs_from(sorted(runs), 0)
        self._buffer = buffer[piece:] + block
        self._start = self._piece = 0
        return len(self._buffer) <= MAX_EVENT_BYTES

    def _tail(self):
        """The last event, before the closing `]`; the row count if the body is not
        whole."""
        tail = self._buffer[self._piece:].rstrip(WHITESPACE)
        if not tail.endswith(b"]"):
            return self.rows
        tail = tail[:-1]
        if not tail.strip(WHITESPACE):
            return None  # the last event was read exactly, up to just before the `]`
        event = None
        if not self._exact:
            try:
                event = orjson.loads(tail)
            except orjson.JSONDecodeError:
                pass
            else:
                if self._run - self._piece < len(tail) and _maybe_rounded(event):
                    event = None
        if event is None:
            try:
                event = _exact_alone(tail, self._tally)
            except ValueError:
                return self.rows
        if type(event) is not dict:
            return self.rows
        yield event
        return None


class _MendedReader:
    """A body's bytes for ijson with lone surrogate escapes mended; each read ends after
    a byte that cannot be part of an escape, so none is ever cut in two. Raises _Overlong
    when more than MAX_EVENT_BYTES (and a read ahead) pass between two `item_read` calls."""

    def __init__(self, body, tally):
        self._body, self._tally, self._carry = body, tally, b""
        self._given = self._item_start = 0  # bytes returned: in all, and at the last item

    def item_read(self):
        """Note that ijson has given one whole item: the next one starts about here."""
        self._item_start = self._given

    def read(self, size=-1):
        if size == 0:  # ijson asks for nothing first, to learn bytes from text
            return b""
        parts, pending = [self._carry], len(self._carry)
        while True:
            block = self._body.read(READ_BYTES)
            if not block:
                self._carry = b""
                break
            safe = len(block.rstrip(ESCAPE_BYTES))
            if safe:
                parts.append(block[:safe])
                self._carry = block[safe:]
                break
            parts.append(block)  # escape bytes only: the cut comes later
            pending += len(block)
            self._count(pending)
        data, lone = mend_surrogates(b"".join(parts))
        self._count(len(data))
        self._given += len(data)
        self._tally.lone_surrogates += lone
        return data

    def _count(self, size):
        # ijson hands items over a read after their end, and this read may be one more
        if self._given + size - self._item_start > MAX_EVENT_BYTES + 2 * READ_BYTES:
            raise _Overlong


def _settled(value):
    """An ijson number as the fast path gives it: a decimal that fits a double as a float,
    an integer no 64-bit type holds as WideInt."""
    if type(value) is int:
        return value if INT64_MIN <= value <= UINT64_MAX else WideInt(value)
    number = float(value)
    return value if math.isinf(number) else number


def _built_values(tokens, level):
    """The values that end `level` containers deep (1: the items of the top array) in
    ijson's basic_parse `tokens`, built without recursion (so any depth is a clear error,
    never a RecursionError) and with numbers settled. Raises TooDeep for a value nested
    deeper than MAX_DEPTH."""
    outer = []  # (container, key) of each container around the innermost one
    inner, key = None, None  # the innermost container, and the key its next value is at
    for token, value in tokens:
        if token == "map_key":
            key = value
            continue
        if token == "number":
            value = _settled(value)
        elif token == "start_map" or token == "start_array":
            if len(outer) - level >= MAX_DEPTH:
                raise TooDeep
            outer.append((inner, key))
            inner, key = ({} if token == "start_map" else []), None
            continue
        elif token == "end_map" or token == "end_array":
            value = inner
            inner, key = outer.pop()
        depth = len(outer)
        if depth > level:
            if key is None:
                inner.append(value)
            else:
                inner[key] = value
        elif depth == level:
            yield value


@contextmanager
def _no_int_digit_limit():
    """yajl crashes the process on an integer Python would refuse as too long."""
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit:
        sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        if limit:
            sys.set_int_max_str_digits(limit)


def _cause(error):
    """yajl's message spans lines and quotes the body (as bytes, at times): its first line
    says enough."""
    text = error.args[0] if error.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = str(text).splitlines()
    return lines[0] if lines and lines[0].strip() else "parse error"


def _after(rows):
    """Where a fault is, as far as ijson tells: after the last row it gave whole."""
    return f" after row {rows - 1}" if rows else ""


def _parsed_events(source, what, tally):
    """Every event of the body through ijson, with a precise error for a bad body."""
    rows = 0  # items read
    try:
        with open_body(source) as body:
            head = body.read(4096).lstrip(WHITESPACE)
            while not head and (more := body.read(4096)):
                head = more.lstrip(WHITESPACE)
        if head[:1] != b"[":
            shown = "is empty" if not head else f"starts with {head[:1]!r}"
            raise BundleFormatError(f"{what} is not a JSON array of events (its body "
                                    f"{shown}).")
        with _no_int_digit_limit(), open_body(source) as body:
            reader = _MendedReader(body, tally)
            tokens = ijson.basic_parse(reader, use_float=False)
            for event in _built_values(tokens, 1):
                if type(event) is not dict:
                    raise BundleFormatError(f"{what} row {rows} is a "
                                            f"{type(event).__name__}, not an event object.")
                reader.item_read()
                yield event
                rows += 1
    except ijson.JSONError as exc:
        cause = _cause(exc)
        if "premature EOF" in cause:
            raise BundleFormatError(f"{what} ends before its JSON array does.") from None
        raise BundleFormatError(f"{what} is not valid JSON{_after(rows)} ({cause}).") \
            from None
    except UnicodeDecodeError:
        raise BundleFormatError(f"{what} is not valid JSON{_after(rows)} (its text is not "
                                "UTF-8).") from None
    except TooDeep:
        raise _too_deep(what, "row", rows) from None
    except _Overlong:
        raise _too_long(what, "row", rows) from None
