"""Spooling: a unit's body is saved to a temporary file before it is parsed.

Downloading at network speed and parsing from disk means a slow target never holds an
HTTP connection open for the length of a multi-GB bundle. The file holds the bytes exactly
as they came over the wire (compressed), and it has no name: it is unlinked as it is
created (O_TMPFILE on Linux), so the kernel frees it however the run ends, SIGKILL
included, and no other run ever has to sweep up after this one.
"""

import errno
import logging
import os
import tempfile
from dataclasses import dataclass, field

from tap_fullstory.errors import SpoolError
from tap_fullstory.timestamps import now_text

LOGGER = logging.getLogger(__name__)
MB = 1e6


def spool_dir_of(configured):
    """The directory spool files go to: `spool_dir`, or the system's temporary one."""
    return configured or tempfile.gettempdir()


def free_bytes(directory):
    """Bytes an unprivileged writer may still use in `directory`'s filesystem."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def check_spool_dir(configured):
    """Raise SpoolError unless a spool file can be made in the spool directory."""
    directory = spool_dir_of(configured)
    try:
        with tempfile.TemporaryFile(dir=directory, prefix="tap-fullstory-"):
            pass
    except OSError as exc:
        raise SpoolError(_unusable(directory, exc)) from None


def _unusable(directory, exc):
    if isinstance(exc, FileNotFoundError):
        problem = "does not exist"
    elif isinstance(exc, NotADirectoryError):
        problem = "is not a directory"
    elif isinstance(exc, PermissionError):
        problem = "is not writable by this user"
    else:
        problem = f"cannot hold a spool file ({exc.strerror or exc})"
    return (f"spool_dir {directory} {problem}: point spool_dir at a writable directory "
            "with room for two bundles (compressed).")


class Spool:
    """A unit's body in an anonymous file. One owner at a time: whoever holds the Spool
    closes it, exactly once."""

    def __init__(self, unit, spool_dir=None, what=None):
        self.unit = unit
        self.what = what or f"Bundle {unit.id}"
        self.directory = spool_dir_of(spool_dir)
        try:
            self.file = tempfile.TemporaryFile(dir=self.directory, prefix="tap-fullstory-")
        except OSError as exc:
            raise SpoolError(_unusable(self.directory, exc)) from None
        self.size = 0
        self.expected = None
        self.content_type = None
        self.time_extracted = None

    def begin(self, expected=None, content_type=None):
        """Start (or restart) the body; `expected` is its size on the wire, if known."""
        self.file.seek(0)
        self.file.truncate()
        self.size = 0
        self.expected, self.content_type = expected, content_type
        if expected:
            free = free_bytes(self.directory)
            if free < expected:
                raise SpoolError(self._full(free))

    def write(self, chunk):
        try:
            self.file.write(chunk)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpoolError(self._full(free_bytes(self.directory))) from None
            raise SpoolError(f"spool_dir {self.directory} failed a write "
                             f"({exc.strerror or exc}) while saving {self.what}.") from None
        self.size += len(chunk)

    def finish(self):
        """The body is complete: flush it and stamp when it was extracted."""
        try:
            self.file.flush()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpoolError(self._full(free_bytes(self.directory))) from None
            raise
        self.time_extracted = now_text()
        LOGGER.debug("Downloaded %s (%.1f MB).", self.what, self.size / MB)

    def _full(self, free):
        needed = (f"needs {self.expected / MB:,.1f} MB" if self.expected
                  else f"needs more than the {self.size / MB:,.1f} MB written when it filled")
        return (f"spool_dir {self.directory} is full: {self.what} {needed} and "
                f"{free / MB:,.1f} MB is free. Free some space or point spool_dir at a larger "
                "disk, then run again from the last STATE.")

    def open_reader(self):
        """A new reader of the body from its first byte, for decoding. It shares the
        Spool's descriptor, which closing the reader leaves open (the Spool owns it)."""
        os.lseek(self.file.fileno(), 0, os.SEEK_SET)
        return open(self.file.fileno(), "rb", closefd=False)

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


@dataclass(frozen=True)
class Standing:
    """Where a unit stands as it is fetched: its first `rows_done` rows are out, read from
    the export `origin` names (Segment Export; {} when nothing says)."""

    rows_done: int = 0
    origin: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance:
    """What a source says of a body it fetched: the export it came from (kept in the
    STATE, so a resume reads the same body), and whether its rows are numbered anew (a
    new export promises no row order: emit from its first row)."""

    origin: dict = field(default_factory=dict)
    renumbered: bool = False


class FetchedUnit:
    """A unit's body and where its emission starts: the one owner of both."""

    def __init__(self, unit, spool, provenance, standing):
        self.unit, self.spool = unit, spool
        self.origin = dict(provenance.origin)
        self.first_row = 0 if provenance.renumbered else standing.rows_done
        self.renumbered = self.first_row < standing.rows_done  # rows out may come again

    def close(self):
        self.spool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def download(source, unit, standing=Standing(), spool_dir=None):
    """`unit`'s body, fetched by `source` into a new Spool (closed if the fetch fails), and
    the row its emission starts at, given where the unit stood (`standing`)."""
    spool = Spool(unit, spool_dir, source.describe(unit))
    try:
        provenance = source.fetch(unit, spool, standing)  # counts bytes into spool.size
        spool.finish()
    except BaseException:
        spool.close()
        raise
    return FetchedUnit(unit, spool, provenance, standing)
