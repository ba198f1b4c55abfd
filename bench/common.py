"""What the bench's sections share: cached bundles, the sandbox, timed pipelines, configs.

Figures come from the OS: wall time from a monotonic clock, a child's CPU seconds and
peak RSS from wait4, a live process's CPU seconds from /proc/<pid>/stat.
"""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.files import MANIFEST, write_bundles

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
LOGS = CACHE / "logs"
BIN = Path(sys.executable).parent
VENVS = ROOT / ".venvs"
TAP = str(BIN / "tap-fullstory")
KEY = "bench-key"
FIRST_DAY = "2026-01-01T00:00:00Z"  # the generator's first bundle starts here
DAY = 86400
TICK = os.sysconf("SC_CLK_TCK")


def bundle_dir(name, bundles, events):
    """Generated bundles (cached): a directory the sandbox serves with --from-dir. Its name
    holds the counts, so --quick's smaller bundles never stand in for the full ones."""
    directory = CACHE / f"{name}-{bundles}x{events}"
    if not (directory / MANIFEST).exists():
        print(f"   generating {name}: {bundles} bundle(s) of {events:,} events …", flush=True)
        write_bundles(SandboxData(bundles=bundles, events_per_bundle=events, seed=7),
                      directory)
    return directory


def write_json(path, value):
    path = Path(path)
    path.write_text(json.dumps(value))
    return str(path)


def tap_config(name, url, **settings):
    """A tap config file for the sandbox at `url` (saved as bench/.cache/<name>.json).
    Downloads are not paced unless `settings` say so: the sandbox serves without a limit."""
    config = {"api_key": KEY, "start_date": "2000-01-01T00:00:00Z", "base_url": url,
              "max_downloads_per_minute": 1e6, "spool_dir": str(CACHE), **settings}
    return write_json(CACHE / f"{name}.json", config)


def count_records(path):
    with open(path, "rb") as produced:
        return sum(1 for line in produced if line.startswith(b'{"type":"RECORD"'))


def cpu_seconds(pid, children=False):
    """User + system CPU seconds of a live process (with `children`: also of the children
    it has reaped)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


@dataclass
class Usage:
    """What the OS says one finished child used."""

    cpu: float
    peak_rss_mb: float


@dataclass
class Pipeline:
    """Commands piped one into the next, stdin from a file (or none), stdout to a file;
    each command's stderr to bench/.cache/logs/<name>.<i>.err."""

    commands: list
    stdout: Path
    stdin: Path = None
    name: str = "run"
    seconds: float = None
    usage: list = field(default_factory=list)
    procs: list = field(default_factory=list)

    def errors(self, index):
        return LOGS / f"{self.name}.{index}.err"

    def start(self):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        upstream = open(self.stdin, "rb") if self.stdin else subprocess.DEVNULL
        with open(self.stdout, "wb") as out:
            for index, args in enumerate(self.commands):
                last = index == len(self.commands) - 1
                with open(self.errors(index), "wb") as err:
                    proc = subprocess.Popen(args, stdin=upstream, stderr=err,
                                            stdout=out if last else subprocess.PIPE)
                if upstream is not subprocess.DEVNULL:
                    upstream.close()  # the child has its own copy: EOF reaches the next one
                upstream = proc.stdout
                self.procs.append(proc)
        return self

    def wait(self):
        """Wait for every command (wall time until the last ends); exit the bench if one
        failed, with the end of its stderr."""
        try:
            for proc in self.procs:
                _, status, rusage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                self.usage.append(Usage(rusage.ru_utime + rusage.ru_stime,
                                        rusage.ru_maxrss / 1024))
        except BaseException:  # the bench is stopping: so are its children
            self.kill()
            raise
        self.seconds = time.perf_counter() - self.started
        for index, proc in enumerate(self.procs):
            if proc.returncode != 0:
                tail = self.errors(index).read_text(errors="replace")[-2000:]
                sys.exit(f"{self.name}: {proc.args[0]} failed ({proc.returncode}):\n{tail}")
        return self

    def kill(self):
        """Kill and reap whichever commands are still running."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                proc.wait()

    def stderr(self, index):
        return self.errors(index).read_text(errors="replace")


def measured(*commands, stdout, stdin=None, name="run"):
    """Run commands piped into each other to completion: a finished Pipeline."""
    return Pipeline(list(commands), Path(stdout), stdin, name).start().wait()


class Sandbox:
    """tap-fullstory-sandbox serving a --from-dir directory, until the block ends.
    Without a `rate` it serves downloads without a limit."""

    def __init__(self, directory, bandwidth=None, rate="unlimited", segment_seconds=None):
        args = [str(BIN / "tap-fullstory-sandbox"), "--from-dir", str(directory),
                "--rate", rate, "--api-key", KEY]
        if bandwidth:
            args += ["--bandwidth", f"{bandwidth / 1e6:.3f}"]
        if segment_seconds is not None:
            args += ["--segment-seconds", str(segment_seconds)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]

    def cpu(self):
        """CPU seconds the sandbox has used so far."""
        return cpu_seconds(self.proc.pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()


class Report:
    """Tables printed as soon as they are measured, and all of them again at the end."""

    def __init__(self):
        self.blocks = []

    def add(self, title, lines):
        block = "\n".join([f"### {title}", "", *lines])
        self.blocks.append(block)
        print("\n" + block + "\n", flush=True)

    def dump(self):
        print("\n" + "=" * 30 + " all results " + "=" * 30)
        print("\n\n".join(self.blocks))
