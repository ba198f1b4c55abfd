"""Prints what `make demo` did: the catalog, the two syncs and the documented session."""

import json
import sys
from pathlib import Path

from tap_fullstory.sandbox.data import DOC_USER_ID


def catalog(path):
    stream = json.loads(Path(path).read_text())["streams"][0]
    fields = stream["schema"]["properties"]
    automatic = [m["breadcrumb"][1] for m in stream["metadata"]
                 if m["breadcrumb"] and m["metadata"]["inclusion"] == "automatic"]
    print(f"   stream {stream['tap_stream_id']}: {len(fields)} fields, "
          f"key_properties {stream['key_properties']}, "
          f"replication key {stream['replication_key']} (automatic: {', '.join(automatic)})")


def read_records(directory):
    files = sorted(Path(directory).glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
    return files, rows


def report(out):
    out = Path(out)
    files, rows = read_records(out / "run-1")
    _, rows_2 = read_records(out / "run-2")
    state_1 = json.loads((out / "state-1.json").read_text())
    state_2 = json.loads((out / "state-2.json").read_text())
    pairs = {(r["ExportBundleId"], r["ExportBundleRow"]) for r in rows}
    print("== Summary")
    print(f"   sync 1: {len({r['ExportBundleId'] for r in rows})} bundles, {len(rows)} events "
          f"({len(pairs)} distinct identity pairs)")
    for f in files:
        print(f"   output: {f} ({f.stat().st_size} bytes)")
    print(f"   final state: {json.dumps(state_1)}")
    print(f"   sync 2: {len(rows_2)} new events; state "
          f"{'unchanged' if state_2 == state_1 else 'CHANGED: ' + json.dumps(state_2)}")
    if len(pairs) != len(rows) or rows_2 or state_2 != state_1:
        sys.exit("demo: the syncs did not replicate every event exactly once")

    session = sorted((r for r in rows if r.get("UserId") == DOC_USER_ID),
                     key=lambda r: r["EventStart"])
    if not session:
        sys.exit("demo: the documented session is missing from the output")
    print()
    print(f"== Session timeline of {session[0]['UserDisplayName']} "
          f"(UserId {DOC_USER_ID}), read back from {files[0].name}")
    for step, r in enumerate(session, 1):
        what = r["EventType"]
        target = f' "{r["EventTargetText"]}"' if r.get("EventTargetText") else ""
        print(f"   {step}. {r['EventStart']}  {what:<8}{target} on {r['PageUrl']}")


if __name__ == "__main__":
    {"catalog": catalog, "report": report}[sys.argv[1]](*sys.argv[2:])
