"""(a) The tap alone, stdout to a file, against the floor (bench/floor.py) in the same run.

Cases: one bundle of 200,000 events (throughput), ten of 20,000, one of 1,000,000 (memory),
and a multi-bundle sync at a bandwidth where a download takes about as long as a parse
(overlap). Wall time and the child's peak RSS come from wait4.
"""

import gzip
import json
import sys
import time

import requests
from common import (
    CACHE,
    KEY,
    ROOT,
    TAP,
    Sandbox,
    bundle_dir,
    count_records,
    measured,
    tap_config,
)

from tap_fullstory.sandbox.files import MANIFEST


def json_bytes(directory):
    """Uncompressed JSON bytes of every bundle in a directory (cached next to it)."""
    cached = directory / "json-bytes"
    if not cached.exists():
        total = 0
        for path in sorted(directory.glob("*.json.gz")):
            with gzip.open(path, "rb") as body:
                while chunk := body.read(1 << 22):
                    total += len(chunk)
        cached.write_text(str(total))
    return int(cached.read_text())


def run_tap(url, out):
    """The tap's run and how many RECORDs it wrote."""
    run = measured([TAP, "--config", tap_config("alone", url)], stdout=out, name="alone-tap")
    return run, count_records(out)


def run_floor(directory, out):
    bundles = sorted(str(p) for p in directory.glob("*.json.gz"))
    run = measured([sys.executable, str(ROOT / "bench" / "floor.py"), "/dev/stdout", *bundles],
                   stdout=out, name="alone-floor")
    return run, count_records(out)


def download_only(url, directory):
    """Seconds to fetch every bundle, discarding the bytes: the downloads alone."""
    exports = json.loads((directory / MANIFEST).read_text())["exports"]
    session = requests.Session()
    session.headers["Authorization"] = f"Basic {KEY}"
    started = time.perf_counter()
    for export in exports:
        with session.get(url + "/api/v1/export/get", params={"id": export["Id"]},
                         stream=True) as response:
            for _ in response.raw.stream(1 << 20, decode_content=False):
                pass
    return time.perf_counter() - started


def row(name, run, events, mb):
    return (f"| {name} | {events:,} | {run.seconds:.2f} | {events / run.seconds:,.0f} "
            f"| {mb / run.seconds:.0f} | {run.usage[0].peak_rss_mb:.0f} |")


def run(report, quick):
    scale = 10 if quick else 1
    out = CACHE / "out.jsonl"
    cases = [(f"{n} × {m // scale:,}", key, n, m // scale)
             for key, n, m in (("one-200k", 1, 200_000), ("ten-20k", 10, 20_000),
                               ("one-1m", 1, 1_000_000))]
    dirs = {key: bundle_dir(key, n, m) for _, key, n, m in cases}

    lines = ["| case | events | seconds | events/s | MB/s of JSON | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    ratios, rss = [], {}
    for label, key, _, _ in cases:
        mb = json_bytes(dirs[key]) / 1e6
        with Sandbox(dirs[key]) as sandbox:
            tap, tap_events = run_tap(sandbox.url, out)
        floor, floor_events = run_floor(dirs[key], out)
        if tap_events != floor_events:
            sys.exit(f"{label}: the tap emitted {tap_events} events, the floor {floor_events}")
        lines += [row(f"{label}: tap", tap, tap_events, mb),
                  row(f"{label}: floor", floor, floor_events, mb)]
        ratios.append((label, floor.seconds / tap.seconds,
                       tap.usage[0].peak_rss_mb / floor.usage[0].peak_rss_mb))
        rss[key] = tap.usage[0].peak_rss_mb
        print(lines[-2] + "\n" + lines[-1], flush=True)
    report.add("The tap alone against the floor", lines)

    report.add("Tap ÷ floor", ["| case | tap/floor events/s | tap/floor peak RSS |",
                               "|---|---|---|"] +
               [f"| {label} | {speed:.2f}× | {memory:.2f}× |" for label, speed, memory in ratios])

    per_bundle = {key: events for _, key, _, events in cases}
    smallest = per_bundle["ten-20k"]
    report.add(f"Tap peak RSS by bundle size (the goal: the largest within 10 % of "
               f"{smallest:,})",
               ["| events per bundle | tap peak RSS MB | × the smallest |", "|---|---|---|"] +
               [f"| {per_bundle[key]:,} | {rss[key]:.1f} | {rss[key] / rss['ten-20k']:.2f}× |"
                for key in ("ten-20k", "one-200k", "one-1m")])

    overlap_dir = bundle_dir("overlap", 6, 20_000 // scale)
    with Sandbox(overlap_dir) as sandbox:
        unthrottled, _ = run_tap(sandbox.url, out)
    size = sum(p.stat().st_size for p in overlap_dir.glob("*.json.gz"))
    bandwidth = size / unthrottled.seconds  # one bundle's download ≈ one bundle's parse
    with Sandbox(overlap_dir, bandwidth) as sandbox:
        downloads = download_only(sandbox.url, overlap_dir)
        throttled, _ = run_tap(sandbox.url, out)
    report.add("Overlap of downloads and parsing", [
        f"6 bundles at {bandwidth / 1e6:.1f} MB/s: downloads alone {downloads:.2f} s, "
        f"unthrottled sync {unthrottled.seconds:.2f} s, throttled sync "
        f"{throttled.seconds:.2f} s = {throttled.seconds / (downloads + unthrottled.seconds):.2f}"
        "× (downloads + unthrottled); serial would be ≈1.0×."])
