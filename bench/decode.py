"""Decoding with and without one unusual event early in a bundle: no event may cost a cliff.

A bundle is generated with the sandbox's generator (cached in bench/.cache) and copied
with one unusual event after its tenth: a lone surrogate escape, an integer beyond 64
bits, or `},{` inside a string. Each spooled gzip file is decoded with iter_events in this
process, best of 3 rounds of CPU time; the last column is the time against the plain
bundle (1.00× is no cost at all). Usage: python bench/decode.py [--quick]
"""

import argparse
import gzip
import logging
import time
from pathlib import Path

from tap_fullstory.decode import iter_events
from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.files import write_bundles

CACHE = Path(__file__).resolve().parent / ".cache"
AFTER = 10  # the unusual event follows this many normal ones
UNUSUAL = [  # (file name, what it is, the field added to a copy of the event before it)
    ("surrogate", "a lone surrogate", b'"evt_note_str":"caf\\ud83d"'),
    ("wide-int", "an integer beyond 64 bits", b'"evt_big_int":18446744073709551621'),
    ("cut-in-string", "`},{` inside a string", b'"evt_note_str":"a},{b"'),
]


def plain_bundle(events):
    """The generated bundle's path (one event per line, as write_bundles writes them)."""
    directory = CACHE / f"decode-{events}"
    found = sorted(directory.glob("*.json.gz"))
    if not found:
        write_bundles(SandboxData(bundles=1, events_per_bundle=events, seed=7), directory)
        found = sorted(directory.glob("*.json.gz"))
    return found[0]


def with_unusual(plain, name, field):
    """A copy of `plain` with one event more after the first AFTER: the AFTER-th with
    `field` added. Streamed, so no bundle is held in memory."""
    path = plain.parent / "unusual" / f"{name}.json.gz"
    if path.exists():
        return path
    path.parent.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    with gzip.open(plain, "rb") as source, gzip.open(partial, "wb", compresslevel=6) as out:
        for number, line in enumerate(source):
            out.write(line)
            if number == AFTER:  # line 0 is "[", so this is the AFTER-th event and its ","
                out.write(line.rstrip(b",\n")[:-1] + b"," + field + b"},\n")
    partial.rename(path)
    return path


def decode(path):
    """CPU seconds to decode every event of `path` (steadier than wall time on a shared
    machine; decoding runs in this one thread), and how many there were."""
    started = time.process_time()
    count = sum(1 for _ in iter_events(str(path), 1))
    return time.process_time() - started, count


def run(quick=False):
    """The results as printable lines: a markdown table."""
    events = 6_000 if quick else 60_000
    CACHE.mkdir(parents=True, exist_ok=True)
    plain = plain_bundle(events)
    cases = [("plain", plain)] + [(f"with {label}", with_unusual(plain, name, field))
                                  for name, label, field in UNUSUAL]
    decoder_log = logging.getLogger("tap_fullstory.decode")
    level = decoder_log.level
    decoder_log.setLevel(logging.ERROR)  # the surrogate's warning, once per decode
    try:
        runs = [[decode(path) for _, path in cases] for _ in range(3)]  # rounds: fair to all
    finally:
        decoder_log.setLevel(level)
    best = [min(times) for times in zip(*runs, strict=True)]
    base = best[0][0]
    lines = ["| bundle | events | CPU seconds | events/s | × plain |", "|---|---|---|---|---|"]
    for (label, _), (seconds, count) in zip(cases, best, strict=True):
        lines.append(f"| {label} | {count:,} | {seconds:.3f} | {count / seconds:,.0f} "
                     f"| {seconds / base:.2f}× |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 6,000-event bundle")
    print("\n".join(run(parser.parse_args().quick)))
