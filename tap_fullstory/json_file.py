"""Reading the JSON files a user passes (config, state, catalog): one reader, one-line
errors for every way a file can be bad."""

import json

from tap_fullstory.errors import ConfigError

NOTHING = object()


def read_json_file(label, path, if_missing, if_invalid, if_empty=NOTHING, column=False):
    """The JSON value in `path`. `label` names the file in errors ("Config file x.json");
    `if_missing` and `if_invalid` end the line for a missing file and for one that is not
    JSON; a file of only whitespace is `if_empty` when given."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{label} does not exist{if_missing}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label} cannot be read: "
                          f"{getattr(exc, 'strerror', None) or exc}.") from None
    if if_empty is not NOTHING and not text.strip():
        return if_empty
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.colno}" if column else "")
        raise ConfigError(f"{label} is not valid JSON ({where}){if_invalid}") from None
    except (ValueError, RecursionError):
        raise ConfigError(f"{label} is not valid JSON (nested too deep or a number too "
                          f"long){if_invalid}") from None
