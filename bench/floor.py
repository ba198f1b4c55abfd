"""The floor the tap is measured against: the least work that turns bundles into RECORDs.

Reads each gzip bundle whole into memory, inflates it, parses it with orjson and writes
every event as a RECORD line with orjson: no streaming, no shaping, no state. Usage:
python bench/floor.py OUT BUNDLE.json.gz...
"""

import gc
import gzip
import sys

import orjson


def main(out_path, *bundles):
    gc.disable()  # as fast as it can go: nothing here makes reference cycles
    prefix = b'{"type":"RECORD","stream":"events","record":'
    suffix = b',"time_extracted":"2026-01-01T00:00:00.000000Z"}\n'
    with open(out_path, "wb", buffering=1 << 20) as out:
        for path in bundles:
            with open(path, "rb") as handle:
                events = orjson.loads(gzip.decompress(handle.read()))
            out.write(b"".join(prefix + orjson.dumps(event) + suffix for event in events))
            del events


if __name__ == "__main__":
    main(*sys.argv[1:])
