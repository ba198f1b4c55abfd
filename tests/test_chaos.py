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

import pytest
from test_segment import window_events

from conftest import (
    API_KEY,
    TAP,
    expected_events,
    identity,
    messages,
    original_event,
    records,
    states,
)

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


def run_once(config, state, signum, delay, rng, tmp_path):
    """One run of the tap from `state`, sent `signum` `delay` seconds after its handlers are
    in; (stdout, exit code, stderr)."""
    args = [TAP, "--config", config] + (["--state", str(state)] if state else [])
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

    def __init__(self, config, spool, seed, tmp_path):
        self.config, self.spool, self.tmp_path = config, spool, tmp_path
        self.rng = random.Random(seed)
        self.seed = seed
        self.runs = []  # (signal, delay, messages of the run)
        self.state = None

    def run(self, signum, longest):
        delay = self.rng.uniform(0, longest)
        output, code, stderr = run_once(self.config, self.state, signum, delay, self.rng,
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
        if states(msgs):
            self.state = self.tmp_path / "chaos-state.json"
            self.state.write_text(json.dumps(states(msgs)[-1]))
        return code == 0


def run_chains(config, spool, tmp_path, seed, signals, count, longest, final):
    """Chains of runs until `count` runs were signalled; every chain runs to the end.
    Returns the finished chains."""
    rng = random.Random(seed)
    chains, signalled = [], 0
    while signalled < count:
        chain = Chain(config, spool, rng.randrange(2**32), tmp_path)
        while not chain.run(rng.choice(signals), longest):
            signalled += 1
            assert len(chain.runs) < MAX_RUNS, f"chain (seed {chain.seed}) never finished"
        assert states(chain.runs[-1][2])[-1] == final, \
            f"chain (seed {chain.seed}) ended on another final state"
        chains.append(chain)
    return chains


def check_stops(chain, expected):
    """Clean stops: every event exactly once, field for field."""
    got = [r for _, _, msgs in chain.runs for r in records(msgs)]
    ids = [identity(r) for r in got]
    repeated = len(ids) - len(set(ids))
    assert repeated == 0, f"chain (seed {chain.seed}): {repeated} event(s) sent twice"
    assert set(ids) == set(expected), f"chain (seed {chain.seed}): events lost"
    assert all(original_event(r) == expected[identity(r)] for r in got)


def check_kills(chain, expected):
    """Kills: nothing lost; nothing a STATE covered comes again. Each run resumes from the
    last STATE the chain printed, which covers every row written before a STATE so far;
    only rows written after a run's last STATE may come again."""
    out, covered_so_far = set(), set()
    for _, where, msgs in chain.runs:
        last = max((i for i, m in enumerate(msgs) if m["type"] == "STATE"), default=-1)
        ids = [identity(r) for r in records(msgs)]
        again = set(ids) & covered_so_far
        assert not again, f"{where}: resent {len(again)} event(s) a STATE had covered"
        covered = [identity(r) for r in records(msgs[:last + 1])]
        assert len(set(covered)) == len(covered), f"{where}: an event twice in one run"
        covered_so_far |= set(covered)
        out |= set(ids)
        assert all(original_event(r) == expected[identity(r)] for r in records(msgs))
    assert out == set(expected), f"chain (seed {chain.seed}): events lost"


@pytest.fixture
def bundles(sandbox, write_config, tmp_path):
    """Data Export with everything that takes time: a download limit the tap's pacing
    overruns (so 429 waits), pacing waits, bandwidth, a 5xx now and then."""
    server = sandbox(bundles=12, events_per_bundle=400, rate=(6, 1.0),
                     bytes_per_second=4_000_000, faults="5xx-every=9")
    config = write_config(server.url, checkpoint_every=150, max_downloads_per_minute=900)
    final = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-13T00:00:00.000000Z"}},
             "currently_syncing": None}
    return config, tmp_path / "spool", expected_events(server.data), final


@pytest.fixture
def windows(sandbox, write_config, tmp_path):
    """Segment Export: exports that take polls, downloads, NDJSON windows."""
    server = sandbox(bundles=3, events_per_bundle=1200, faults="5xx-every=11")
    config = write_config(server.url, source="segment_export", start_date="2026-01-01T00:00:00Z",
                          end_date="2026-01-04T00:00:00Z", export_window_hours=6,
                          checkpoint_every=120)
    final = {"bookmarks": {"events": {"ExportBundleStop": "2026-01-04T00:00:00.000000Z"}},
             "currently_syncing": None}
    return config, tmp_path / "spool", window_events(server.data), final


@pytest.mark.parametrize("world", ["bundles", "windows"])
def test_stops_at_random_instants_add_up_to_exactly_once(request, world, chaos_seed, tmp_path):
    config, spool, expected, final = request.getfixturevalue(world)
    chains = run_chains(config, spool, tmp_path, chaos_seed, [signal.SIGTERM, signal.SIGINT],
                        STOPS, longest=1.0, final=final)
    for chain in chains:
        check_stops(chain, expected)


@pytest.mark.parametrize("world", ["bundles", "windows"])
def test_kills_at_random_instants_lose_nothing_and_repeat_only_the_tail(
        request, world, chaos_seed, tmp_path):
    config, spool, expected, final = request.getfixturevalue(world)
    chains = run_chains(config, spool, tmp_path, chaos_seed + 1, [signal.SIGKILL], KILLS,
                        longest=1.5, final=final)
    for chain in chains:
        check_kills(chain, expected)
