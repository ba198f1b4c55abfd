"""(b) End to end: the tap piped into each target, against the same target fed the tap's
saved output from a file (the target's own speed, a floor the tap cannot beat).

The sandbox serves cached bundles without a download limit and the tap's
max_downloads_per_minute is lifted. Before each run the target's schema is dropped and
made again (DuckDB: the file is deleted); after it the rows are counted in the database,
with the distinct (ExportBundleId, ExportBundleRow) pairs. CPU seconds come from wait4 for
the tap and the target, from /proc for the sandbox and the PostgreSQL server.
"""

import itertools
import subprocess
import time
from dataclasses import dataclass, field

from common import (
    CACHE,
    TAP,
    VENVS,
    Sandbox,
    bundle_dir,
    count_records,
    measured,
    tap_config,
    write_json,
)

BUNDLES = 5
SCHEMA = "bench"
PROGRAMS = {"meltano": VENVS / "target-postgres" / "bin" / "target-postgres",
            "pipelinewise": VENVS / "pipelinewise-target-postgres" / "bin" / "target-postgres",
            "duckdb": VENVS / "target-duckdb" / "bin" / "target-duckdb"}
PAIR = {"meltano": '"ExportBundleId", "ExportBundleRow"',  # it keeps the fields' case
        "pipelinewise": "exportbundleid, exportbundlerow",
        "duckdb": "exportbundleid, exportbundlerow"}
DUCKDB_FILE = CACHE / "pipelines.duckdb"  # not named like SCHEMA: DuckDB finds both
DUCKDB_COUNT = ("import duckdb, sys; print(*duckdb.connect(sys.argv[1], read_only=True)"
                ".execute(sys.argv[2]).fetchone())")
BATCH_SIZES = [2_000, None, 50_000]  # None: the SDK's default (10,000 rows)


@dataclass
class Target:
    label: str
    kind: str
    settings: dict = field(default_factory=dict)


TARGETS = [
    Target("meltanolabs-target-postgres 0.8.1, defaults", "meltano"),
    Target("meltanolabs-target-postgres 0.8.1, validate_records: false", "meltano",
           {"validate_records": False}),
    Target("pipelinewise-target-postgres 2.1.2", "pipelinewise",
           {"primary_key_required": False}),
    Target("target-duckdb 0.8.0 (duckdb 1.1.3)", "duckdb", {"primary_key_required": False}),
]


class Destinations:
    """Configs, resets and row counts for each kind of target."""

    def __init__(self, pg):
        self.pg = pg

    def command(self, target):
        db = self.pg.connection
        if target.kind == "meltano":
            config = {**db, "default_target_schema": SCHEMA}
        elif target.kind == "pipelinewise":
            config = {"host": db["host"], "port": db["port"], "user": db["user"],
                      "password": db["password"], "dbname": db["database"],
                      "default_target_schema": SCHEMA}
        else:
            config = {"path": str(DUCKDB_FILE), "default_target_schema": SCHEMA,
                      "temp_dir": str(CACHE)}
        path = write_json(CACHE / f"target-{target.kind}.json", {**config, **target.settings})
        return [str(PROGRAMS[target.kind]), "--config", path]

    def reset(self, target):
        if target.kind == "duckdb":
            for stale in (DUCKDB_FILE, DUCKDB_FILE.with_suffix(".duckdb.wal")):
                stale.unlink(missing_ok=True)
        else:
            self.pg.reset(SCHEMA)

    def loaded(self, target):
        """Rows in the events table, and distinct identity pairs among them."""
        query = f"select count(*), count(distinct ({PAIR[target.kind]})) from {SCHEMA}.events"
        if target.kind == "duckdb":
            python = str(VENVS / "target-duckdb" / "bin" / "python")
            text = subprocess.run([python, "-c", DUCKDB_COUNT, str(DUCKDB_FILE), query],
                                  capture_output=True, text=True, check=True).stdout
        else:
            text = self.pg.sql(query).replace("|", " ")
        rows, pairs = (int(value) for value in text.split())
        return rows, pairs

    def server_cpu(self, target):
        return None if target.kind == "duckdb" else self.pg.cpu()


@dataclass
class Load:
    """One run into a target, with the CPU each part used (None: not in this run)."""

    seconds: float
    target_cpu: float
    server_cpu: float
    tap_cpu: float = None
    sandbox_cpu: float = None


def checked(destinations, target, expected, what, problems):
    """Whether the run loaded exactly `expected` rows, each pair once (else noted in
    `problems`)."""
    rows, pairs = destinations.loaded(target)
    if rows == pairs == expected:
        return True
    problems.append(f"{target.label}, {what}: {rows:,} rows ({pairs:,} distinct), "
                    f"expected {expected:,}")
    return False


def loaded_text(events, runs, exact):
    if not exact:
        return "**no: see the mismatches**"
    return {1: f"{events:,} (1 run)", 2: f"{events:,} in both runs"}.get(
        runs, f"{events:,} in all {runs} runs")


def warm_up(destinations, saved):
    """One small untimed load per kind of target: otherwise whichever run comes first pays
    for reading the target's libraries from disk."""
    sample = CACHE / "pipe-warm-up.jsonl"
    with open(saved, "rb") as full, open(sample, "wb") as out:
        out.writelines(itertools.islice(full, 1000))
    for target in {target.kind: target for target in TARGETS}.values():
        from_file(destinations, target, sample)


def from_file(destinations, target, saved):
    destinations.reset(target)
    server = destinations.server_cpu(target)
    run = measured(destinations.command(target), stdin=saved, stdout=CACHE / "target.out",
                   name=f"file-{target.kind}")
    return Load(run.seconds, run.usage[0].cpu, server_used(destinations, target, server))


def piped(destinations, target, sandbox, config):
    destinations.reset(target)
    sandbox_before, server = sandbox.cpu(), destinations.server_cpu(target)
    run = measured([TAP, "--config", config], destinations.command(target),
                   stdout=CACHE / "target.out", name=f"piped-{target.kind}")
    return Load(run.seconds, run.usage[1].cpu, server_used(destinations, target, server),
                run.usage[0].cpu, sandbox.cpu() - sandbox_before)


def server_used(destinations, target, before):
    """The server's CPU seconds since `before` (None for DuckDB, which has no server)."""
    if before is None:
        return None
    time.sleep(0.3)  # the server's backend ends after the target hangs up: count it too
    return destinations.server_cpu(target) - before


def micros(seconds, events):
    return "—" if seconds is None else f"{seconds / events * 1e6:.0f}"


def both(piped_seconds, file_seconds, events):
    if piped_seconds is None:
        return "—"
    return f"{micros(piped_seconds, events)} ({micros(file_seconds, events)})"


def run(report, quick, pg):
    events = 5_000 if quick else 50_000
    rounds = 1 if quick else 2
    directory = bundle_dir("pipelines", BUNDLES, events // BUNDLES)
    destinations = Destinations(pg)
    saved = CACHE / "pipe-tap-output.jsonl"
    problems = []
    speed = ["| pipeline | rows loaded (runs) | target fed from a file: s | rows/s "
             "| tap piped into it: s | rows/s | piped ÷ from file (time) |",
             "|---|---|---|---|---|---|---|"]
    where = ["| pipeline | wall µs/event: piped (from a file) | tap CPU µs/event "
             "| sandbox CPU µs/event | target CPU µs/event: piped (from a file) "
             "| PostgreSQL CPU µs/event: piped (from a file) | CPU used ÷ (2 cores × wall), "
             "piped |", "|---|---|---|---|---|---|---|"]
    with Sandbox(directory) as sandbox:
        config = tap_config("pipelines", sandbox.url)
        before = sandbox.cpu()
        alone = measured([TAP, "--config", config], stdout=saved, name="pipe-tap")
        served = sandbox.cpu() - before
        if count_records(saved) != events:
            raise SystemExit(f"the tap wrote {count_records(saved):,} RECORDs, not {events:,}")
        speed.append(f"| the tap alone, to a file | {events:,} (1 run) | — | — "
                     f"| {alone.seconds:.2f} | {events / alone.seconds:,.0f} | — |")
        where.append(f"| the tap alone, to a file | {micros(alone.seconds, events)} "
                     f"| {micros(alone.usage[0].cpu, events)} | {micros(served, events)} "
                     f"| — | — | {(alone.usage[0].cpu + served) / (2 * alone.seconds):.2f} |")
        warm_up(destinations, saved)
        for target in TARGETS:
            files, pipes, exact = [], [], True
            for number in range(rounds):  # both orders, so neither run always goes first
                for step in ("file", "piped") if number % 2 == 0 else ("piped", "file"):
                    if step == "file":
                        files.append(from_file(destinations, target, saved))
                    else:
                        pipes.append(piped(destinations, target, sandbox, config))
                    exact &= checked(destinations, target, events, step, problems)
            file_run = min(files, key=lambda run: run.seconds)
            pipe = min(pipes, key=lambda run: run.seconds)
            speed.append(f"| {target.label} | {loaded_text(events, 2 * rounds, exact)} "
                         f"| {file_run.seconds:.2f} | {events / file_run.seconds:,.0f} "
                         f"| {pipe.seconds:.2f} | {events / pipe.seconds:,.0f} "
                         f"| {pipe.seconds / file_run.seconds:.2f}× |")
            used = pipe.tap_cpu + pipe.target_cpu + pipe.sandbox_cpu + (pipe.server_cpu or 0)
            where.append(f"| {target.label} | {both(pipe.seconds, file_run.seconds, events)} "
                         f"| {micros(pipe.tap_cpu, events)} | {micros(pipe.sandbox_cpu, events)} "
                         f"| {both(pipe.target_cpu, file_run.target_cpu, events)} "
                         f"| {both(pipe.server_cpu, file_run.server_cpu, events)} "
                         f"| {used / (2 * pipe.seconds):.2f} |")
            print(speed[-1], flush=True)
        best = "" if rounds == 1 else f"; best of {rounds} runs each, in both orders"
        report.add(f"Pipelines, {events:,} events in {BUNDLES} bundles (PostgreSQL 15 with "
                   f"fsync, synchronous_commit and full_page_writes off{best})", speed)
        report.add("Where the time goes, in the fastest runs (piped: 2 cores shared by the "
                   "tap, the sandbox, the target and PostgreSQL)", where)
        report.add("meltanolabs-target-postgres batch_size_rows (validate_records: false, "
                   f"piped{best})",
                   batch_sizes(destinations, sandbox, config, events, rounds, problems))
    if problems:
        report.add("Row count mismatches", [f"- {problem}" for problem in problems])
    return problems


def batch_sizes(destinations, sandbox, config, events, rounds, problems):
    lines = ["| batch_size_rows | rows loaded (runs) | tap piped into it: s | rows/s "
             "| × the best |", "|---|---|---|---|---|"]
    seconds, exact = {}, {}
    for number in range(rounds):
        for size in BATCH_SIZES if number % 2 == 0 else BATCH_SIZES[::-1]:
            settings = {"validate_records": False}
            if size is not None:
                settings["batch_size_rows"] = size
            target = Target(f"batch_size_rows {batch_label(size)}", "meltano", settings)
            pipe = piped(destinations, target, sandbox, config)
            seconds[size] = min(pipe.seconds, seconds.get(size, pipe.seconds))
            ok = checked(destinations, target, events, "piped", problems)
            exact[size] = ok and exact.get(size, True)
    best = min(seconds.values())
    for size in BATCH_SIZES:
        lines.append(f"| {batch_label(size)} | {loaded_text(events, rounds, exact[size])} "
                     f"| {seconds[size]:.2f} | {events / seconds[size]:,.0f} "
                     f"| {seconds[size] / best:.2f}× |")
    fastest = min(BATCH_SIZES, key=seconds.get)
    lines += ["", f"Fastest here: batch_size_rows {batch_label(fastest)}, "
                  f"{events / best:,.0f} rows/s."]
    return lines


def batch_label(size):
    return "default (10,000)" if size is None else f"{size:,}"
