"""#35 Share: an upload kept under an unguessable token until its sharer stops it or it expires, within a cap. The
real store on real files and SQLite; the clock is moved by the test, never slept."""
import sqlite3

import numpy as np
import pytest

from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.inputs.load import load_items
from mrnet.sets.shares import DAY, UNAVAILABLE, ShareStore

from dicom_factory import series


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def exam(seed: int = 0, slices: int = 6) -> Exam:
    rng = np.random.default_rng(seed)
    return Exam(volumes={p: rng.integers(0, 255, (slices, 256, 256), dtype=np.uint8) for p in ("coronal", "sagittal")},
                notes=["read from knee-of-jane-doe.npy"], sources={"coronal": "jane-doe-coronal.npy"})


def test_a_share_opens_with_the_same_pixels_and_keeps_no_more_than_them(tmp_path):
    store = ShareStore(tmp_path / "shares", clock=Clock())
    original = exam()
    share = store.create(original, "weights-1", "192.0.2.1")
    assert len(share.token) == 38 and share.token.startswith(share.public) and share.stop_token != share.token
    opened = store.open(share.token)
    assert opened.public == share.public and opened.weights == "weights-1"
    assert set(opened.exam.volumes) == set(original.volumes)
    for plane, volume in original.volumes.items():
        np.testing.assert_array_equal(opened.exam.volumes[plane], volume)
    pixels = sum(v.nbytes for v in original.volumes.values())
    kept = store.pixels(share.public).stat().st_size
    assert pixels <= kept <= 1.2 * pixels
    everything = b"".join(f.read_bytes() for f in (tmp_path / "shares").iterdir())
    assert b"jane" not in everything and share.token[16:].encode() not in everything  # only the secret's digest


def test_a_guess_a_stopped_token_and_an_expired_token_get_the_same_sentence(tmp_path):
    clock = Clock()
    store = ShareStore(tmp_path / "shares", days=7, clock=clock)
    stopped, expiring = (store.create(exam(i), "w", "192.0.2.1") for i in range(2))
    assert store.stop(stopped.stop_token) == stopped.public
    assert not store.pixels(stopped.public).exists()          # deleted at once
    clock.now += 3 * DAY
    live = store.create(exam(2), "w", "192.0.2.1")
    clock.now += 4 * DAY - 60
    store.open(expiring.token)                                # a minute before it expires: still there
    clock.now += 61
    guesses = [stopped.token, expiring.token, live.public + "A" * 22, "0" * 38, live.token[:-1], live.token + "x",
               "../../etc/passwd", None, 7, {"token": live.token}, live.token.upper(), live.stop_token]
    for guess in guesses:
        with pytest.raises(MRNetError) as said:
            store.open(guess)
        assert str(said.value) == UNAVAILABLE
    assert not store.pixels(expiring.public).exists() and not store.pixels(stopped.public).exists()
    with sqlite3.connect(tmp_path / "shares" / "shares.sqlite") as db:  # deleted, not hidden
        assert {row[0] for row in db.execute("SELECT public FROM shares")} == {live.public}
    with pytest.raises(MRNetError, match="not available"):
        store.stop(live.token)                                # the view link does not stop a share
    with pytest.raises(MRNetError, match="not available"):
        store.stop(stopped.stop_token)                        # nor twice
    np.testing.assert_array_equal(store.open(live.token).exam.volumes["coronal"], exam(2).volumes["coronal"])


def test_the_cap_refuses_in_one_sentence_and_never_evicts_a_live_share(tmp_path):
    store = ShareStore(tmp_path / "shares", max_mb=1, clock=Clock())  # 1 MB: one 6 x 2 x 256 x 256 exam (0.75 MB)
    first = store.create(exam(0), "w", "192.0.2.1")
    with pytest.raises(MRNetError, match=r"^Sharing is full on this server \(1 MB of shared exams\)"):
        store.create(exam(1), "w", "192.0.2.2")
    assert sorted(f.name for f in (tmp_path / "shares").glob("*.npz*")) == [f"{first.public}.npz"]
    store.open(first.token)
    store.stop(first.stop_token)
    store.create(exam(1), "w", "192.0.2.2")                   # room again


def test_a_share_refused_for_a_full_store_costs_the_address_nothing(tmp_path):
    store = ShareStore(tmp_path / "shares", max_mb=1, clock=Clock(), per_hour=2)
    first = store.create(exam(0), "w", "192.0.2.1")
    for _ in range(3):
        with pytest.raises(MRNetError, match="Sharing is full"):
            store.create(exam(1), "w", "192.0.2.1")
    store.stop(first.stop_token)
    second = store.create(exam(1), "w", "192.0.2.1")          # the address's second share this hour
    store.stop(second.stop_token)
    with pytest.raises(MRNetError, match="At most 2 exams an hour"):
        store.create(exam(2), "w", "192.0.2.1")


def test_shares_are_limited_per_address_and_off_with_zero_days(tmp_path):
    clock = Clock()
    store = ShareStore(tmp_path / "shares", clock=clock, per_hour=2)
    store.create(exam(0, 2), "w", "192.0.2.1")
    store.create(exam(1, 2), "w", "192.0.2.1")
    with pytest.raises(MRNetError, match="At most 2 exams an hour can be shared from one address"):
        store.create(exam(2, 2), "w", "192.0.2.1")
    store.create(exam(3, 2), "w", "192.0.2.9")                # another address is not held up
    clock.now += 3601
    store.create(exam(4, 2), "w", "192.0.2.1")
    with pytest.raises(MRNetError, match="Sharing is turned off"):
        ShareStore(tmp_path / "off", days=0).create(exam(), "w", "192.0.2.1")
    assert not (tmp_path / "off").exists()


def test_a_file_left_by_a_crash_is_removed_and_a_damaged_one_is_the_same_sentence(tmp_path):
    store = ShareStore(tmp_path / "shares", clock=Clock())
    share = store.create(exam(), "w", "192.0.2.1")
    (tmp_path / "shares" / "0123456789abcdef.npz.partial").write_bytes(b"half")
    store.pixels(share.public).write_bytes(b"PK\x03\x04 not a zip")
    store = ShareStore(tmp_path / "shares", clock=Clock())   # the server starts again after the crash
    with pytest.raises(MRNetError) as said:
        store.open(share.token)
    assert str(said.value) == UNAVAILABLE
    assert not (tmp_path / "shares" / "0123456789abcdef.npz.partial").exists()


def test_a_dicom_uploads_shared_files_hold_none_of_its_header_text(tmp_path):
    tags = {"PatientName": "Doe^Jane", "PatientID": "MRN-4711-XYZ", "PatientBirthDate": "19700101",
            "InstitutionName": "St Elsewhere Knee Clinic"}
    files = series(8, axis=0, description="SAG PD FS JANE DOE RIGHT KNEE", tags=tags)
    read = load_items([(f"jane-doe-{i}.dcm", data) for i, _, data in files])
    store = ShareStore(tmp_path / "shares", clock=Clock())
    share = store.create(read, "w", "192.0.2.1")
    everything = b"".join(f.read_bytes() for f in (tmp_path / "shares").iterdir())
    for text in ("Doe^Jane", "Jane", "JANE", "MRN-4711", "19700101", "Elsewhere", "SAG PD FS", "jane-doe"):
        assert text.encode() not in everything, text
    np.testing.assert_array_equal(store.open(share.token).exam.volumes["sagittal"], read.volumes["sagittal"])
