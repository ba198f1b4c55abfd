"""The API key never appears in stdout, stderr, debug logs or temporary file names."""

import base64
import http.server
import json
import os
import signal
import subprocess
import threading
from urllib.parse import quote

import pytest

from conftest import API_KEY, TAP, spool_files_held

DEBUG = {**os.environ, "TAP_FULLSTORY_LOG_LEVEL": "DEBUG"}


def run_debug(*args):
    result = subprocess.run([TAP, *args], capture_output=True, env=DEBUG, timeout=120)
    everything = result.stdout + result.stderr
    assert API_KEY.encode() not in everything
    return result


@pytest.mark.parametrize("faults, settings", [
    ("", {}),
    ("5xx-every=2", {}),
    ("reset-download=1,truncate-download=2", {}),
    ("list-429-every=2", {}),
    ("403-every=1", {}),
    ("5xx-every=1", {"max_retries": 1}),
    ("slow=1", {"request_timeout": 0.2, "max_retries": 0}),
    ("bad-json-bundle=176722560048", {"max_retries": 0}),
])
def test_fault_matrix_under_debug_logging_never_shows_the_key(sandbox, write_config,
                                                              faults, settings):
    server = sandbox(bundles=3, events_per_bundle=10, faults=faults)
    result = run_debug("--config", write_config(server.url, **settings))
    assert b"DEBUG GET http://127.0.0.1" in result.stderr  # debug output really was on


def test_wrong_key_and_about_and_discover_never_show_the_key(sandbox, write_config):
    server = sandbox(bundles=1, api_key="another-key")
    assert run_debug("--config", write_config(server.url)).returncode == 1
    assert run_debug("--about").returncode == 0
    assert run_debug("--config", write_config(server.url), "--discover").returncode == 0


def test_bad_config_values_never_echo_the_key(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": API_KEY + " extra", "start_date": "2026"}))
    result = run_debug("--config", str(config))
    assert result.returncode == 1


def test_temporary_files_have_no_name_to_hold_the_key(sandbox, write_config, tmp_path):
    # 50 bytes a second: the download, and so its spool file, lasts until the tap is stopped
    server = sandbox(bundles=1, events_per_bundle=10, bytes_per_second=50)
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = subprocess.Popen([TAP, "--config", write_config(server.url, spool_dir=str(spool))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert server.wait_for_request("get?id="), "the tap never started a download"
        held = spool_files_held(proc.pid, spool)
        names = os.listdir(spool)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(held) == 1 and API_KEY not in held[0]
    assert names == [] and os.listdir(spool) == []


def test_debug_logs_never_show_a_signed_download_url(sandbox, write_config):
    server = sandbox(bundles=1, events_per_bundle=10)
    result = run_debug("--config", write_config(server.url, source="segment_export",
                                                api_base_url=server.url,
                                                end_date="2026-01-02T00:00:00Z"))
    assert result.returncode == 0, result.stderr.decode()
    assert b"/download/se-1" in result.stderr  # urllib3's line is there
    assert b"signature=" not in result.stderr


class KeyEchoingGateway(http.server.BaseHTTPRequestHandler):
    """A gateway that puts the caller's key wherever a server can: the reason phrase, a
    JSON error's message and code, a LIST entry, an export's errorDetails, plain and
    URL-quoted and base64."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        key = self.headers.get("Authorization", "").removeprefix("Basic ")
        echoed = f"{key} {quote(key, safe='')} {base64.b64encode(key.encode()).decode()}"
        mode = self.server.mode
        if mode == "reason":
            self.send_response(503, f"refused {key}")
            body = b"{}"
        elif mode == "json":
            self.send_response(400)
            body = json.dumps({"code": key, "message": f"bad key {echoed}"}).encode()
        elif mode == "list":
            self.send_response(200)
            body = json.dumps({"exports": [{"Id": key, "Start": 0, "Stop": 1}]}).encode()
        else:  # a body cut inside the key, as a proxy's page would be quoted
            self.send_response(200)
            body = ("<html>" + "x" * 40 + key).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode", ["reason", "json", "list", "cut"])
def test_a_gateway_echoing_the_key_anywhere_never_gets_it_into_output(write_config, mode):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeyEchoingGateway)
    server.mode = mode
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_debug("--config", write_config(url, max_retries=0))
    finally:
        server.shutdown()
    everything = result.stdout + result.stderr
    assert result.returncode == 1 and b"Traceback" not in everything
    assert b"<api_key>" in result.stderr  # the gateway's words are quoted, key masked
    for form in (quote(API_KEY, safe=""), base64.b64encode(API_KEY.encode()).decode()):
        assert form.encode() not in everything
