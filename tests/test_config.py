import json
from datetime import datetime, timezone

import pytest

from tap_fullstory.config import DEFAULT_BASE_URL, load_config_file, parse_config
from tap_fullstory.errors import ConfigError

BASE = {"api_key": "k-123", "start_date": "2026-01-01T00:00:00Z"}


def test_defaults():
    config = parse_config(BASE)
    assert config.start_date == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert config.base_url == DEFAULT_BASE_URL
    assert config.request_timeout == 300
    assert config.checkpoint_every == 10000
    assert config.user_agent.startswith("tap-fullstory/")


@pytest.mark.parametrize("raw", ["", 0, "0", None])
def test_request_timeout_empty_means_default(raw):
    assert parse_config({**BASE, "request_timeout": raw}).request_timeout == 300


@pytest.mark.parametrize("raw, value", [(30, 30.0), ("12.5", 12.5)])
def test_request_timeout_accepts_numbers_and_numeric_strings(raw, value):
    assert parse_config({**BASE, "request_timeout": raw}).request_timeout == value


@pytest.mark.parametrize("settings, message", [
    ({"api_key": ""}, "Config is missing api_key"),
    ({"api_key": None}, "Config is missing api_key"),
    ({"start_date": "  "}, "Config is missing start_date"),
    ({"start_date": "yesterday"}, "start_date 'yesterday' is not an RFC 3339 timestamp"),
    ({"start_date": "2026-01-01"}, "is not an RFC 3339 timestamp"),
    ({"checkpoint_every": "many"}, "checkpoint_every must be a whole number"),
    ({"checkpoint_every": 0}, "checkpoint_every must be at least 1"),
    ({"request_timeout": "soon"}, "request_timeout must be a number"),
    ({"request_timeout": True}, "request_timeout must be a number"),
    ({"max_retries": -1}, "max_retries must be at least 0"),
    ({"base_url": "http://export.example.com"}, "must use https"),
    ({"base_url": "ftp://127.0.0.1"}, "is not an http\\(s\\) URL"),
    ({"user_agent": 5}, "user_agent must be a string"),
])
def test_bad_settings_say_what_to_fix(settings, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, **settings})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1/",
                                 "http://[::1]:9000", "https://eu1.fullstory.com"])
def test_base_url_http_only_on_loopback(url):
    assert parse_config({**BASE, "base_url": url}).base_url == url.rstrip("/")


def test_api_key_that_cannot_be_a_header_is_rejected_without_echoing_it():
    with pytest.raises(ConfigError) as raised:
        parse_config({**BASE, "api_key": "sécret key"})
    assert "sécret" not in str(raised.value)


def test_repr_hides_the_key():
    assert "k-123" not in repr(parse_config(BASE))


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{", "is not valid JSON"),
    ("[1]", "must hold a JSON object of settings, not a list"),
])
def test_config_file_errors(tmp_path, content, message):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config_file(str(path))


def test_config_file_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE))
    assert load_config_file(str(path)) == BASE


def test_both_hosts_have_defaults():
    config = parse_config(BASE)
    assert (config.base_url, config.api_base_url) == (DEFAULT_BASE_URL,
                                                       "https://api.fullstory.com")


def test_a_segment_export_config_from_before_api_base_url_keeps_working(caplog):
    config = parse_config({**BASE, "source": "segment_export",
                           "base_url": "http://127.0.0.1:8080"})
    assert config.api_base_url == "http://127.0.0.1:8080"
    assert config.base_url == DEFAULT_BASE_URL
    assert "base_url is the Data Export host; segment_export reads api_base_url. Using " \
           "base_url http://127.0.0.1:8080 as api_base_url: set api_base_url instead." in \
        [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_api_base_url_wins_when_both_are_set(caplog):
    config = parse_config({**BASE, "source": "segment_export",
                           "base_url": "http://127.0.0.1:1", "api_base_url": "http://127.0.0.1:2"})
    assert (config.base_url, config.api_base_url) == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    assert caplog.records == []


@pytest.mark.parametrize("settings, message", [
    ({"api_base_url": "http://api.fullstory.com"}, "api_base_url 'http://api.fullstory.com' "
                                                   "must use https"),
    ({"on_bad_bundle": "ignore"}, "on_bad_bundle 'ignore' must be one of fail, skip."),
    ({"on_forbidden": "maybe"}, "on_forbidden 'maybe' must be one of fail, skip."),
    ({"max_exports_in_flight": 0}, "max_exports_in_flight must be at least 1, not 0."),
    ({"max_rate_limit_wait": 0}, "max_rate_limit_wait must be at least 1, not 0."),
    ({"end_date": "2025-12-31T00:00:00Z"}, "end_date must be later than start_date."),
])
def test_new_settings_are_validated(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace(")", "\\)")):
        parse_config({**BASE, **settings})
