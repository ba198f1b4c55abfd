"""Discovery: the catalog of every declared stream, built offline from streams.py."""

from singer import metadata
from singer.catalog import Catalog, CatalogEntry
from singer.schema import Schema

from tap_fullstory.streams import STREAMS


def automatic_fields(stream):
    """Key properties and the replication key: always emitted."""
    return set(stream.key) | ({stream.replication_key} if stream.replication_key else set())


def stream_metadata(stream, schema):
    """One `[]` breadcrumb and one entry per field, as Stitch's conventions ask."""
    automatic = automatic_fields(stream)
    mdata = metadata.new()
    mdata = metadata.write(mdata, (), "table-key-properties", list(stream.key))
    mdata = metadata.write(mdata, (), "forced-replication-method", stream.replication)
    if stream.replication_key:
        mdata = metadata.write(mdata, (), "valid-replication-keys", [stream.replication_key])
    mdata = metadata.write(mdata, (), "inclusion", "available")
    for field in schema["properties"]:
        inclusion = "automatic" if field in automatic else "available"
        mdata = metadata.write(mdata, ("properties", field), "inclusion", inclusion)
    return metadata.to_list(mdata)


def catalog_entry(stream):
    schema = stream.schema()
    return CatalogEntry(
        tap_stream_id=stream.name,
        stream=stream.name,
        schema=Schema.from_dict(schema),
        key_properties=list(stream.key),
        replication_key=stream.replication_key,
        replication_method=stream.replication,
        metadata=stream_metadata(stream, schema),
    )


def discover():
    """The catalog `--discover` prints: every stream, in sync order. No network call."""
    return Catalog([catalog_entry(stream) for stream in STREAMS])
