"""Shared fakes: the sandbox on port 0, CLI runners and message helpers."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ciso8601 import parse_rfc3339

from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.faults import Faults
from tap_fullstory.sandbox.server import SandboxServer
from tap_fullstory.streams import EVENT_FIELDS as IDENTITY_FIELDS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TAP = str(BIN / "tap-fullstory")
SANDBOX = str(BIN / "tap-fullstory-sandbox")
API_KEY = "test-key-5f3a9c0e7b1d"  # searched for in every output the tests capture
CHAOS_SEED = int(os.environ.get("TAP_FULLSTORY_CHAOS_SEED")
                 or random.SystemRandom().randrange(2**32))


def pytest_report_header(config):
    return (f"chaos seed: {CHAOS_SEED} (replay with "
            f"TAP_FULLSTORY_CHAOS_SEED={CHAOS_SEED} make test)")


@pytest.fixture
def chaos_seed():
    """The seed the random stop and kill instants come from (printed in the header)."""
    return CHAOS_SEED


def tool(name, venv):
    """A command installed in one of the per-tool virtualenvs `make test` creates."""
    venvs = Path(os.environ.get("TAP_FULLSTORY_VENVS", ROOT / ".venvs"))
    path = venvs / venv / "bin" / name
    assert path.exists(), f"{path} is missing: run the tests with `make test`"
    return str(path)


@pytest.fixture
def sandbox():
    """Start sandboxes on free loopback ports: sandbox(bundles=…, rate=…, …)."""
    servers = []

    def start(rate=(0, 1.0), api_key=API_KEY, faults="", bytes_per_second=None, **data):
        data.setdefault("bundles", 25)
        data.setdefault("events_per_bundle", 20)
        server = SandboxServer(SandboxData(**data), api_key=api_key, rate=rate,
                               faults=Faults.parse(faults),
                               bytes_per_second=bytes_per_second).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(bytes): a directory on a tmpfs of that size, unmounted afterwards."""
    mounts = []

    def mount(size):
        if os.geteuid() != 0:
            pytest.fail("mounting a small tmpfs (a full disk, for real) needs root; CI runs "
                        "as root: run `make test` as root")
        path = tmp_path / f"disk-{len(mounts)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True)
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def write_config(tmp_path):
    def write(url, **settings):
        # Pacing is off unless a test asks for it: the sandbox limits only when told to.
        # Spool files stay under tmp_path, so a killed tap litters nothing else.
        spool = tmp_path / "spool"
        spool.mkdir(exist_ok=True)
        config = {"api_key": API_KEY, "start_date": "2026-01-01T00:00:00Z", "base_url": url,
                  "max_downloads_per_minute": 60000, "retry_backoff_seconds": 0.05,
                  "spool_dir": str(spool), **settings}
        path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
        path.write_text(json.dumps(config))
        return str(path)
    return write


def run_tap(*args, timeout=120):
    """Run the real `tap-fullstory` console script; the key must not appear anywhere."""
    result = subprocess.run([TAP, *args], capture_output=True, timeout=timeout)
    for stream in (result.stdout, result.stderr):
        assert API_KEY.encode() not in stream, "the API key leaked into the tap's output"
    return result


def spool_files_held(pid, spool_dir):
    """The spool files process `pid` holds open in `spool_dir`: anonymous ones show as
    "<dir>/#<inode> (deleted)" in /proc, named ones by their name."""
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed while we looked
        if target.startswith(str(spool_dir) + os.sep):
            held.append(target)
    return held


def messages(stdout):
    """Every Singer message in a tap's stdout (bytes), in order."""
    return [json.loads(line) for line in stdout.decode("utf-8").splitlines() if line]


def schema_of(msgs, stream="events"):
    """The SCHEMA message a run wrote for `stream`."""
    return next(m for m in msgs if m["type"] == "SCHEMA" and m["stream"] == stream)


def records(msgs):
    return [m["record"] for m in msgs if m["type"] == "RECORD"]


def states(msgs):
    return [m["value"] for m in msgs if m["type"] == "STATE"]


def identity(record):
    return record["ExportBundleId"], record["ExportBundleRow"]


def original_event(record):
    """The bundle event a record was shaped from: declared fields plus CustomVars."""
    event = {k: v for k, v in record.items()
             if k not in IDENTITY_FIELDS and k != "CustomVars"}
    event.update(record.get("CustomVars") or {})
    return event


def expected_events(data, since=None):
    """{(bundle id, row): event} for every event `data` serves, optionally from `since`."""
    expected = {}
    for index, export in enumerate(data.exports()):
        for row, event in enumerate(data.events(index)):
            if since is None or parse_rfc3339(event["EventStart"]) >= parse_rfc3339(since):
                expected[(export["Id"], row)] = event
    return expected


def resume_is_exactly_once(output, config, tmp_path, data):
    """Resume from the last STATE in `output` (a run's stdout that ended with a STATE):
    together the two runs emit every event of `data` exactly once."""
    assert output.endswith(b"\n")  # no line was cut
    msgs = messages(output)
    assert msgs[-1]["type"] == "STATE", "the last line out must be a STATE"
    state = tmp_path / "resume-state.json"
    state.write_text(json.dumps(msgs[-1]["value"]))
    resumed = messages(run_tap("--config", config, "--state", str(state)).stdout)
    ids = [identity(r) for r in records(msgs) + records(resumed)]
    assert len(ids) == len(set(ids)), "an event was emitted twice"
    assert set(ids) == set(expected_events(data))
    return msgs, resumed


def run_and_kill(config, should_kill, tmp_path, state=None, more=()):
    """Run the tap (`more` are further arguments, such as a catalog); SIGKILL it as soon as
    `should_kill(message)` is true.

    Returns every message it wrote (a line cut by the kill is dropped)."""
    args = [TAP, "--config", config, *more] + (["--state", str(state)] if state else [])
    with open(tmp_path / "killed-stderr.txt", "wb") as stderr:
        # A one-page pipe keeps the tap at most a few lines ahead of this reader, so the
        # kill lands where the test means it to, not after the tap has finished.
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, pipesize=4096)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.endswith(b"\n") and should_kill(json.loads(line)):
                proc.send_signal(signal.SIGKILL)
                break
        lines.extend(proc.stdout)  # whatever it wrote before it died
        proc.wait(timeout=60)
    assert API_KEY.encode() not in (tmp_path / "killed-stderr.txt").read_bytes()
    complete = b"".join(lines)
    return messages(complete[:complete.rfind(b"\n") + 1]), proc.returncode


def nth_state(n, predicate=lambda value: True):
    seen = []

    def should_kill(message):
        if message["type"] == "STATE" and predicate(message["value"]):
            seen.append(message)
        return len(seen) >= n
    return should_kill


def in_progress(value):
    return "in_progress" in value["bookmarks"].get("events", {})


def set_md(stream, breadcrumb, key, value):
    """Set a metadata key on one breadcrumb of a catalog stream."""
    for entry in stream["metadata"]:
        if entry["breadcrumb"] == breadcrumb:
            entry["metadata"][key] = value


def select(stream, fields=None):
    """Select the stream, and of its fields only `fields` (every field when None)."""
    set_md(stream, [], "selected", True)
    for name in stream["schema"]["properties"]:
        set_md(stream, ["properties", name], "selected", fields is None or name in fields)


def edited_catalog(tmp_path, config, edit, stream="events"):
    """The catalog --discover prints, with `edit(entry)` applied to `stream`'s entry, saved;
    its path."""
    discovered = json.loads(run_tap("--config", config, "--discover").stdout)
    edit(next(s for s in discovered["streams"] if s["tap_stream_id"] == stream))
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(discovered))
    return str(path)


def catalog_selecting(tmp_path, config, names=None):
    """The catalog --discover prints with the streams `names` selected (every stream when
    None), saved; its path."""
    discovered = json.loads(run_tap("--config", config, "--discover").stdout)
    for stream in discovered["streams"]:
        if names is None or stream["tap_stream_id"] in names:
            set_md(stream, [], "selected", True)
    path = tmp_path / f"catalog-{len(list(tmp_path.glob('catalog-*')))}.json"
    path.write_text(json.dumps(discovered))
    return str(path)
