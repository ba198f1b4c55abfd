"""Reading the catalog a sync is given: which stream and fields to emit, and its keys."""

from singer import metadata
from singer.catalog import Catalog

from tap_fullstory.discover import automatic_fields, discover
from tap_fullstory.errors import ConfigError
from tap_fullstory.json_file import read_json_file
from tap_fullstory.streams import BY_NAME

DEFAULT_STREAM = "events"


def load_catalog(path, option="--catalog"):
    """Read a catalog file (or a legacy --properties file) into a singer Catalog."""
    data = read_json_file(f"Catalog file {path} ({option})", path, ".",
                          ": write it with --discover and edit it.")
    streams = data.get("streams") if isinstance(data, dict) else None
    if not isinstance(streams, list) or not all(isinstance(s, dict) for s in streams):
        raise ConfigError(f"Catalog file {path} ({option}) must be an object with a "
                          "'streams' list, as --discover prints.")
    for number, stream in enumerate(streams):
        problem = _stream_problem(stream)
        if problem:
            raise ConfigError(f"Catalog file {path} ({option}): stream {number} {problem}; "
                              "write the catalog with --discover and edit it.")
    return Catalog.from_dict(data)


def _stream_problem(stream):
    """What is wrong with one catalog stream entry, or None."""
    if not isinstance(stream.get("tap_stream_id"), str):
        return "has no tap_stream_id"
    schema = stream.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return "has no schema with properties"
    entries = stream.get("metadata", [])
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("breadcrumb"), list)
            and isinstance(e.get("metadata"), dict) for e in entries):
        return "has metadata that is not a list of {breadcrumb, metadata} entries"
    return None


def default_catalog():
    """The catalog used when none is given: the events stream with every field (the plain
    `tap-fullstory | target-…` pipe), the other streams not selected."""
    catalog = discover()
    for entry in catalog.streams:
        if entry.tap_stream_id == DEFAULT_STREAM:
            entry.metadata = metadata.to_list(
                metadata.write(metadata.to_map(entry.metadata), (), "selected", True))
    return catalog


def selected_streams(catalog):
    """(declared stream, catalog entry) for every selected stream the tap knows, in the
    declared order; and the names of selected entries it does not know."""
    entries = {entry.tap_stream_id: entry for entry in catalog.streams}
    chosen = [(stream, entries[name]) for name, stream in BY_NAME.items()
              if name in entries and entries[name].is_selected()]
    unknown = sorted(name for name, entry in entries.items()
                     if name not in BY_NAME and entry.is_selected())
    return chosen, unknown


def key_properties(entry):
    """The stream's key properties: `table-key-properties` from the catalog if set."""
    keys = metadata.get(metadata.to_map(entry.metadata), (), "table-key-properties")
    if keys is None:
        keys = entry.key_properties
    return list(keys or [])


def emitted_fields(entry):
    """Field names to emit: automatic and key fields always; others unless deselected."""
    mdata = metadata.to_map(entry.metadata)
    always = set(key_properties(entry)) | automatic_fields(BY_NAME[entry.tap_stream_id])
    fields = set()
    for name in entry.schema.properties:
        field_md = mdata.get(("properties", name), {})
        if (name in always or field_md.get("inclusion") == "automatic"
                or field_md.get("selected") is not False
                and field_md.get("inclusion") != "unsupported"):
            fields.add(name)
    return fields


def emitted_schema(schema, fields):
    """The schema the SCHEMA message carries: only the emitted fields, since targets make
    their columns from it."""
    return dict(schema, properties={name: prop for name, prop in schema["properties"].items()
                                    if name in fields})


def require_fields(entry, stream):
    """Raise ConfigError if the catalog's schema for `stream` lost a field the stream cannot
    do without: its key properties, its replication key and, for a stream read per
    platform, `platform`."""
    needed = list(key_properties(entry)) + ([stream.replication_key]
                                            if stream.replication_key else [])
    needed += [name for name in ("platform",) if stream.platforms and name not in needed]
    missing = [name for name in needed if name not in entry.schema.properties]
    if missing:
        raise ConfigError(f"The catalog's schema for {stream.name} has no {', '.join(missing)}"
                          " (its key, replication key or platform): write the catalog with "
                          "--discover and change only what is selected.")
