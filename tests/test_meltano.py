"""examples/meltano: `meltano install` and `meltano run tap-fullstory target-jsonl`."""

import json
import os
import shutil
import subprocess

from conftest import ROOT, expected_events, identity, tool


def test_meltano_runs_the_tap_and_resumes_from_its_state(sandbox, tmp_path):
    server = sandbox(bundles=4, events_per_bundle=25, api_key="sandbox-key")
    project = tmp_path / "project"
    project.mkdir()
    manifest = (ROOT / "examples" / "meltano" / "meltano.yml").read_text()
    assert "pip_url: -e ../.." in manifest
    (project / "meltano.yml").write_text(manifest.replace("-e ../..", f"-e {ROOT}"))
    meltano = tool("meltano", "meltano")
    env = {**os.environ, "TAP_FULLSTORY_API_KEY": "sandbox-key",
           "TAP_FULLSTORY_BASE_URL": server.url, "TAP_FULLSTORY_API_BASE_URL": server.url,
           "TAP_FULLSTORY_END_DATE": "2026-01-05T00:00:00Z",
           "TAP_FULLSTORY_MAX_DOWNLOADS_PER_MINUTE": "6000",
           "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}

    def meltano_run(*args):
        result = subprocess.run([meltano, *args], cwd=project, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        return result.stdout + result.stderr

    meltano_run("install")
    (project / "output").mkdir()
    meltano_run("run", "tap-fullstory", "target-jsonl")
    [output] = list((project / "output").glob("events*.jsonl"))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(identity(r) for r in rows) == sorted(expected_events(server.data))
    shutil.rmtree(project / "output")
    (project / "output").mkdir()
    second = meltano_run("run", "tap-fullstory", "target-jsonl")
    assert "events: no new bundles, nothing to sync." in second
    assert list((project / "output").glob("events*.jsonl")) == []
