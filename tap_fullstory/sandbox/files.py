"""Bundles written to a directory, for serving big ones without holding them in memory.

`write_bundles` streams generated events into gzip files (one event per line inside the
JSON array, as FullStory's exports come); `BundleDirectory` serves them back.
"""

import gzip
import json
import os
from pathlib import Path

import orjson

MANIFEST = "exports.json"
GZIP_HEADERS = {"Content-Type": "application/gzip"}


def write_bundles(data, directory, compresslevel=6):
    """Write every bundle of `data` (a SandboxData) as DIR/<Id>.json.gz plus a manifest."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    exports = data.exports()
    for index, export in enumerate(exports):
        path = directory / f"{export['Id']}.json.gz"
        partial = path.with_suffix(".partial")
        with gzip.open(partial, "wb", compresslevel=compresslevel) as out:
            out.write(b"[\n")
            for number, event in enumerate(data.stream_events(index)):
                out.write((b",\n" if number else b"") + orjson.dumps(event))
            out.write(b"\n]\n")
        os.replace(partial, path)
    (directory / MANIFEST).write_text(json.dumps({"exports": exports}))
    return directory


class BundleDirectory:
    """Serves the bundles `write_bundles` wrote, streaming each file from disk."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self._exports = json.loads((self.directory / MANIFEST).read_text())["exports"]

    def exports(self):
        return list(self._exports)

    def index_of(self, bundle_id):
        for index, export in enumerate(self._exports):
            if export["Id"] == bundle_id:
                return index
        return None

    def open_body(self, index):
        path = self.directory / f"{self._exports[index]['Id']}.json.gz"
        return open(path, "rb"), path.stat().st_size, dict(GZIP_HEADERS)
