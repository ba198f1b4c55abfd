"""`make bench`: the tap against a floor, side by side in one run, on generated bundles.

Cases: one bundle of 200,000 events (throughput), ten of 20,000, one of 1,000,000 (memory),
and a multi-bundle sync at a bandwidth where a download takes about as long as a parse
(overlap). Bundles are generated with the sandbox's generator once and cached in
bench/.cache. Figures come from the OS: wall time and the child's peak RSS (wait4).
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.files import MANIFEST, write_bundles

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
BIN = Path(sys.executable).parent
KEY = "bench-key"


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    events: int


def bundle_dir(name, bundles, events):
    """Generated bundles (cached): a directory the sandbox serves."""
    directory = CACHE / name
    if not (directory / MANIFEST).exists():
        print(f"   generating {name}: {bundles} bundle(s) of {events:,} events …", flush=True)
        write_bundles(SandboxData(bundles=bundles, events_per_bundle=events, seed=7),
                      directory)
    return directory


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


def measured(args, stdout_path, env=None):
    """Run a command to completion; wall seconds and the OS's peak RSS of the child."""
    with open(stdout_path, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    stderr = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{args[0]} failed ({proc.returncode}):\n{stderr[-2000:]}")
    with open(stdout_path, "rb") as produced:
        events = sum(1 for line in produced if line.startswith(b'{"type":"RECORD"'))
    return Run(seconds, usage.ru_maxrss / 1024, events)


class Sandbox:
    def __init__(self, directory, bandwidth=None):
        args = [str(BIN / "tap-fullstory-sandbox"), "--from-dir", str(directory),
                "--rate", "unlimited", "--api-key", KEY]
        if bandwidth:
            args += ["--bandwidth", f"{bandwidth / 1e6:.3f}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()


def run_tap(url, out):
    config = CACHE / "config.json"
    config.write_text(json.dumps({"api_key": KEY, "start_date": "2000-01-01T00:00:00Z",
                                  "base_url": url, "max_downloads_per_minute": 1e6,
                                  "spool_dir": str(CACHE)}))
    return measured([str(BIN / "tap-fullstory"), "--config", str(config)], out)


def run_floor(directory, out):
    bundles = sorted(str(p) for p in directory.glob("*.json.gz"))
    return measured([sys.executable, str(ROOT / "bench" / "floor.py"), "/dev/stdout",
                     *bundles], out)


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


def row(name, run, mb):
    return (f"| {name} | {run.events:,} | {run.seconds:.2f} | {run.events / run.seconds:,.0f} "
            f"| {mb / run.seconds:.0f} | {run.peak_rss_mb:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller bundles (a tenth), for trying the script out")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "out.jsonl"
    cases = [("1 × 200,000", "one-200k", 1, 200_000 // scale),
             ("10 × 20,000", "ten-20k", 10, 20_000 // scale),
             ("1 × 1,000,000", "one-1m", 1, 1_000_000 // scale)]
    print("Generating bundles (cached in bench/.cache) …", flush=True)
    dirs = {key: bundle_dir(key, n, m) for _, key, n, m in cases}

    lines = ["| case | events | seconds | events/s | MB/s of JSON | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    ratios, rss = [], {}
    for label, key, _, _ in cases:
        mb = json_bytes(dirs[key]) / 1e6
        with Sandbox(dirs[key]) as sandbox:
            tap = run_tap(sandbox.url, out)
        floor = run_floor(dirs[key], out)
        if tap.events != floor.events:
            sys.exit(f"{label}: the tap emitted {tap.events} events, the floor {floor.events}")
        lines += [row(f"{label}: tap", tap, mb), row(f"{label}: floor", floor, mb)]
        ratios.append((label, (tap.events / tap.seconds) / (floor.events / floor.seconds),
                       tap.peak_rss_mb / floor.peak_rss_mb))
        rss[key] = tap.peak_rss_mb
        print(lines[-2] + "\n" + lines[-1], flush=True)

    print("\n" + "\n".join(lines))
    print("\n| case | tap/floor events/s | tap/floor peak RSS |\n|---|---|---|")
    for label, speed, memory in ratios:
        print(f"| {label} | {speed:.2f}× | {memory:.2f}× |")
    print(f"\nTap peak RSS, 1,000,000-event bundle / 20,000-event bundles: "
          f"{rss['one-1m'] / rss['ten-20k']:.2f}× (max {max(rss.values()):.0f} MB)")

    overlap_dir = bundle_dir("six-20k", 6, 20_000 // scale)
    with Sandbox(overlap_dir) as sandbox:
        unthrottled = run_tap(sandbox.url, out)
    size = sum(p.stat().st_size for p in overlap_dir.glob("*.json.gz"))
    bandwidth = size / unthrottled.seconds  # one bundle's download ≈ one bundle's parse
    with Sandbox(overlap_dir, bandwidth) as sandbox:
        downloads = download_only(sandbox.url, overlap_dir)
        throttled = run_tap(sandbox.url, out)
    print(f"\nOverlap, 6 bundles at {bandwidth / 1e6:.1f} MB/s: downloads alone "
          f"{downloads:.2f} s, unthrottled sync {unthrottled.seconds:.2f} s, throttled sync "
          f"{throttled.seconds:.2f} s = {throttled.seconds / (downloads + unthrottled.seconds):.2f}"
          f"× (downloads + unthrottled); serial would be ≈1.0×")


if __name__ == "__main__":
    main()
