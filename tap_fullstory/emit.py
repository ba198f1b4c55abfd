"""Writing Singer messages to stdout: RECORD lines on the hot path, SCHEMA and STATE.

RECORD lines are encoded with orjson and gathered into whole-line chunks; a STATE is
written only after every record before it and flushes the chunk, so what a target has
read when it sees a STATE is exactly what that STATE covers.
"""

import sys

import orjson
import singer

from tap_fullstory.interrupt import STOP

CHUNK_BYTES = 1 << 16


class MessageWriter:
    """Buffers whole Singer message lines and writes them to a binary stream."""

    def __init__(self, out=None, stream="events"):
        self._out = out if out is not None else sys.stdout.buffer
        self.last_state = None  # the value of the last STATE fully written
        self._parts = []
        self._size = 0
        self._prefix = orjson.dumps({"type": "RECORD", "stream": stream})[:-1] + b',"record":'
        self._suffix = b"}\n"

    def set_time_extracted(self, when):
        """Stamp the following RECORD lines with `when` (an RFC 3339 string)."""
        self._suffix = b',"time_extracted":' + orjson.dumps(when) + b"}\n"

    def write_record(self, record):
        line = self._prefix + orjson.dumps(record) + self._suffix
        self._parts.append(line)
        self._size += len(line)
        if self._size >= CHUNK_BYTES:
            self.flush()

    def write_schema(self, stream, schema, key_properties, bookmark_properties=None):
        message = singer.SchemaMessage(stream=stream, schema=schema,
                                       key_properties=key_properties,
                                       bookmark_properties=bookmark_properties)
        self._write_message(message)

    def write_state(self, value):
        self._parts.append(orjson.dumps(singer.StateMessage(value=value).asdict()) + b"\n")
        self.flush(state=value)

    def _write_message(self, message):
        self._parts.append(orjson.dumps(message.asdict()) + b"\n")
        self.flush()

    def discard_pending(self):
        """Drop RECORD lines not yet written: no STATE covers them, so they come again."""
        self._parts.clear()
        self._size = 0

    def flush(self, state=None):
        """Write every pending line; `state` is the value of a STATE among them, if any."""
        with STOP.deferred():  # a signal never cuts a line in half
            if self._parts:
                pending = memoryview(b"".join(self._parts))
                while pending:
                    # A write interrupted by a signal can return short, even buffered.
                    pending = pending[self._out.write(pending):]
                self._parts.clear()
                self._size = 0
            self._out.flush()
            if state is not None:
                self.last_state = state
