"""Discovery: the events stream's catalog, built offline from the declared schema."""

import json
from importlib import resources

from singer import metadata
from singer.catalog import Catalog, CatalogEntry
from singer.schema import Schema

STREAM = "events"
REPLICATION_KEY = "ExportBundleStop"
KEY_PROPERTIES = []
IDENTITY_FIELDS = ("ExportBundleId", "ExportBundleStop", "ExportBundleRow")


def load_schema():
    """The events stream's JSON schema, as shipped in tap_fullstory/schemas/events.json."""
    text = resources.files("tap_fullstory").joinpath("schemas/events.json").read_text("utf-8")
    return json.loads(text)


def stream_metadata(schema):
    """Metadata for the events stream: one `[]` breadcrumb and one entry per field."""
    automatic = set(KEY_PROPERTIES) | {REPLICATION_KEY}
    mdata = metadata.new()
    mdata = metadata.write(mdata, (), "table-key-properties", list(KEY_PROPERTIES))
    mdata = metadata.write(mdata, (), "forced-replication-method", "INCREMENTAL")
    mdata = metadata.write(mdata, (), "valid-replication-keys", [REPLICATION_KEY])
    mdata = metadata.write(mdata, (), "inclusion", "available")
    for field in schema["properties"]:
        inclusion = "automatic" if field in automatic else "available"
        mdata = metadata.write(mdata, ("properties", field), "inclusion", inclusion)
    return metadata.to_list(mdata)


def discover():
    """The catalog `--discover` prints. Makes no network call."""
    schema = load_schema()
    entry = CatalogEntry(
        tap_stream_id=STREAM,
        stream=STREAM,
        schema=Schema.from_dict(schema),
        key_properties=list(KEY_PROPERTIES),
        replication_key=REPLICATION_KEY,
        replication_method="INCREMENTAL",
        metadata=stream_metadata(schema),
    )
    return Catalog([entry])
