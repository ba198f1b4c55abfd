"""(d) Segment Export exports in flight: W daily windows against a sandbox whose export
operations complete L seconds after creation (each on its own timer), the tap with
max_exports_in_flight K=1 and K=3 and retry_backoff_seconds 0.1 (fine-grained polling).

The aim: wall ≤ 1.25 × (W×L/K + t₀), where t₀, the time to download and emit, is measured
as a run with L=0 and K=W (nothing to wait for, as if K were unlimited).
"""

from common import (
    CACHE,
    DAY,
    FIRST_DAY,
    TAP,
    Sandbox,
    bundle_dir,
    count_records,
    measured,
    tap_config,
)
from partitions import moment, unix

EVENTS = 1_000  # per window: small, so waiting for exports is what there is to measure
SECONDS = 2  # L
BACKOFF = 0.1  # retry_backoff_seconds: the first wait between polls


def export_run(sandbox, windows, in_flight):
    """Wall seconds of one segment_export sync of `windows` daily windows."""
    name = f"exports-k{in_flight}"
    config = tap_config(name, sandbox.url, source="segment_export", api_base_url=sandbox.url,
                        start_date=FIRST_DAY, end_date=moment(unix(FIRST_DAY) + windows * DAY),
                        retry_backoff_seconds=BACKOFF, max_exports_in_flight=in_flight)
    out = CACHE / f"{name}.jsonl"
    run = measured([TAP, "--config", config], stdout=out, name=name)
    if count_records(out) != windows * EVENTS:
        raise SystemExit(f"{name}: {count_records(out):,} RECORDs, expected "
                         f"{windows * EVENTS:,}")
    return run.seconds


def run(report, quick):
    windows = 3 if quick else 6
    directory = bundle_dir("windows", windows, EVENTS)
    with Sandbox(directory, segment_seconds=0) as sandbox:
        base = export_run(sandbox, windows, windows)
    lines = ["| L s | K | wall s | W×L s | W×L/K s | aim: 1.25 × (W×L/K + t₀) s "
             "| wall ÷ (W×L/K + t₀) | within the aim |",
             "|---|---|---|---|---|---|---|---|",
             f"| 0 | {windows} (t₀) | {base:.2f} | 0 | 0 | {1.25 * base:.2f} | 1.00× | — |"]
    with Sandbox(directory, segment_seconds=SECONDS) as sandbox:
        for in_flight in (1, 3):
            seconds = export_run(sandbox, windows, in_flight)
            ideal = windows * SECONDS / in_flight
            lines.append(f"| {SECONDS} | {in_flight} | {seconds:.2f} | {windows * SECONDS} "
                         f"| {ideal:.1f} | {1.25 * (ideal + base):.2f} "
                         f"| {seconds / (ideal + base):.2f}× "
                         f"| {'yes' if seconds <= 1.25 * (ideal + base) else 'no'} |")
            print(lines[-1], flush=True)
    lines += ["", f"W={windows} daily windows of {EVENTS:,} events, L={SECONDS} s, "
              f"retry_backoff_seconds {BACKOFF:g}; t₀ is the L=0 run. The tap polls when an "
              "export's estimatePctComplete says it will be done, so it sees one finish "
              "within a poll of it."]
    report.add("Segment Export: exports in flight", lines)
