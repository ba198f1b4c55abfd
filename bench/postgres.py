"""A throwaway PostgreSQL 15 cluster for the bench, started as tests/test_postgres.py starts
one (initdb + pg_ctl on a loopback port, as the postgres user when root), with fsync,
synchronous_commit and full_page_writes off: the bench measures loading, not the disk.
"""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from common import cpu_seconds

PG_BIN = Path(os.environ.get("TAP_FULLSTORY_PG_BIN", "/usr/lib/postgresql/15/bin"))
DURABILITY_OFF = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgreSQL:
    """The cluster while the block runs; stopped (immediately) and deleted however it ends."""

    def __enter__(self):
        if not (PG_BIN / "initdb").exists():
            raise SystemExit(f"PostgreSQL server binaries missing in {PG_BIN}")
        self.root = Path(tempfile.mkdtemp(prefix="tap-fullstory-bench-pg-"))
        self.as_postgres = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
            shutil.chown(self.root, "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = free_port()
        try:
            self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8")
            self._pg("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "server.log"),
                     "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                     f"{DURABILITY_OFF}", "start")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if (self.data / "postmaster.pid").exists():
            subprocess.run(self.as_postgres + [str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                                               "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, program, *args):
        subprocess.run(self.as_postgres + [str(PG_BIN / program), *args], check=True,
                       capture_output=True)

    @property
    def connection(self):
        """Host, port, user, password and database, as meltanolabs-target-postgres names
        them (trust authentication: any password is accepted)."""
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres",
                "password": "bench", "database": "postgres"}

    def sql(self, query):
        """Run SQL with psql; its unaligned, tuples-only output."""
        result = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                 "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                                 "-Atc", query], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"psql failed on {query!r}: {result.stderr.strip()}")
        return result.stdout.strip()

    def reset(self, schema):
        self.sql(f"drop schema if exists {schema} cascade; create schema {schema}")

    def cpu(self):
        """CPU seconds the server has used so far: the postmaster, the backends it has
        reaped, and those still alive."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        total = cpu_seconds(pid, children=True)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    total += cpu_seconds(stat.parent.name, children=True)
            except (OSError, ValueError):
                pass  # a backend that ended while we looked: its time is in cutime now
        return total
