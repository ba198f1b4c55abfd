"""(c) A partitioned backfill: the same history through 1 partition and through P=2 run at
once, against a sandbox whose download limit is scaled down (2 downloads per 6 s), so the
limit and not the machine is what the partitions share.

Partition i has its own start_date/end_date (a bundle belongs to it when start_date < its
Stop <= end_date; adjacent ranges share the boundary), its own state and target-jsonl
directory, and max_downloads_per_minute = the limit / P.
"""

import json
import shutil
import time
from datetime import datetime, timezone

from common import (
    CACHE,
    DAY,
    FIRST_DAY,
    TAP,
    VENVS,
    Pipeline,
    Sandbox,
    bundle_dir,
    tap_config,
    write_json,
)

EVENTS = 250  # per daily bundle: small, so downloads wait for the limit, not the machine
LIMIT, WINDOW = 2, 6  # downloads per seconds: the sandbox's --rate
JSONL = str(VENVS / "target-jsonl" / "bin" / "target-jsonl")


def moment(unix_seconds):
    return datetime.fromtimestamp(unix_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def partition(sandbox, bundles, partitions, index):
    """Partition `index` of `partitions`: (its pipeline, its end, its output directory)."""
    first = unix(FIRST_DAY)
    start = first + index * bundles // partitions * DAY
    end = first + (index + 1) * bundles // partitions * DAY
    name = f"partition-{partitions}-{index}"
    config = tap_config(name, sandbox.url, start_date=moment(start), end_date=moment(end),
                        max_downloads_per_minute=60 * LIMIT / WINDOW / partitions)
    directory = CACHE / name
    shutil.rmtree(directory, ignore_errors=True)
    target = write_json(CACHE / f"{name}-target.json", {"destination_path": str(directory)})
    pipeline = Pipeline([[TAP, "--config", config], [JSONL, "--config", target]],
                        CACHE / f"{name}.state", name=name)
    return pipeline, end, directory


def backfill(directory, bundles, partitions):
    """Wall seconds for every partition to finish, and the 429s the taps logged; exits the
    bench unless every event arrived once and each partition's state ends at its end."""
    with Sandbox(directory, rate=f"{LIMIT}/{WINDOW}") as sandbox:
        parts = [partition(sandbox, bundles, partitions, i) for i in range(partitions)]
        started = time.perf_counter()
        try:
            for pipeline, _, _ in parts:
                pipeline.start()
            for pipeline, _, _ in parts:
                pipeline.wait()
        finally:  # one failed or the bench is stopping: end the others too
            for pipeline, _, _ in parts:
                pipeline.kill()
        seconds = time.perf_counter() - started
    pairs = []
    for pipeline, end, out in parts:
        state = json.loads(pipeline.stdout.read_text().splitlines()[-1])
        stop = state["bookmarks"]["events"]["ExportBundleStop"]
        if unix(stop) != end:
            raise SystemExit(f"{pipeline.name} ended at {stop}, not {moment(end)}")
        for path in out.glob("*.jsonl"):
            with open(path, "rb") as lines:
                for line in lines:
                    record = json.loads(line)
                    pairs.append((record["ExportBundleId"], record["ExportBundleRow"]))
    expected = bundles * EVENTS
    if len(pairs) != expected or len(set(pairs)) != expected:
        raise SystemExit(f"P={partitions}: {len(pairs):,} rows ({len(set(pairs)):,} distinct) "
                         f"in target-jsonl, expected {expected:,}")
    limited = sum(pipeline.stderr(0).count("rate limit (429)") for pipeline, _, _ in parts)
    return seconds, limited


def run(report, quick):
    bundles = 8 if quick else 24
    directory = bundle_dir("daily", bundles, EVENTS)
    rate = LIMIT / WINDOW
    bound = (bundles - 1) / rate
    burst = (bundles - 1) // LIMIT * WINDOW  # the window lets LIMIT start at once
    lines = [f"| partitions | wall s | speed-up over P=1 | the limit's bound (N-1)/rate, "
             f"N={bundles}: s | wall ÷ bound | with bursts of {LIMIT}: ⌊(N-1)/{LIMIT}⌋×{WINDOW} s "
             "| wall ÷ that | 429s the taps logged |", "|---|---|---|---|---|---|---|---|"]
    single = None
    for partitions in (1, 2):
        seconds, limited = backfill(directory, bundles, partitions)
        single = single or seconds
        lines.append(f"| {partitions} | {seconds:.1f} | {single / seconds:.2f}× | {bound:.1f} "
                     f"| {seconds / bound:.2f}× | {burst} | {seconds / burst:.2f}× "
                     f"| {limited} |")
        print(lines[-1], flush=True)
    lines += ["", f"{bundles} daily bundles of {EVENTS} events into target-jsonl; the sandbox "
              f"allows {LIMIT} downloads in any {WINDOW} s (rate {rate:.3f}/s) and each "
              "partition's tap paces at that rate ÷ P, evenly spaced, so one tap cannot use a "
              f"burst of {LIMIT} and P={LIMIT} partitions can. The sandbox does not log its "
              "answers, so 429s are counted as 'rate limit (429)' lines in the taps' stderr."]
    report.add("Partitioned backfill at a shared download limit", lines)
