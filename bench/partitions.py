"""(c) A partitioned backfill: the same history through 1 partition and through P=2 run at
once, against a sandbox whose download limit is scaled down (2 downloads per 6 s), so the
limit is what the partitions share. Two cases:

- small bundles into target-jsonl: the limit, not the machine, sets the pace, so P=2 can
  only come close to the limit's bound (the most partitions can give);
- bundles into meltanolabs-target-postgres that take the target longer than the download
  interval: one pipeline leaves the limit unused, and P=2 pipelines load at once.

Partition i has its own start_date/end_date (a bundle belongs to it when start_date < its
Stop <= end_date; adjacent ranges share the boundary), its own state and target config,
and max_downloads_per_minute = the limit / P.
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

LIMIT, WINDOW = 2, 6  # downloads per seconds: the sandbox's --rate
SCHEMA = "backfill"


class JsonlTarget:
    """target-jsonl, a directory per partition: fast, so the limit sets the pace."""

    label = "target-jsonl"

    def __init__(self):
        self.program = str(VENVS / "target-jsonl" / "bin" / "target-jsonl")

    def begin(self, partitions):
        pass

    def command(self, name):
        directory = CACHE / name
        shutil.rmtree(directory, ignore_errors=True)
        config = write_json(CACHE / f"{name}-target.json", {"destination_path": str(directory)})
        return [self.program, "--config", config]

    def loaded(self, names):
        """Rows loaded, and distinct identity pairs among them."""
        pairs = []
        for name in names:
            for path in (CACHE / name).glob("*.jsonl"):
                with open(path, "rb") as lines:
                    pairs += [(r["ExportBundleId"], r["ExportBundleRow"])
                              for r in map(json.loads, lines)]
        return len(pairs), len(set(pairs))


class PostgresTarget:
    """meltanolabs-target-postgres with validate_records: false, every partition into one
    table, as a user would load them."""

    label = "meltanolabs-target-postgres 0.8.1, validate_records: false"

    def __init__(self, pg):
        self.pg = pg
        self.program = str(VENVS / "target-postgres" / "bin" / "target-postgres")
        self.config = write_json(CACHE / "backfill-target-postgres.json", {
            **pg.connection, "default_target_schema": SCHEMA, "validate_records": False})

    def begin(self, partitions):
        # P=1 goes first and makes the table; P=2 then loads into it (emptied) at once, as
        # partitions of a real backfill do, rather than race each other to create it
        if partitions == 1:
            self.pg.reset(SCHEMA)
        else:
            self.pg.sql(f"truncate {SCHEMA}.events")

    def command(self, name):
        return [self.program, "--config", self.config]

    def loaded(self, names):
        text = self.pg.sql('select count(*), count(distinct ("ExportBundleId", '
                           f'"ExportBundleRow")) from {SCHEMA}.events')
        rows, pairs = (int(value) for value in text.split("|"))
        return rows, pairs


def moment(unix_seconds):
    return datetime.fromtimestamp(unix_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def partition(sandbox, target, bundles, partitions, index):
    """Partition `index` of `partitions`: (its pipeline, its end)."""
    first = unix(FIRST_DAY)
    start = first + index * bundles // partitions * DAY
    end = first + (index + 1) * bundles // partitions * DAY
    name = f"partition-{partitions}-{index}"
    config = tap_config(name, sandbox.url, start_date=moment(start), end_date=moment(end),
                        max_downloads_per_minute=60 * LIMIT / WINDOW / partitions)
    pipeline = Pipeline([[TAP, "--config", config], target.command(name)],
                        CACHE / f"{name}.state", name=name)
    return pipeline, end


def backfill(directory, target, bundles, events, partitions):
    """Wall seconds for every partition to finish, and the 429s the taps logged; exits the
    bench unless every event arrived once and each partition's state ends at its end."""
    target.begin(partitions)
    with Sandbox(directory, rate=f"{LIMIT}/{WINDOW}") as sandbox:
        parts = [partition(sandbox, target, bundles, partitions, i) for i in range(partitions)]
        started = time.perf_counter()
        try:
            for pipeline, _ in parts:
                pipeline.start()
            for pipeline, _ in parts:
                pipeline.wait()
        finally:  # one failed or the bench is stopping: end the others too
            for pipeline, _ in parts:
                pipeline.kill()
        seconds = time.perf_counter() - started
    for pipeline, end in parts:
        state = json.loads(pipeline.stdout.read_text().splitlines()[-1])
        stop = state["bookmarks"]["events"]["ExportBundleStop"]
        if unix(stop) != end:
            raise SystemExit(f"{pipeline.name} ended at {stop}, not {moment(end)}")
    rows, pairs = target.loaded([pipeline.name for pipeline, _ in parts])
    expected = bundles * events
    if rows != expected or pairs != expected:
        raise SystemExit(f"P={partitions} into {target.label}: {rows:,} rows ({pairs:,} "
                         f"distinct), expected {expected:,}")
    limited = sum(pipeline.stderr(0).count("rate limit (429)") for pipeline, _ in parts)
    return seconds, limited


def case(target, bundles, events):
    """The table rows for P = 1 and 2 through `target`."""
    directory = bundle_dir("daily", bundles, events)
    bound = (bundles - 1) / (LIMIT / WINDOW)
    lines, single = [], None
    for partitions in (1, 2):
        seconds, limited = backfill(directory, target, bundles, events, partitions)
        single = single or seconds
        lines.append(f"| {target.label}, {bundles} × {events:,} events | {partitions} "
                     f"| {seconds:.1f} | {bundles * events / seconds:,.0f} "
                     f"| {single / seconds:.2f}× | {bound:.1f} | {seconds / bound:.2f}× "
                     f"| {limited} |")
        print(lines[-1], flush=True)
    return lines


def run(report, quick, pg):
    rate = LIMIT / WINDOW
    lines = ["| history | partitions | wall s | rows/s | speed-up over P=1 "
             "| the limit's bound (N-1)/rate: s | wall ÷ bound | 429s the taps logged |",
             "|---|---|---|---|---|---|---|---|"]
    lines += case(JsonlTarget(), 8 if quick else 24, 250)
    lines += case(PostgresTarget(pg), 4 if quick else 8, 3_000 if quick else 30_000)
    lines += ["", f"Daily bundles; the sandbox allows {LIMIT} downloads in any {WINDOW} s "
              f"(rate {rate:.3f}/s, FullStory's 2 a minute scaled down) and each partition's "
              "tap paces at that rate ÷ P, evenly spaced. The bound is the time the limit "
              "needs for N evenly spaced downloads; P=2 partitions can start two inside one "
              "window, so they can come in under it. Into "
              "target-jsonl the limit is the pace already with P=1; into PostgreSQL a bundle "
              "takes the target longer than the interval between downloads, so one "
              "pipeline leaves the limit idle and two load in parallel, on 2 cores shared "
              "with both taps and PostgreSQL. 429s are counted as 'rate limit (429)' lines "
              "in the taps' stderr."]
    report.add("Partitioned backfill at a shared download limit", lines)
