"""Prints what `make demo` did: the catalog, the two syncs, a line per stream, the
documented session and the person behind it."""

import json
import sys
from pathlib import Path

from tap_fullstory.sandbox.data import DOC_USER_ID


def catalog(discovered, selected):
    """Summarise the discovered catalog and write a copy that selects every stream."""
    streams = json.loads(Path(discovered).read_text())["streams"]
    for stream in streams:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    Path(selected).write_text(json.dumps({"streams": streams}))
    for stream in streams:
        replication = stream.get("replication_method")
        key = ", ".join(stream["key_properties"]) or (
            "none, one object replaced every run" if replication == "FULL_TABLE"
            else "none, append-only")
        if stream.get("replication_key"):
            replication += f" on {stream['replication_key']}"
        print(f"   {stream['tap_stream_id']:<27} {len(stream['schema']['properties']):>3} "
              f"fields, key {key}; {replication}")


def read_records(directory):
    """{stream: [records]} from target-jsonl's files (named <stream>-<time>.jsonl)."""
    found = {}
    for path in sorted(Path(directory).glob("*.jsonl")):
        stream = path.name.rsplit("-", 1)[0]
        found.setdefault(stream, []).extend(
            json.loads(line) for line in path.read_text("utf-8").splitlines() if line)
    return found


def report(out):
    out = Path(out)
    first, second = read_records(out / "run-1"), read_records(out / "run-2")
    state_1 = json.loads((out / "state-1.json").read_text())
    state_2 = json.loads((out / "state-2.json").read_text())
    streams = json.loads((out / "catalog.json").read_text())["streams"]
    print("== Summary, one line per stream (sync 1, then sync 2 from its state)")
    problems = []
    for stream in streams:
        name, keys = stream["tap_stream_id"], stream["key_properties"]
        rows, again = first.get(name, []), second.get(name, [])
        full_table = stream.get("replication_method") == "FULL_TABLE"
        if keys:
            distinct = len({tuple(json.dumps(r.get(k)) for k in keys) for r in rows})
            unique = f"{distinct:,} distinct {'+'.join(keys)}"
        else:
            unique = "append-only" if not full_table else "one current object"
        later = (f"re-sent whole ({len(again)}): FULL_TABLE, a new table version"
                 if full_table else f"{len(again)} new")
        print(f"   {name:<27} {len(rows):>6,} row(s), {unique}; sync 2: {later}")
        if not rows:
            problems.append(f"{name} has no rows")
        if not full_table and again:
            problems.append(f"{name} sent rows again")
    events = first.get("events", [])
    pairs = {(r["ExportBundleId"], r["ExportBundleRow"]) for r in events}
    if len(pairs) != len(events):
        problems.append("an event came twice")
    print(f"   final state: {json.dumps(state_1)}")
    print(f"   sync 2 state: {'unchanged' if state_2 == state_1 else 'CHANGED'}")
    if state_2 != state_1:
        problems.append("the second sync changed the state")
    if problems:
        sys.exit("demo: " + "; ".join(problems))

    session = sorted((r for r in events if r.get("UserId") == DOC_USER_ID),
                     key=lambda r: r["EventStart"])
    if not session:
        sys.exit("demo: the documented session is missing from the output")
    print()
    print(f"== Session timeline of {session[0]['UserDisplayName']} "
          f"(UserId {DOC_USER_ID}), read back from the events")
    for step, r in enumerate(session, 1):
        target = f' "{r["EventTargetText"]}"' if r.get("EventTargetText") else ""
        print(f"   {step}. {r['EventStart']}  {r['EventType']:<8}{target} on {r['PageUrl']}")
    indv_id = session[0]["IndvId"]
    person = [r for r in first.get("individuals", []) if r["IndvId"] == indv_id]
    user = [u for u in first.get("users", []) if u.get("uid") == session[0]["UserAppKey"]]
    if not person or not user:
        sys.exit("demo: the session's person is missing from individuals or users")
    latest = person[-1]
    print()
    print(f"== {latest['DisplayName']} as an individual (IndvId {indv_id}, window ending "
          f"{latest['ExportWindowStop']}) and as a user (id {user[0]['id']})")
    print(f"   {latest['NumSessions']} session(s), {latest['NumEvents']} event(s), last seen "
          f"{latest['LastEventStart']} on {latest['LastPage']}")
    for key, value in sorted((latest.get("CustomVars") or {}).items()):
        print(f"   {key} = {json.dumps(value, ensure_ascii=False)}")
    print(f"   user properties: {json.dumps(user[0]['properties'], ensure_ascii=False)}")


if __name__ == "__main__":
    {"catalog": catalog, "report": report}[sys.argv[1]](*sys.argv[2:])
