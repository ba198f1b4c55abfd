import fcntl
import os
import subprocess
import sys
import time

from tap_fullstory.bundles import Bundle
from tap_fullstory.spool import BundleSpool, sweep_abandoned

BUNDLE = Bundle(id=7, start=0, stop=86400)


class BodySource:
    def __init__(self, body):
        self.body = body

    def fetch(self, spool, handle):
        handle.write(self.body)
        return len(self.body)


def test_spool_downloads_and_removes_its_file(tmp_path):
    with BundleSpool.fetch(BodySource(b"[]"), BUNDLE, str(tmp_path)) as spool:
        assert open(spool.path, "rb").read() == b"[]" and spool.size == 2
        assert os.path.basename(spool.path).startswith("tap-fullstory-7-")
    assert os.listdir(tmp_path) == []


def test_a_failed_download_leaves_no_file(tmp_path):
    class Broken:
        def fetch(self, spool, handle):
            raise OSError("disk full")

    try:
        BundleSpool.fetch(Broken(), BUNDLE, str(tmp_path))
    except OSError:
        pass
    assert os.listdir(tmp_path) == []


def test_sweep_removes_only_old_files_no_live_process_holds(tmp_path):
    abandoned = tmp_path / "tap-fullstory-1-abc.body"
    abandoned.write_bytes(b"[")
    fresh = tmp_path / "tap-fullstory-2-def.body"
    fresh.write_bytes(b"[")
    held = tmp_path / "tap-fullstory-3-ghi.body"
    held.write_bytes(b"[")
    other = tmp_path / "unrelated.body"
    other.write_bytes(b"x")
    old = time.time() - 3600
    for path in (abandoned, held, other):
        os.utime(path, (old, old))
    # another process holds the lock on `held`, as a running tap does on its files
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, sys; f = open(sys.argv[1], 'rb'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); "
                               "sys.stdin.read()", str(held)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert sweep_abandoned(str(tmp_path)) == 1
    finally:
        holder.communicate("")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tap-fullstory-2-def.body", "tap-fullstory-3-ghi.body", "unrelated.body"]


def test_a_live_spool_is_not_swept(tmp_path):
    spool = BundleSpool(BUNDLE, str(tmp_path))
    old = time.time() - 3600
    os.utime(spool.path, (old, old))
    # flock locks belong to open file descriptions: a second open in this process cannot
    # take it either, just as another process could not
    handle = os.open(spool.path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked_elsewhere = False
        except BlockingIOError:
            locked_elsewhere = True
    finally:
        os.close(handle)
    assert locked_elsewhere
    assert sweep_abandoned(str(tmp_path)) == 0 and os.path.exists(spool.path)
    spool.remove()
    assert os.listdir(tmp_path) == []
