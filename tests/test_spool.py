import os
import subprocess

import pytest

from tap_fullstory.errors import SpoolError
from tap_fullstory.spool import Provenance, Spool, Standing, check_spool_dir, download
from tap_fullstory.units import Unit

BUNDLE = Unit(id=7, start=0, stop=86400)
MB = 1_000_000


class BodySource:
    def __init__(self, body):
        self.body = body

    def describe(self, unit):
        return f"Bundle {unit.id}"

    def fetch(self, unit, spool, standing):
        spool.begin(len(self.body), "application/json")
        spool.write(self.body)
        return Provenance()


def test_a_spool_holds_the_body_in_a_file_without_a_name(tmp_path):
    with download(BodySource(b"[]"), BUNDLE, Standing(7), str(tmp_path)) as fetched:
        spool = fetched.spool
        assert fetched.first_row == 7 and not fetched.renumbered
        with spool.open_reader() as reader:
            assert reader.read() == b"[]" and spool.size == 2
        assert os.listdir(tmp_path) == []  # unlinked as it was made
        target = os.readlink(f"/proc/self/fd/{spool.file.fileno()}")
        assert target.startswith(str(tmp_path)) and target.endswith(" (deleted)")
        assert spool.time_extracted.endswith("Z")
    assert spool.file is None


def test_a_failed_download_closes_its_file(tmp_path):
    made = []

    class Broken(BodySource):
        def fetch(self, unit, spool, standing):
            made.append(spool)
            raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        download(Broken(b""), BUNDLE, Standing(), str(tmp_path))
    assert made[0].file is None


def test_a_retry_starts_the_body_afresh(tmp_path):
    with Spool(BUNDLE, str(tmp_path)) as spool:
        spool.begin()
        spool.write(b"[1, 2, 3")
        spool.begin()
        spool.write(b"[]")
        spool.finish()
        with spool.open_reader() as reader:
            assert reader.read() == b"[]" and spool.size == 2


def test_a_full_disk_names_spool_dir_and_what_the_bundle_needed(small_disk):
    disk = small_disk("1m")
    with Spool(BUNDLE, str(disk)) as spool:
        spool.begin()
        with pytest.raises(SpoolError) as full:
            for _ in range(20):
                spool.write(b"x" * 100_000)
                spool.finish()
    assert str(full.value).startswith(f"spool_dir {disk} is full: Bundle 7 needs more than "
                                      "the ")
    assert "Free some space or point spool_dir at a larger disk" in str(full.value)
    assert os.listdir(disk) == []


def test_a_body_larger_than_the_free_space_fails_before_it_is_written(small_disk):
    disk = small_disk("1m")
    with Spool(BUNDLE, str(disk)) as spool:
        with pytest.raises(SpoolError, match=f"^spool_dir {disk} is full: Bundle 7 needs "
                                             "5.0 MB and 1.0 MB is free."):
            spool.begin(5 * MB)


def test_a_missing_spool_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(SpoolError, match=f"^spool_dir {missing} does not exist: point "
                                         "spool_dir at a writable directory"):
        check_spool_dir(str(missing))


def test_a_spool_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpoolError, match="is not a directory"):
        check_spool_dir(str(tmp_path / "file"))


def test_a_read_only_spool_dir(small_disk):
    disk = small_disk("1m")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    with pytest.raises(SpoolError, match=f"^spool_dir {disk} cannot hold a spool file "
                                         "\\(Read-only file system\\)"):
        check_spool_dir(str(disk))


def test_a_usable_spool_dir_passes_and_keeps_nothing(tmp_path):
    check_spool_dir(str(tmp_path))
    assert os.listdir(tmp_path) == []
