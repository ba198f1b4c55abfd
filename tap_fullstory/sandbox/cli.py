"""The `tap-fullstory-sandbox` command: run the sandbox until SIGINT or SIGTERM."""

import argparse
import signal
import sys
from datetime import timezone

import ciso8601

from tap_fullstory.sandbox.account_api import ROLES, SPELLINGS
from tap_fullstory.sandbox.data import SandboxData
from tap_fullstory.sandbox.faults import SPEC_HELP, Faults
from tap_fullstory.sandbox.files import BundleDirectory
from tap_fullstory.sandbox.server import (
    DEFAULT_API_KEY,
    DEFAULT_PAGE_SIZE,
    SandboxServer,
    parse_rate,
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tap-fullstory-sandbox",
        description="A FullStory-compatible server on 127.0.0.1 serving one generated "
                    "account: Data Export bundles, Segment Export (events and "
                    "individuals), users, segments and recording settings with their "
                    "history, all on the one URL it prints.")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY,
                        help="key the server accepts, as Basic or Bearer "
                             "(default %(default)s)")
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
    parser.add_argument("--segment-seconds", type=_seconds, default=None, metavar="L",
                        help="a Segment export operation completes L seconds after it was "
                             "created, however often it is polled, each on its own timer "
                             "(overrides --segment-polls)")
    parser.add_argument("--page-size", type=_count, default=DEFAULT_PAGE_SIZE, metavar="N",
                        help="most items on one page of users, segments or settings "
                             "history, whatever `limit` asks (default %(default)s, so "
                             "listings have several pages; 0: only `limit`)")
    parser.add_argument("--token-spelling", choices=list(SPELLINGS), default="documented",
                        help="documented: segments and history pages answer "
                             "nextPaginationToken (users always next_page_token); "
                             "alternate: next_pagination_token, as FullStory's older "
                             "documents show")
    parser.add_argument("--role", choices=ROLES, default="ADMIN",
                        help="the role GET /me answers for the key (default %(default)s)")
    parser.add_argument("--no-mobile-apps", metavar="STATUS", type=int, nargs="?", const=404,
                        default=None,
                        help="an account without mobile apps: the mobile variants of the "
                             "domain and features settings answer STATUS (default 404; "
                             "FullStory documents none)")
    parser.add_argument("--session-ids", choices=("strings", "numbers"), default="strings",
                        help="how /sessions/v2 writes userId, sessionId and createdTime: as "
                             "strings (FullStory's example) or numbers (its int64 schema)")
    parser.add_argument("--user-order-seed", type=int, default=None, metavar="N",
                        help="list /v2/users in a shuffled order of seed N (FullStory "
                             "documents no order)")
    parser.add_argument("--from-dir", metavar="DIR",
                        help="serve bundles written by tap_fullstory.sandbox.files."
                             "write_bundles instead of generating them")
    return parser


def _count(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _seconds(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def main(argv=None):
    # SIGINT and SIGTERM are held from the first instant (threads inherit that) and taken by
    # sigwait once serving, so a signal at any instant, even during start-up, stops it.
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
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
                           segment_polls=args.segment_polls,
                           segment_seconds=args.segment_seconds, page_size=args.page_size,
                           token_spelling=args.token_spelling, role=args.role)
    if args.no_mobile_apps is not None:
        server.mobile_apps, server.no_mobile_status = False, args.no_mobile_apps
    server.session_ids, server.user_order_seed = args.session_ids, args.user_order_seed
    server.start()
    print(f"tap-fullstory-sandbox listening on {server.url}", flush=True)
    signal.sigwait(stops)
    server.stop()
