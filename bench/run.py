"""`make bench`: what users wait for, as ratios against floors measured in the same run.

(a) the tap alone against bench/floor.py, and decoding with unusual events (decode.py);
(b) the tap piped into real targets against each target fed from a file (pipelines.py);
(c) a backfill in 1 and 2 partitions at a shared download limit (partitions.py);
(d) Segment Export with 1 and 3 exports in flight (exports.py).
Bundles are generated with the sandbox's generator once and cached in bench/.cache. Each
table is printed as soon as it is measured, and all of them again at the end.
"""

import argparse
import signal
import sys
import time

import alone
import decode
import exports
import partitions
import pipelines
from common import CACHE, Report
from postgres import PostgreSQL


def stop_cleanly(signum, frame):
    raise SystemExit(128 + signum)  # unwinds the with-blocks: servers stop, the cluster too


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the events and fewer bundles and windows, for trying "
                             "the script out")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop_cleanly)
    CACHE.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.perf_counter()
    print("(a) The tap alone (bundles are generated once, cached in bench/.cache) …",
          flush=True)
    alone.run(report, args.quick)
    report.add("Decoding with one unusual event (CPU time, best of 3)", decode.run(args.quick))
    print("(b) Pipelines into real targets …", flush=True)
    with PostgreSQL() as pg:
        problems = pipelines.run(report, args.quick, pg)
        print("(c) Partitioned backfill …", flush=True)
        partitions.run(report, args.quick, pg)
    print("(d) Segment Export exports in flight …", flush=True)
    exports.run(report, args.quick)
    report.dump()
    print(f"\n(the whole bench: {time.perf_counter() - started:.0f} s)")
    if problems:
        sys.exit("A target loaded a different number of rows than the tap sent: see "
                 "'Row count mismatches'.")


if __name__ == "__main__":
    main()
