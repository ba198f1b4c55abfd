"""The README stays true to the code."""

import re

import yaml

from conftest import ROOT
from tap_fullstory.cli import about_markdown, stream_table
from tap_fullstory.config import SETTINGS

README = (ROOT / "README.md").read_text("utf-8")


def test_settings_table_is_the_about_output():
    table = about_markdown()[about_markdown().index("| setting"):]
    assert table in README


def test_stream_table_is_the_declarations():
    assert stream_table() in README


def test_meltano_snippet_lists_every_setting():
    [snippet] = [block for block in re.findall(r"```yaml\n(.*?)```", README, re.S)
                 if "executable: tap-fullstory" in block]
    extractor = yaml.safe_load(snippet)["plugins"]["extractors"][0]
    assert [s["name"] for s in extractor["settings"]] == [s.name for s in SETTINGS]
    assert extractor["executable"] == "tap-fullstory"


def test_two_commands_lead():
    assert README.index("make demo") < README.index("## Configuration")
    assert "make test" in README


def test_example_meltano_project_lists_every_setting():
    manifest = yaml.safe_load((ROOT / "examples" / "meltano" / "meltano.yml").read_text())
    extractor = manifest["plugins"]["extractors"][0]
    assert [s["name"] for s in extractor["settings"]] == [s.name for s in SETTINGS]
    assert extractor["capabilities"] == ["catalog", "discover", "state", "about"]
