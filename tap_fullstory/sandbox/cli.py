"""The `tap-fullstory-sandbox` command: run the sandbox until SIGINT or SIGTERM."""

import argparse
import signal
import sys
from datetime import timezone

import ciso8601

from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.faults import SPEC_HELP, Faults
from tap_fullstory.sandbox.files import BundleDirectory
from tap_fullstory.sandbox.server import DEFAULT_API_KEY, SandboxServer, parse_rate


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tap-fullstory-sandbox",
        description="A FullStory-compatible Data Export server on 127.0.0.1 serving "
                    "generated bundles.")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY,
                        help="key the server accepts (default %(default)s)")
    parser.add_argument("--bundles", type=int, default=30, help="bundles to serve")
    parser.add_argument("--events-per-bundle", type=int, default=200)
    parser.add_argument("--start", default="2026-01-01T00:00:00Z",
                        help="Start of the first bundle (RFC 3339)")
    parser.add_argument("--period-hours", type=int, default=24, help="bundle period")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed")
    parser.add_argument("--rate", default="2/60",
                        help="download limit N/SECONDS, answered with 429 + Retry-After "
                             "(default 2/60, FullStory's; 'unlimited' turns it off)")
    parser.add_argument("--faults", default="", help=SPEC_HELP)
    parser.add_argument("--bandwidth", type=float, default=None, metavar="MB_PER_S",
                        help="send each bundle body at most this fast (MB/s)")
    parser.add_argument("--segment-polls", type=int, default=2, metavar="N",
                        help="PENDING answers before a Segment export operation completes")
    parser.add_argument("--from-dir", metavar="DIR",
                        help="serve bundles written by tap_fullstory.sandbox.files."
                             "write_bundles instead of generating them")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        rate = parse_rate(args.rate)
        faults = Faults.parse(args.faults)
        start = ciso8601.parse_rfc3339(args.start).astimezone(timezone.utc)
    except ValueError as exc:
        sys.exit(f"tap-fullstory-sandbox: {exc}")
    if args.from_dir:
        data = BundleDirectory(args.from_dir)
    else:
        data = SandboxData(bundles=args.bundles, events_per_bundle=args.events_per_bundle,
                           start=start, period_hours=args.period_hours, seed=args.seed)
    bandwidth = args.bandwidth * 1_000_000 if args.bandwidth else None
    server = SandboxServer(data, api_key=args.api_key, rate=rate, port=args.port,
                           faults=faults, bytes_per_second=bandwidth,
                           segment_polls=args.segment_polls)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    print(f"tap-fullstory-sandbox listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
