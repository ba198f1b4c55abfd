"""Writing Singer messages to stdout: RECORD lines on the hot path, SCHEMA, STATE and
ACTIVATE_VERSION.

RECORD lines are encoded with orjson and gathered into whole-line chunks; a STATE is
written only after every record before it and flushes the chunk, so what a target has
read when it sees a STATE is exactly what that STATE covers. Numbers orjson cannot write
(integers beyond 64 bits, a Decimal beyond a double) are written with all their digits by
a second, slower encoding of just that record. The writer also keeps how long its writes
were blocked, which is how long the run waited for the target to read stdout.
"""

import os
import stat
import sys
import time
from decimal import Decimal

import orjson
import singer

from tap_fullstory.decode import INT64_MIN, UINT64_MAX, WideInt
from tap_fullstory.stopping import STOP

CHUNK_BYTES = 1 << 16


def _widened(value):
    """`value` with plain ints beyond 64 bits (not from decode) as WideInt, for `default`."""
    kind = type(value)
    if kind is dict:
        return {key: _widened(item) for key, item in value.items()}
    if kind is list:
        return [_widened(item) for item in value]
    if kind is int and not INT64_MIN <= value <= UINT64_MAX:
        return WideInt(value)
    return value


def _exact_number(value):
    """orjson's `default`: an int subclass (decode's WideInt) or a Decimal as its digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return orjson.Fragment(int.__repr__(value))
        except ValueError:  # more digits than Python writes from an int; Decimal has no limit
            return orjson.Fragment(str(Decimal(value)))
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _is_pipe(out):
    """True when `out` is a pipe or a socket: only there does a write wait for a reader."""
    try:
        mode = os.fstat(out.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False  # a stream without a descriptor (tests)
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class MessageWriter:
    """Buffers whole Singer message lines and writes them to a binary stream."""

    def __init__(self, out=None):
        self._out = out if out is not None else sys.stdout.buffer
        self.last_state = None  # the value of the last STATE fully written
        self.waited = 0.0       # seconds spent inside writes to a pipe or socket
        self._timed = _is_pipe(self._out)
        self._parts = []
        self._size = 0
        self.start_records("events")

    def start_records(self, stream, time_extracted=None, version=None):
        """Make the following RECORD lines `stream`'s, stamped with `time_extracted` (an
        RFC 3339 string) and carrying the table `version` of a FULL_TABLE sync, if given."""
        self._prefix = orjson.dumps({"type": "RECORD", "stream": stream})[:-1] + b',"record":'
        suffix = b""
        if version is not None:
            suffix += b',"version":' + orjson.dumps(version)
        if time_extracted is not None:
            suffix += b',"time_extracted":' + orjson.dumps(time_extracted)
        self._suffix = suffix + b"}\n"

    def write_record(self, record):
        try:
            body = orjson.dumps(record)
        except orjson.JSONEncodeError:
            body = orjson.dumps(_widened(record), default=_exact_number,
                                option=orjson.OPT_PASSTHROUGH_SUBCLASS)
        line = self._prefix + body + self._suffix
        self._parts.append(line)
        self._size += len(line)
        if self._size >= CHUNK_BYTES:
            self.flush()

    def write_schema(self, stream, schema, key_properties, bookmark_properties=None):
        message = singer.SchemaMessage(stream=stream, schema=schema,
                                       key_properties=key_properties,
                                       bookmark_properties=bookmark_properties)
        self._write_message(message)

    def write_activate_version(self, stream, version):
        """ACTIVATE_VERSION: the target may now drop `stream`'s rows of older versions."""
        self._write_message(singer.ActivateVersionMessage(stream=stream, version=version))

    def write_state(self, value):
        self._parts.append(orjson.dumps(singer.StateMessage(value=value).asdict()) + b"\n")
        self.flush(state=value)

    def _write_message(self, message):
        self._parts.append(orjson.dumps(message.asdict()) + b"\n")
        self.flush()

    def flush(self, state=None):
        """Write every pending line; `state` is the value of a STATE among them, if any."""
        started = time.perf_counter() if self._timed else None
        STOP.writing = True  # a second stop signal may end a write that never returns
        try:
            if self._parts:
                pending = memoryview(b"".join(self._parts))
                while pending:
                    # A raw or non-blocking stream may take fewer bytes than it was given.
                    pending = pending[self._out.write(pending):]
                self._parts.clear()
                self._size = 0
            self._out.flush()
        finally:
            STOP.writing = False
        if started is not None:
            self.waited += time.perf_counter() - started
        if state is not None:
            self.last_state = state
