"""The `tap-fullstory` command: parse arguments, run discovery or a sync, report errors."""

import argparse
import json
import logging
import os
import sys

import orjson
import singer

from tap_fullstory import __version__, account_api, redaction
from tap_fullstory.access import verdict
from tap_fullstory.catalog import default_catalog, load_catalog, selected_streams
from tap_fullstory.config import SETTINGS, load_config_file, parse_config
from tap_fullstory.discover import discover
from tap_fullstory.emit import MessageWriter
from tap_fullstory.errors import ConfigError, TapError
from tap_fullstory.feed import in_background
from tap_fullstory.file_stream import make_source
from tap_fullstory.json_file import read_json_file
from tap_fullstory.stopping import STOP, Stopped
from tap_fullstory.streams import STREAMS
from tap_fullstory.sync import sync
from tap_fullstory.transport import SignedUrlFilter, Transport

LOGGER = logging.getLogger(__name__)
CAPABILITIES = ["catalog", "discover", "properties", "state", "about", "test"]


def about():
    """What `--about` prints: name, version, capabilities, streams and every setting."""
    return {
        "name": "tap-fullstory",
        "version": __version__,
        "description": "Singer tap for a FullStory account: events (Data Export bundles or "
                       "Segment Export), individuals, users, segments and recording "
                       "settings with their history. Data Export (source data_export, the "
                       "default, what Stitch's FullStory integration reads) is deprecated "
                       "by FullStory, with no sunset date; Segment Export (source "
                       "segment_export, and the individuals stream) is a paid add-on "
                       "(Enterprise or Advanced). Switching source keeps the state: the "
                       "bookmark is a moment. Individuals' aggregates (NumSessions, "
                       "TotalSec, ...) are lifetime values.",
        "capabilities": CAPABILITIES,
        "streams": [{"name": s.name, "api": _by_source(s.api),
                     "key_properties": list(s.key),
                     "replication_method": s.replication,
                     "replication_key": s.replication_key, "row": s.row,
                     "permission": _by_source(s.permission)} for s in STREAMS],
        "settings": [{"name": s.name, "type": s.kind, "required": s.required,
                      "secret": s.secret, "default": s.default,
                      "description": s.description} for s in SETTINGS],
    }


def _by_source(value):
    """A declaration that depends on `source`, as one line."""
    if isinstance(value, dict):
        return "; ".join(f"{text} ({source})" for source, text in value.items())
    return str(value)


def stream_table():
    """The README's stream table, from the declarations (`--about --format markdown`)."""
    lines = ["| stream | API | key | replication | a row is | the key needs |",
             "|---|---|---|---|---|---|"]
    for s in about()["streams"]:
        key = ", ".join(f"`{k}`" for k in s["key_properties"]) or (
            "none (one current object)" if s["replication_method"] == "FULL_TABLE"
            else "none (append-only)")
        replication = s["replication_method"] + (f" on `{s['replication_key']}`"
                                                 if s["replication_key"] else "")
        lines.append(f"| `{s['name']}` | {s['api']} | {key} | {replication} | {s['row']} "
                     f"| {s['permission']} |")
    return "\n".join(lines) + "\n"


def about_markdown():
    """`--about --format markdown`: the stream and settings tables the README carries."""
    info = about()
    lines = [f"# {info['name']} {info['version']}", "", info["description"], "",
             "Capabilities: " + ", ".join(info["capabilities"]), "", stream_table(),
             "| setting | type | required | default | description |",
             "|---|---|---|---|---|"]
    for s in info["settings"]:
        default = "" if s["default"] is None else f"`{s['default']}`"
        lines.append(f"| `{s['name']}` | {s['type']} | {'yes' if s['required'] else 'no'} "
                     f"| {default} | {s['description']} |")
    return "\n".join(lines) + "\n"


def connection_report(config, catalog):
    """`--test`: who the key belongs to (GET /me), then a line per selected stream: whether
    the key's role can read it, and for events what there is to sync."""
    transport = Transport(config)
    me = in_background(lambda: account_api.whoami(transport, config.api_base_url), "test")
    role = me.get("role")
    owner = me.get("email") or "a legacy org key (no email)"
    lines = [f"OK: {config.api_base_url} accepted the API key: {_quoted(owner)} in org "
             f"{_quoted(me.get('orgId'))}, role {_quoted(role)}."]
    chosen, _ = selected_streams(catalog)
    for stream, _ in chosen:
        api, needs = stream.access(config.source)
        line = f"  {stream.name} ({api}): {verdict(needs, role)}"
        if stream.name == "events":
            source = make_source(stream, transport, config)
            found = in_background(lambda s=source: s.check(int(config.start_date.timestamp())),
                                  "test")
            line += f"; {found}"
        lines.append(line + ".")
    if not chosen:
        lines.append("  No stream is selected (pass --catalog to check the ones you sync).")
    return "\n".join(lines)


def _quoted(value):
    """A value from FullStory's answer, safe on one line."""
    return " ".join(str(value).split())[:200] if value not in (None, "") else "unknown"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tap-fullstory",
        description="Replicate a FullStory account as Singer messages on stdout.")
    parser.add_argument("-c", "--config", help="config JSON file (see sample_config.json)")
    parser.add_argument("-s", "--state", help="state JSON file: the last STATE the tap printed")
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--catalog", help="catalog JSON file selecting streams and fields")
    selection.add_argument("-p", "--properties", help="legacy name for --catalog")
    parser.add_argument("-d", "--discover", action="store_true",
                        help="print the catalog and exit")
    parser.add_argument("--test", action="store_true",
                        help="check the key (whose it is and its role, from GET /me on "
                             "api_base_url), say for each selected stream whether that role "
                             "can read it, count the bundles or windows there are to sync, "
                             "and exit")
    parser.add_argument("--about", action="store_true",
                        help="print name, version, capabilities and settings")
    parser.add_argument("--format", choices=["json", "markdown"], default="json",
                        help="format of --about (default json)")
    parser.add_argument("--version", action="version", version=f"tap-fullstory {__version__}")
    return parser


def _read_state(path):
    return read_json_file(f"State file {path}", path, "; omit --state to start from "
                          "start_date.", "; pass the last STATE value the tap printed.",
                          if_empty={})


def _set_log_level():
    """TAP_FULLSTORY_LOG_LEVEL=DEBUG shows HTTP details (never the key) on stderr."""
    level = os.environ.get("TAP_FULLSTORY_LOG_LEVEL", "").strip().upper()
    if not level:
        return
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"TAP_FULLSTORY_LOG_LEVEL {level!r} must be DEBUG, INFO, WARNING, "
                          "ERROR or CRITICAL.")
    for name in ("tap_fullstory", "urllib3"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("urllib3.connectionpool").addFilter(SignedUrlFilter())


def run(args):
    _set_log_level()
    if args.about:
        text = about_markdown() if args.format == "markdown" else json.dumps(about(), indent=2)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    if not args.config:
        raise ConfigError("--config is required: pass a JSON file with api_key and "
                          "start_date (see sample_config.json).")
    config = parse_config(load_config_file(args.config))
    if args.discover:
        sys.stdout.buffer.write(orjson.dumps(discover().to_dict(), option=orjson.OPT_INDENT_2)
                                + b"\n")
        return 0
    catalog_path = args.catalog or args.properties
    if catalog_path:
        catalog = load_catalog(catalog_path, "--catalog" if args.catalog else "--properties")
    else:
        catalog = default_catalog()
    if args.test:
        sys.stdout.write(connection_report(config, catalog) + "\n")
        return 0
    state = _read_state(args.state) if args.state else {}
    args.synced = True  # from here on a stop ends on a STATE that resumes
    sync(Transport(config), config, catalog, state, MessageWriter())
    return 0


def main(argv=None):
    """Run the command line (launch.py installs the stop handlers first) and exit."""
    code, args = 2, None
    try:
        args = build_parser().parse_args(argv)
        singer.get_logger()  # installs singer's stderr handler and "LEVEL message" format
        redaction.install()
        code = run(args)
        STOP.check()  # a stop asked while the final STATE was written still counts
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    except TapError as exc:
        LOGGER.critical("%s", exc)
        code = exc.exit_code
    except Stopped as exc:
        if getattr(args, "synced", False):
            LOGGER.critical("Stopped by %s; the last STATE printed resumes exactly where this "
                            "run stopped.", exc.name)
        else:
            LOGGER.critical("Stopped by %s.", exc.name)
        code = exc.exit_code
    except BrokenPipeError:
        sys.stderr.write("CRITICAL stdout was closed by the target; the last STATE it "
                         "received resumes the sync.\n")
        code = 1
    except Exception as exc:  # no rule foresaw it: still one line, never a traceback
        LOGGER.debug("The unforeseen fault:", exc_info=True)
        LOGGER.critical("tap-fullstory stopped on a fault it does not know (%s: %s). The last "
                        "STATE printed resumes the sync; please report this line (run with "
                        "TAP_FULLSTORY_LOG_LEVEL=DEBUG for the details).",
                        type(exc).__name__, " ".join(str(exc).split())[:200])
        code = 1
    finish(code)


def finish(code):
    """Exit without the interpreter's teardown: background threads may still be inside a
    download or a wait, and what they hold (sockets, anonymous spool files) is the
    kernel's to free. Everything this run has to say is flushed first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # the target closed stdout: nothing more can be delivered
    os._exit(code)
