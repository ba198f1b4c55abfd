"""Stops and kills at random instants, resumed each time, checked event by event.

A chain of runs syncs the sandbox: each run starts from the last STATE the one before it
printed and is stopped (SIGTERM or SIGINT) or killed (SIGKILL) at a random instant after
its signal handlers are in place, until a run finishes. Clean stops must add up to every
event exactly once; kills may repeat only rows a killed run wrote after its last STATE.
The seed is in the report header (`chaos seed`); TAP_FULLSTORY_CHAOS_SEED replays a run.
"""

import json
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_segment import window_events
from test_sessions import event_sessions

from conftest import (
    API_KEY,
    TAP,
    catalog_selecting,
    expected_events,
    identity,
    messages,
    original_event,
    run_tap,
    states,
)
from tap_fullstory.streams import BY_NAME, STREAMS
from tap_fullstory.timestamps import format_time

LIFTED = ("lastUpdated", "created", "lastUpdatedBy", "createdBy")

STOPS = 24       # clean stops per source
KILLS = 12       # SIGKILLs per source
MAX_RUNS = 200   # a chain that never finishes is a failure, not a hang


def handlers_installed(pid):
    """True once process `pid` catches SIGTERM (its SigCgt mask in /proc says so)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except FileNotFoundError:
        return True  # already gone: nothing left to wait for
    return False


class SlowTarget(threading.Thread):
    """Reads the tap's stdout in small pieces with short pauses, as a busy target does,
    so that stops also land while rows are being written."""

    def __init__(self, pipe, rng):
        super().__init__(daemon=True)
        self.pipe, self.pause = pipe, rng.uniform(0, 0.002)
        self.data = bytearray()

    def run(self):
        while chunk := self.pipe.read1(16384):
            self.data += chunk
            time.sleep(self.pause)


def run_once(tap_args, state, signum, delay, rng, tmp_path):
    """One run of the tap from `state`, sent `signum` `delay` seconds after its handlers are
    in; (stdout, exit code, stderr)."""
    args = [TAP, *tap_args] + (["--state", str(state)] if state else [])
    with open(tmp_path / "chaos-stderr.txt", "wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
        target = SlowTarget(proc.stdout, rng)
        target.start()
        while not handlers_installed(proc.pid):
            time.sleep(0.002)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signum)
        code = proc.wait(timeout=60)  # a tap that ignores the signal fails here
        target.join(timeout=60)
    stderr = (tmp_path / "chaos-stderr.txt").read_text()
    assert API_KEY not in stderr and API_KEY.encode() not in target.data
    return bytes(target.data), code, stderr


class Chain:
    """Runs resumed one after another from the last STATE, and everything they wrote."""

    def __init__(self, tap_args, spool, seed, tmp_path):
        self.tap_args, self.spool, self.tmp_path = tap_args, spool, tmp_path
        self.rng = random.Random(seed)
        self.seed = seed
        self.runs = []  # (signal, delay, messages of the run)
        self.state = None
        self.patience = 1  # doubles after each run that moved no bookmark

    def run(self, signum, longest):
        """One run, stopped at a random instant in [0, longest × patience): a chain on a
        slow or loaded machine waits longer instead of stopping every run before its first
        checkpoint, so it finishes however fast the machine is."""
        delay = self.rng.uniform(0, longest * self.patience)
        output, code, stderr = run_once(self.tap_args, self.state, signum, delay, self.rng,
                                        self.tmp_path)
        where = f"(seed {self.seed}, run {len(self.runs) + 1}, {signal.Signals(signum).name} " \
                f"after {delay:.3f} s)"
        if signum == signal.SIGKILL and code == -signal.SIGKILL:
            output = output[:output.rfind(b"\n") + 1]  # the kill may cut the last line
        else:
            assert "Traceback" not in stderr and "Exception ignored" not in stderr, \
                f"{where}:\n{stderr[-3000:]}"
            assert code in (0, 128 + signum), f"{where}: exit {code}\n{stderr[-3000:]}"
            assert output.endswith(b"\n"), f"{where}: the last line was cut"
            if code:
                name = signal.Signals(signum).name
                assert f"CRITICAL Stopped by {name}; the last STATE printed resumes" in \
                    stderr, where
        msgs = messages(output)
        if code == 0 or signum != signal.SIGKILL:
            assert msgs and msgs[-1]["type"] == "STATE", f"{where}: no STATE last"
        assert list(self.spool.iterdir()) == [], f"{where}: a spool file was left behind"
        self.runs.append((signum, where, msgs))
        before = json.loads(self.state.read_text()) if self.state else None
        moved = bool(states(msgs)) and states(msgs)[-1] != before
        self.patience = 1 if moved else self.patience * 2
        if states(msgs):
            self.state = self.tmp_path / "chaos-state.json"
            self.state.write_text(json.dumps(states(msgs)[-1]))
        return code == 0


@dataclass
class World:
    """What the chains sync and how their output is checked: `expected` maps each row's
    key (see `key`) to the row the source holds; `original` turns a RECORD message back into
    that row; `current` maps each FULL_TABLE stream to its rows by key, which the last
    complete version must hold exactly (those streams start again on resume, by design)."""

    tap_args: list
    spool: Path
    final: dict
    expected: dict
    key: object = lambda m: identity(m["record"])
    original: object = lambda m: original_event(m["record"])
    current: dict = field(default_factory=dict)


def run_chains(world, tmp_path, seed, signals, count, longest):
    """Chains of runs until `count` runs were signalled; every chain runs to the end.
    Returns the finished chains."""
    rng = random.Random(seed)
    chains, signalled = [], 0
    while signalled < count:
        chain = Chain(world.tap_args, world.spool, rng.randrange(2**32), tmp_path)
        while not chain.run(rng.choice(signals), longest):
            signalled += 1
            assert len(chain.runs) < MAX_RUNS, f"chain (seed {chain.seed}) never finished"
        assert states(chain.runs[-1][2])[-1] == world.final, \
            f"chain (seed {chain.seed}) ended on another final state"
        chains.append(chain)
    return chains


def rows_of(msgs, world):
    """The RECORD messages of the streams that promise exactly once."""
    return [m for m in msgs if m["type"] == "RECORD" and m["stream"] not in world.current]


def check_full_tables(chain, world):
    """Each FULL_TABLE stream's last complete version holds exactly the current rows."""
    everything = [m for _, _, msgs in chain.runs for m in msgs]
    for stream, rows in world.current.items():
        version = [m["version"] for m in everything
                   if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream][-1]
        got = {world.key(m): m["record"] for m in everything if m["type"] == "RECORD"
               and m["stream"] == stream and m["version"] == version}
        assert got == rows, f"chain (seed {chain.seed}): {stream} is not the current rows"


def check_stops(chain, world):
    """Clean stops: every row exactly once, field for field."""
    got = [m for _, _, msgs in chain.runs for m in rows_of(msgs, world)]
    keys = [world.key(m) for m in got]
    repeated = len(keys) - len(set(keys))
    assert repeated == 0, f"chain (seed {chain.seed}): {repeated} row(s) sent twice"
    assert set(keys) == set(world.expected), f"chain (seed {chain.seed}): rows lost"
    assert all(world.original(m) == world.expected[world.key(m)] for m in got)
    check_full_tables(chain, world)


def check_kills(chain, world):
    """Kills: nothing lost; nothing a STATE covered comes again. Each run resumes from the
    last STATE the chain printed, which covers every row written before a STATE so far;
    only rows written after a run's last STATE may come again."""
    out, covered_so_far = set(), set()
    for _, where, msgs in chain.runs:
        last = max((i for i, m in enumerate(msgs) if m["type"] == "STATE"), default=-1)
        keys = [world.key(m) for m in rows_of(msgs, world)]
        again = set(keys) & covered_so_far
        assert not again, f"{where}: resent {len(again)} row(s) a STATE had covered"
        covered = [world.key(m) for m in rows_of(msgs[:last + 1], world)]
        assert len(set(covered)) == len(covered), f"{where}: a row twice in one run"
        covered_so_far |= set(covered)
        out |= set(keys)
        assert all(world.original(m) == world.expected[world.key(m)]
                   for m in rows_of(msgs, world))
    assert out == set(world.expected), f"chain (seed {chain.seed}): rows lost"
    check_full_tables(chain, world)


@pytest.fixture
def bundles(sandbox, write_config, tmp_path):
    """Data Export with everything that takes time: a download limit the tap's pacing
    overruns (so 429 waits), pacing waits, bandwidth, a 5xx now and then."""
    server = sandbox(bundles=12, events_per_bundle=400, rate=(6, 1.0),
                     bytes_per_second=4_000_000, faults="5xx-every=9")
    config = write_config(server.url, checkpoint_every=150, max_downloads_per_minute=900)
    final = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-13T00:00:00.000000Z"}},
             "currently_syncing": None}
    return World(["--config", config], tmp_path / "spool", final,
                 expected_events(server.data))


@pytest.fixture
def windows(sandbox, write_config, tmp_path):
    """Segment Export: exports that take polls, downloads, NDJSON windows."""
    server = sandbox(bundles=3, events_per_bundle=1200, faults="5xx-every=11")
    config = write_config(server.url, source="segment_export", start_date="2026-01-01T00:00:00Z",
                          end_date="2026-01-04T00:00:00Z", export_window_hours=6,
                          checkpoint_every=120)
    final = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-04T00:00:00.000000Z"}},
             "currently_syncing": None}
    return World(["--config", config], tmp_path / "spool", final, window_events(server.data))


@pytest.fixture
def account(sandbox, write_config, tmp_path):
    """Every stream at once: the account's paged streams, individuals, then events."""
    server = sandbox(bundles=4, events_per_bundle=300, faults="5xx-every=13,api-429-every=17")
    config = write_config(server.url, api_base_url=server.url, end_date="2026-01-05T00:00:00Z",
                          checkpoint_every=40)
    catalog = catalog_selecting(tmp_path, config)
    first = int(server.data.start.timestamp())
    expected = {("events", key): event for key, event in expected_events(server.data).items()}
    for begin in range(first, first + 4 * 86400, 86400):
        for row in server.data.window_individuals(begin, begin + 86400):
            expected["individuals", (format_time(begin + 86400), row["IndvId"])] = row
    for stream in STREAMS:
        kind = stream.endpoint.path.split("/")[-2] if stream.history else None
        for platform in (stream.platforms or (None,)) if kind else ():
            for version in server.account.history(kind, platform or "web"):
                expected[stream.name, (platform, version["metadata"]["lastUpdated"])] = \
                    with_platform(version, platform)
    for key, row in event_sessions(server.data, until="2026-01-05T00:00:00Z").items():
        expected["sessions", key] = row
    current = {"users": {("users", u["id"]): u for u in server.account.users(include_schema=True)},
               "segments": {("segments", s["id"]): s for s in server.account.segments()}}
    kinds = {s.name: s.endpoint.path.split("/")[-1] for s in STREAMS
             if s.kind == "paged" and not s.history and s.name not in current}
    for name, kind in kinds.items():
        current[name] = {(name, platform): with_platform(
            lifted(server.account.current(kind, platform or "web")), platform)
            for platform in BY_NAME[name].platforms or (None,)}
    final = run_tap("--config", config, "--catalog", catalog)
    return World(["--config", config, "--catalog", catalog], tmp_path / "spool",
                 states(messages(final.stdout))[-1], expected, key=account_key,
                 original=account_row, current=current)


def account_key(message):
    stream, record = message["stream"], message["record"]
    if stream == "events":
        return stream, identity(record)
    if stream == "individuals":
        return stream, (record["ExportWindowStop"], record["IndvId"])
    if stream in ("users", "segments"):
        return stream, record["id"]
    if stream == "sessions":
        return stream, (record["userId"], record["sessionId"])
    if stream.endswith("_history"):
        return stream, (record.get("platform"), record["lastUpdated"])
    return stream, record.get("platform")  # a current-settings stream: one row a platform


def account_row(message):
    stream, record = message["stream"], message["record"]
    if stream == "events":
        return original_event(record)
    if stream == "individuals":
        row = {k: v for k, v in record.items()
               if k not in ("CustomVars", "ExportWindowId", "ExportWindowStop")}
        return {**row, **(record.get("CustomVars") or {})}
    if stream == "sessions":
        return {k: v for k, v in record.items() if k != "fsUrl"}
    return {k: v for k, v in record.items() if k not in LIFTED}


def with_platform(row, platform):
    return dict(row, platform=platform) if platform else row


def lifted(version):
    return {**version, **{k: version["metadata"][k] for k in LIFTED if k in version["metadata"]}}


@pytest.mark.parametrize("world, stops", [("bundles", STOPS), ("windows", STOPS),
                                          ("account", STOPS // 2)])
def test_stops_at_random_instants_add_up_to_exactly_once(request, world, stops, chaos_seed,
                                                         tmp_path):
    world = request.getfixturevalue(world)
    chains = run_chains(world, tmp_path, chaos_seed, [signal.SIGTERM, signal.SIGINT], stops,
                        longest=1.0)
    for chain in chains:
        check_stops(chain, world)


@pytest.mark.parametrize("world, kills", [("bundles", KILLS), ("windows", KILLS),
                                          ("account", KILLS // 2)])
def test_kills_at_random_instants_lose_nothing_and_repeat_only_the_tail(
        request, world, kills, chaos_seed, tmp_path):
    world = request.getfixturevalue(world)
    chains = run_chains(world, tmp_path, chaos_seed + 1, [signal.SIGKILL], kills, longest=1.5)
    for chain in chains:
        check_kills(chain, world)
