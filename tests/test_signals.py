"""SIGINT and SIGTERM: a prompt stop, a true last STATE, no temporary files, 130/143."""

import json
import signal
import subprocess
import time

import pytest

from conftest import API_KEY, TAP, messages, records, resume_is_exactly_once, spool_files_held


def run_and_signal(config, signum, should_signal, tmp_path, times=1):
    """Run the tap and send `signum` (`times` times in a row) once
    `should_signal(message)`; read to the end."""
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        proc = subprocess.Popen([TAP, "--config", config], stdout=subprocess.PIPE,
                                stderr=stderr, pipesize=4096)
        output = b""
        for line in proc.stdout:
            output += line
            if should_signal(json.loads(line)):
                for _ in range(times):
                    proc.send_signal(signum)
                break
        output += proc.stdout.read()
        code = proc.wait(timeout=30)  # a tap that ignores the signal fails here
    stderr = (tmp_path / "stderr.txt").read_text()
    assert API_KEY not in stderr and API_KEY.encode() not in output
    return output, code, stderr


def after_records(n):
    seen = []

    def should_signal(message):
        if message["type"] == "RECORD":
            seen.append(message)
        return len(seen) >= n
    return should_signal


@pytest.mark.parametrize("signum, code, after", [
    (signal.SIGTERM, 143, 120), (signal.SIGTERM, 143, 350), (signal.SIGTERM, 143, 777),
    (signal.SIGINT, 130, 350)])
def test_signal_mid_bundle_ends_with_a_true_state_and_resumes_exactly_once(
        sandbox, write_config, tmp_path, signum, code, after):
    server = sandbox(bundles=4, events_per_bundle=300)
    spool = tmp_path / "spool"
    spool.mkdir()
    config = write_config(server.url, checkpoint_every=1000, spool_dir=str(spool))
    output, exit_code, stderr = run_and_signal(config, signum, after_records(after), tmp_path)
    assert exit_code == code
    name = signal.Signals(signum).name
    assert f"CRITICAL Stopped by {name}; the last STATE printed resumes exactly where " \
           "this run stopped." in stderr
    assert list(spool.iterdir()) == []
    msgs, _ = resume_is_exactly_once(output, config, tmp_path, server.data)
    assert "in_progress" in msgs[-1]["value"]["bookmarks"]["events"]


def test_sigterm_while_waiting_to_pace_a_download(sandbox, write_config, tmp_path):
    server = sandbox(bundles=3, events_per_bundle=10)
    config = write_config(server.url, max_downloads_per_minute=1)  # 60 s between downloads
    proc = subprocess.Popen([TAP, "--config", config], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for line in proc.stderr:
        if b"Pacing downloads to 1 a minute: waiting" in line:
            break
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=10)  # not the 60 s the pacer wanted
    assert proc.returncode == 143
    assert b"CRITICAL Stopped by SIGTERM" in stderr
    # The feed waits for the pace in the background while the first bundle is emitted;
    # wherever the signal lands, the last STATE is true.
    msgs, _ = resume_is_exactly_once(stdout, write_config(server.url), tmp_path,
                                     server.data)
    assert len(records(msgs)) <= 10


def test_sigint_during_a_slow_download_leaves_no_temporary_file(
        sandbox, write_config, tmp_path):
    server = sandbox(bundles=2, events_per_bundle=10, bytes_per_second=50)
    spool = tmp_path / "spool"
    spool.mkdir()
    config = write_config(server.url, spool_dir=str(spool))
    proc = subprocess.Popen([TAP, "--config", config], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # At 50 bytes a second the first download lasts minutes: signal the tap during it.
    assert server.wait_for_request("get?id="), "the tap never started a download"
    # Each body goes to a file in spool_dir that has no name: nothing to clean up, ever.
    # (Pacing is off, so the next bundle may be downloading too: one file or two.)
    held = spool_files_held(proc.pid, spool)
    assert 1 <= len(held) <= 2
    assert all(name.endswith(" (deleted)") for name in held), held
    assert list(spool.iterdir()) == []
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert list(spool.iterdir()) == []
    assert [m["type"] for m in messages(stdout)] == ["STATE", "SCHEMA", "STATE"]
    assert messages(stdout)[-1]["value"]["bookmarks"] == {"events": {}}
    assert b"Stopped by SIGINT" in stderr


def test_sigterm_while_listing_stops_at_once(sandbox, write_config, tmp_path):
    server = sandbox(bundles=2, events_per_bundle=10, faults="slow=20")
    proc = subprocess.Popen([TAP, "--config", write_config(server.url)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The LIST answer takes 20 s: signal the tap while it waits for it.
    assert server.request_arrived.wait(timeout=30), "the tap never called the sandbox"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert messages(stdout)[-1]["type"] == "STATE"


def signal_pending(pid, signum):
    """True while `signum` waits to be delivered to process `pid` (signals of one kind sent
    before the first is handled merge into one)."""
    with open(f"/proc/{pid}/status") as status:
        masks = dict(line.split(":", 1) for line in status if line.startswith(("SigPnd",
                                                                              "ShdPnd")))
    return any(int(mask, 16) >> (signum - 1) & 1 for mask in masks.values())


def blocked_writing_a_pipe(pid):
    """True while process `pid` sleeps in the kernel inside a write to a full pipe."""
    try:
        with open(f"/proc/{pid}/wchan") as wchan:
            return "pipe_write" in wchan.read()
    except FileNotFoundError:
        return False


def test_a_second_signal_ends_a_run_whose_target_stopped_reading(sandbox, write_config):
    server = sandbox(bundles=3, events_per_bundle=400)
    # nobody reads stdout: once the pipe is full the tap blocks in a write
    proc = subprocess.Popen([TAP, "--config", write_config(server.url)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not blocked_writing_a_pipe(proc.pid):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # recorded; the blocked write cannot notice it
    # A second signal ends the run once it finds the write still blocked a while after the
    # first (stopping.GRACE); until then each one is ignored. Send one whenever the last was
    # handled and the write blocks again, until the tap is gone.
    deadline = time.monotonic() + 30
    while proc.poll() is None:
        assert time.monotonic() < deadline, "a second signal never ended the blocked run"
        if not signal_pending(proc.pid, signal.SIGTERM) and blocked_writing_a_pipe(proc.pid):
            proc.send_signal(signal.SIGTERM)
        time.sleep(0.01)
    assert proc.returncode == 143
    stderr = proc.stderr.read().decode()
    assert "Traceback" not in stderr
    assert "CRITICAL Stopped at once by a second SIGTERM: stdout was not being read, so no " \
           "final STATE could be written; the last STATE the target read resumes the sync " \
           "(rows after it come again, as after a kill)." in stderr


def test_a_double_sigint_is_still_a_clean_stop(sandbox, write_config, tmp_path):
    # Ctrl-C twice, or a wrapper that forwards the stop it also sends: while stdout is being
    # read the second signal changes nothing, the run ends on a true STATE
    server = sandbox(bundles=3, events_per_bundle=400)
    config = write_config(server.url)
    output, code, stderr = run_and_signal(config, signal.SIGINT, after_records(200), tmp_path,
                                          times=2)
    assert code == 130
    assert "Stopped at once" not in stderr and "Traceback" not in stderr
    assert "CRITICAL Stopped by SIGINT" in stderr
    resume_is_exactly_once(output, config, tmp_path, server.data)
