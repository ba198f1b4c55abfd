"""Bundles written to a directory, for serving big ones without holding them in memory.

`write_bundles` streams generated events into gzip files (one event per line inside the
JSON array, as FullStory's exports come); `BundleDirectory` serves them back.
"""

import copy
import gzip
import json
import os
from datetime import datetime
from pathlib import Path

import orjson

from tap_fullstory.sandbox.account import people_pool
from tap_fullstory.sandbox.data import NEWER_NAMES, event_millis, in_window, lifetime_rows

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
    generator = {"seed": data.seed, "start": data.start.isoformat()}
    (directory / MANIFEST).write_text(json.dumps({"exports": exports, "generator": generator}))
    return directory


class BundleDirectory:
    """Serves the bundles `write_bundles` wrote, streaming each file from disk."""

    def __init__(self, directory):
        self.directory = Path(directory)
        manifest = json.loads((self.directory / MANIFEST).read_text())
        self._exports = manifest["exports"]
        # Directories written before the manifest named its generator have no people.
        generator = manifest.get("generator") or {}
        self.seed = generator.get("seed", 1)
        self._start = generator.get("start")

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

    def people(self):
        """The generator's people (see SandboxData.people), if the manifest names it."""
        if self._start is None:
            return []
        return copy.deepcopy(list(people_pool(self.seed, datetime.fromisoformat(self._start))))

    def window_events(self, start, stop):
        """The events of [start, stop) (unix seconds), in file order, newer field names."""
        events = []
        for export in self._exports:
            if export["Start"] >= stop or export["Stop"] <= start:
                continue
            with gzip.open(self.directory / f"{export['Id']}.json.gz", "rb") as lines:
                for line in lines:
                    line = line.strip().rstrip(b",")
                    if line in (b"[", b"]", b""):
                        continue
                    event = orjson.loads(line)
                    if start * 1000 <= event_millis(event) < stop * 1000:
                        events.append({NEWER_NAMES.get(k, k): v for k, v in event.items()})
        return events

    def window_individuals(self, start, stop):
        """As SandboxData.window_individuals: the people of the window, lifetime values."""
        return in_window(lifetime_rows(self), self.window_events(start, stop))

    def all_events(self):
        return self.window_events(0, 1 << 40)
