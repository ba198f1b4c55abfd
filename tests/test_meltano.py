"""examples/meltano: `meltano install` and `meltano run tap-fullstory target-jsonl`."""

import json
import os
import shutil
import subprocess

import yaml

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


def test_meltano_partitions_backfill_in_parallel_as_the_readme_shows(sandbox, tmp_path):
    # The sandbox allows 2 downloads in any 2 s; each of the two partitions paces to half.
    server = sandbox(bundles=6, events_per_bundle=20, api_key="sandbox-key", rate=(2, 2.0))
    project = tmp_path / "project"
    project.mkdir()
    manifest = yaml.safe_load((ROOT / "examples" / "meltano" / "meltano.yml").read_text())
    base = manifest["plugins"]["extractors"][0]
    base["pip_url"] = f"-e {ROOT}"
    base["config"].update({"max_downloads_per_minute": 30, "base_url": server.url})
    manifest["plugins"]["extractors"] += [
        {"name": "tap-fullstory--first", "inherit_from": "tap-fullstory",
         "config": {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-01-04T00:00:00Z"}},
        {"name": "tap-fullstory--second", "inherit_from": "tap-fullstory",
         "config": {"start_date": "2026-01-04T00:00:00Z", "end_date": "2026-01-07T00:00:00Z"}}]
    (project / "meltano.yml").write_text(yaml.safe_dump(manifest))
    meltano = tool("meltano", "meltano")
    env = {**os.environ, "TAP_FULLSTORY_API_KEY": "sandbox-key",
           "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    subprocess.run([meltano, "install"], cwd=project, env=env, capture_output=True,
                   check=True, timeout=600)
    for part in ("first", "second"):
        (project / part).mkdir()
        subprocess.run([meltano, "select", f"tap-fullstory--{part}", "events", "*"],
                       cwd=project, env=env, capture_output=True, check=True, timeout=120)
    runs = [subprocess.Popen([meltano, "run", f"tap-fullstory--{part}", "target-jsonl"],
                             cwd=project, env={**env, "TARGET_JSONL_DESTINATION_PATH": part},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for part in ("first", "second")]
    for run in runs:
        output = run.communicate(timeout=600)[0]
        assert run.returncode == 0, output[-3000:]
        assert "rate limit (429)" not in output
    rows = [json.loads(line) for part in ("first", "second")
            for path in (project / part).glob("events*.jsonl")
            for line in path.read_text().splitlines()]
    ids = [identity(r) for r in rows]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected_events(server.data))
    assert [s for p, s in server.requests if "/get" in p] == [200] * 6
