import os
import threading

import pytest

from tap_fullstory.bundles import list_bundles
from tap_fullstory.errors import FatalAPIError
from tap_fullstory.feed import SPOOL_FILES, BundleFeed

DAY = 86400


class FakeClient:
    """Lists `count` bundles; each download notes how many spool files exist."""

    def __init__(self, spool_dir, count, fail_on=None):
        self.spool_dir, self.count, self.fail_on = spool_dir, count, fail_on
        self.files_seen = []
        self.downloaded = []
        self.lock = threading.Lock()

    def list_exports(self, start):
        exports = [{"Id": i, "Start": i * DAY, "Stop": (i + 1) * DAY}
                   for i in range(self.count)]
        return [e for e in exports if e["Stop"] > start][:20]

    def fetch(self, spool, handle):
        return self.download(spool.bundle.id, handle)

    def download(self, bundle_id, handle):
        if bundle_id == self.fail_on:
            raise FatalAPIError(f"bundle {bundle_id} is gone")
        with self.lock:
            self.files_seen.append(len(os.listdir(self.spool_dir)))
            self.downloaded.append(bundle_id)
        handle.write(b"[]")
        return 2


def test_downloads_one_bundle_ahead_and_never_more(tmp_path):
    client = FakeClient(tmp_path, 30)
    emitted = []
    with BundleFeed(client, list(list_bundles(client, 0)), str(tmp_path)) as feed:
        for spool in feed:
            # while a bundle is emitted, at most the next one has been fetched
            assert client.downloaded[-1] <= spool.bundle.id + 1
            assert len(os.listdir(tmp_path)) <= SPOOL_FILES
            emitted.append(spool.bundle.id)
    assert emitted == list(range(30))
    assert max(client.files_seen) <= SPOOL_FILES
    assert os.listdir(tmp_path) == []


def test_errors_arrive_after_the_bundles_before_them(tmp_path):
    client = FakeClient(tmp_path, 5, fail_on=3)
    emitted = []
    with pytest.raises(FatalAPIError, match="bundle 3 is gone"):
        with BundleFeed(client, list(list_bundles(client, 0)), str(tmp_path)) as feed:
            for spool in feed:
                emitted.append(spool.bundle.id)
    assert emitted == [0, 1, 2]
    assert os.listdir(tmp_path) == []


def test_leaving_early_removes_every_file(tmp_path):
    client = FakeClient(tmp_path, 10)
    with BundleFeed(client, list(list_bundles(client, 0)), str(tmp_path)) as feed:
        for spool in feed:
            if spool.bundle.id == 4:
                break
    assert os.listdir(tmp_path) == []
