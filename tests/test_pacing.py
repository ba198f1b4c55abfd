from tap_fullstory.pacing import DownloadPacer


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_first_download_starts_at_once_then_they_are_spaced():
    fake = FakeTime()
    pacer = DownloadPacer(2, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(4):
        pacer.wait("bundle")
        starts.append(fake.now)
        fake.now += 1.5  # the request takes a while to be answered
        pacer.mark()
    assert starts == [0.0, 31.5, 63.0, 94.5]
    assert all(later - earlier >= 30 for earlier, later in zip(starts, starts[1:], strict=False))


def test_no_wait_when_the_interval_has_passed():
    fake = FakeTime()
    pacer = DownloadPacer(120, clock=fake.clock, sleep=fake.sleep)
    pacer.mark()
    fake.now += 0.5
    assert pacer.wait("bundle") == 0.0 and fake.slept == []


def test_each_wait_is_logged_once_with_its_length(caplog):
    fake = FakeTime()
    pacer = DownloadPacer(2, clock=fake.clock, sleep=fake.sleep)
    pacer.mark()
    fake.now += 12
    pacer.wait("bundle 7")
    assert [r.getMessage() for r in caplog.records] == [
        "Pacing downloads to 2 a minute: waiting 18.0 s before bundle 7."]
